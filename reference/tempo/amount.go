package tempo

import (
	"errors"
	"fmt"
	"math/big"
)

// ErrInvalidAmount is wrapped by every amount rejection, so a server can map
// them all to one problem type while the message keeps the detail.
var ErrInvalidAmount = errors.New("invalid amount")

// ErrUnknownProtocol reports a sessionProtocol other than "v1" or "v2".
var ErrUnknownProtocol = errors.New("unknown session protocol")

// maxAmountDigits bounds the decimal text: 78 digits hold any uint256, so
// longer input is rejected before big.Int parsing can be made to work hard.
const maxAmountDigits = 78

// Valid reports whether p is a protocol this package knows (v1 or v2).
func (p Protocol) Valid() bool { return p == V1 || p == V2 }

// amountBits is the width of the Voucher's cumulativeAmount (and of channel
// deposits): uint128 in the v1 escrow contract, uint96 in the TIP-1034
// precompile (protocol.md §6.3, §6.5). Zero for an unknown protocol.
func (p Protocol) amountBits() int {
	switch p {
	case V1:
		return 128
	case V2:
		return 96
	}
	return 0
}

// MaxAmount is the largest amount p can carry: 2^128−1 for v1, 2^96−1 for
// v2. It returns a fresh value the caller may modify, or nil for an unknown
// protocol.
func (p Protocol) MaxAmount() *big.Int {
	bits := p.amountBits()
	if bits == 0 {
		return nil
	}
	m := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	return m.Sub(m, big.NewInt(1))
}

// checkAmount enforces 0 ≤ v ≤ p.MaxAmount(). A non-negative value fits in n
// bits exactly when its bit length is at most n, which avoids a comparison
// against a freshly built maximum on the hot path.
func checkAmount(v *big.Int, p Protocol) error {
	bits := p.amountBits()
	switch {
	case bits == 0:
		return fmt.Errorf("%w %q", ErrUnknownProtocol, string(p))
	case v == nil:
		return fmt.Errorf("%w: missing", ErrInvalidAmount)
	case v.Sign() < 0:
		return fmt.Errorf("%w: %s is negative", ErrInvalidAmount, v)
	case v.BitLen() > bits:
		return fmt.Errorf("%w: %s exceeds the %s maximum %s (uint%d)",
			ErrInvalidAmount, v, p, p.MaxAmount(), bits)
	}
	return nil
}

// ParseAmount parses a wire amount (cumulativeAmount, deposit, ...): a plain
// decimal string of 1 to 78 digits, no sign, spaces, exponent or hex prefix,
// whose value fits p's amount width. Leading zeros are accepted, as the SDK
// parsers accept them.
func ParseAmount(s string, p Protocol) (*big.Int, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("%w %q", ErrUnknownProtocol, string(p))
	}
	if s == "" {
		return nil, fmt.Errorf("%w: empty string", ErrInvalidAmount)
	}
	if len(s) > maxAmountDigits {
		return nil, fmt.Errorf("%w: %d digits, at most %d allowed", ErrInvalidAmount, len(s), maxAmountDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("%w: %q is not a decimal string (byte %d is %q)", ErrInvalidAmount, s, i, s[i])
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok { // unreachable after the digit check; kept as a guard
		return nil, fmt.Errorf("%w: %q is not a decimal string", ErrInvalidAmount, s)
	}
	if err := checkAmount(v, p); err != nil {
		return nil, err
	}
	return v, nil
}

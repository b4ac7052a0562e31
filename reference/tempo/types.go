// Package tempo holds the Tempo session-intent primitives: addresses and
// hashes, channel descriptors and channelId derivation (protocol.md §6.4), and
// EIP-712 voucher signing and verification for session protocols v1 and v2
// (protocol.md §6.5).
package tempo

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

// Address is a 20-byte EVM account or contract address.
type Address [20]byte

// Hash is a 32-byte value: a channelId, a salt, a keccak digest.
type Hash [32]byte

// ParseAddress accepts "0x" followed by exactly 40 hex digits, in any case.
// EIP-55 checksums are not enforced: the SDKs compare addresses
// case-insensitively (protocol.md §6.3).
func ParseAddress(s string) (Address, error) {
	var a Address
	if err := parseHex(s, a[:]); err != nil {
		return Address{}, fmt.Errorf("address %q: %w", s, err)
	}
	return a, nil
}

// ParseHash accepts "0x" followed by exactly 64 hex digits, in any case.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if err := parseHex(s, h[:]); err != nil {
		return Hash{}, fmt.Errorf("bytes32 %q: %w", s, err)
	}
	return h, nil
}

func parseHex(s string, dst []byte) error {
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return fmt.Errorf("missing 0x prefix")
	}
	body := s[2:]
	if len(body) != 2*len(dst) {
		return fmt.Errorf("want %d hex digits, got %d", 2*len(dst), len(body))
	}
	if _, err := hex.Decode(dst, []byte(body)); err != nil {
		return fmt.Errorf("not hex: %w", err)
	}
	return nil
}

// String is the lower-case 0x form, the form mppx normalizes to.
func (a Address) String() string { return "0x" + hex.EncodeToString(a[:]) }

// String is the lower-case 0x form.
func (h Hash) String() string { return "0x" + hex.EncodeToString(h[:]) }

// IsZero reports whether a is the zero address (an unset authorizedSigner).
func (a Address) IsZero() bool { return a == Address{} }

// MarshalText and UnmarshalText let addresses and hashes sit in JSON structs.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

func (a *Address) UnmarshalText(b []byte) error {
	v, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Protocol is the session protocol named by methodDetails.sessionProtocol.
type Protocol string

const (
	// V1 is the legacy contract escrow: domain "Tempo Stream Channel", uint128 amounts.
	V1 Protocol = "v1"
	// V2 is the TIP-1034 channel precompile: domain "TIP20 Channel Reserve", uint96 amounts.
	V2 Protocol = "v2"
)

// Channel describes a pre-opened payment channel: what derives its id
// (protocol.md §6.4) and what verifies its vouchers (§6.5). Operator and
// ExpiringNonceHash are used by v2 only.
type Channel struct {
	ID                Hash
	Protocol          Protocol
	ChainID           uint64
	Escrow            Address
	Payer             Address
	Payee             Address
	Token             Address
	AuthorizedSigner  Address // zero: the payer signs
	Salt              Hash
	Operator          Address
	ExpiringNonceHash Hash
	Deposit           *big.Int
}

// Signer is the address whose signature a voucher on c must carry:
// authorizedSigner when set, else the payer (protocol.md §6.5).
func (c Channel) Signer() Address {
	if c.AuthorizedSigner.IsZero() {
		return c.Payer
	}
	return c.AuthorizedSigner
}

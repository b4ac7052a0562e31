package tempo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// SignatureLength is the size of a wire voucher signature: r ‖ s ‖ v.
const SignatureLength = 65

// ErrInvalidSignature is wrapped by every signature rejection below, so a
// server can map any of them to the session/invalid-signature problem type
// with one errors.Is, while the specific sentinel stays testable.
var ErrInvalidSignature = errors.New("invalid voucher signature")

// Specific signature rejections; each wraps ErrInvalidSignature.
var (
	// ErrSignatureLength: not exactly 65 bytes. 64-byte EIP-2098 compact
	// signatures are refused, as the Rust SDK refuses them (protocol.md §6.5).
	ErrSignatureLength = fmt.Errorf("%w: length is not %d bytes", ErrInvalidSignature, SignatureLength)
	// ErrRecoveryID: v is not 27 or 28, the only canonical forms mppx accepts.
	ErrRecoveryID = fmt.Errorf("%w: v is not 27 or 28", ErrInvalidSignature)
	// ErrSignatureRange: r or s is zero or not below the curve order N.
	ErrSignatureRange = fmt.Errorf("%w: r or s is outside [1, N-1]", ErrInvalidSignature)
	// ErrHighS: s > N/2. Both (r, s) and (r, N−s) verify, so accepting the
	// upper half would let anyone mint a second valid encoding of a voucher;
	// the spec requires rejecting it.
	ErrHighS = fmt.Errorf("%w: s is above N/2 (malleable high-s form)", ErrInvalidSignature)
	// ErrSignatureEncoding: the text is not "0x" + 130 hex digits.
	ErrSignatureEncoding = fmt.Errorf("%w: not 0x followed by %d hex digits", ErrInvalidSignature, 2*SignatureLength)
	// ErrNoPublicKey: r is not the x coordinate of a curve point, so no
	// signer can be recovered.
	ErrNoPublicKey = fmt.Errorf("%w: no public key recoverable", ErrInvalidSignature)
	// ErrWrongSigner: the signature is valid but made by another key than the
	// channel's expected signer.
	ErrWrongSigner = fmt.Errorf("%w: signed by the wrong key", ErrInvalidSignature)
)

// ErrInvalidPrivateKey is returned by ParsePrivateKey.
var ErrInvalidPrivateKey = errors.New("invalid private key")

// SignVoucher signs the voucher (channelID, amount) under d and returns the
// 65-byte r ‖ s ‖ v wire form with v = 27/28. The nonce is RFC 6979
// deterministic and s is always in the lower half, so the same inputs always
// give the same bytes — what fixed test vectors and replay tests need.
func SignVoucher(key *secp256k1.PrivateKey, d Domain, channelID Hash, amount *big.Int) ([]byte, error) {
	if key == nil || key.Key.IsZero() {
		return nil, fmt.Errorf("sign voucher: %w: nil or zero key", ErrInvalidPrivateKey)
	}
	digest, err := VoucherDigest(d, channelID, amount)
	if err != nil {
		return nil, fmt.Errorf("sign voucher: %w", err)
	}
	// decred's compact form is code ‖ r ‖ s with code = 27 + recid (+4 for a
	// compressed key); asking for an uncompressed key leaves 27 + recid.
	compact := ecdsa.SignCompact(key, digest[:], false)
	code := compact[0]
	if code != 27 && code != 28 {
		// recid 2/3 (r ≥ N as a field element) has probability ~2^-128 and
		// cannot be expressed as Ethereum's v; refuse rather than emit garbage.
		return nil, fmt.Errorf("sign voucher: recovery code %d has no v = 27/28 form", code)
	}
	sig := make([]byte, SignatureLength)
	copy(sig[:64], compact[1:])
	sig[64] = code
	return sig, nil
}

// checkSignatureShape applies the structural rules of protocol.md §6.5 that
// need no curve arithmetic: length, v, range of r and s, and low-s. decred's
// RecoverCompact would accept a high-s signature, so the check is ours.
func checkSignatureShape(sig []byte) error {
	if len(sig) != SignatureLength {
		return fmt.Errorf("%w (got %d)", ErrSignatureLength, len(sig))
	}
	if v := sig[64]; v != 27 && v != 28 {
		return fmt.Errorf("%w (got %d)", ErrRecoveryID, v)
	}
	var r, s secp256k1.ModNScalar
	if overflow := r.SetByteSlice(sig[0:32]); overflow || r.IsZero() {
		return fmt.Errorf("%w (r)", ErrSignatureRange)
	}
	if overflow := s.SetByteSlice(sig[32:64]); overflow || s.IsZero() {
		return fmt.Errorf("%w (s)", ErrSignatureRange)
	}
	if s.IsOverHalfOrder() {
		return ErrHighS
	}
	return nil
}

// RecoverVoucherSigner returns the address that signed the voucher
// (channelID, amount) under d. Malformed, non-canonical or malleable
// signatures are rejected before any curve arithmetic, with errors wrapping
// ErrInvalidSignature; an amount outside the protocol's range is rejected with
// ErrInvalidAmount. Recovery alone proves nothing: compare the result with the
// channel's expected signer, or use VerifyVoucher.
func RecoverVoucherSigner(d Domain, channelID Hash, amount *big.Int, sig []byte) (Address, error) {
	if err := checkSignatureShape(sig); err != nil {
		return Address{}, err
	}
	digest, err := VoucherDigest(d, channelID, amount)
	if err != nil {
		return Address{}, err
	}
	pub, err := recoverPublicKey(&digest, sig)
	if err != nil {
		return Address{}, err
	}
	return AddressOf(pub), nil
}

// recoverPublicKey is ecrecover over a digest for a signature that passed
// checkSignatureShape.
func recoverPublicKey(digest *Hash, sig []byte) (*secp256k1.PublicKey, error) {
	var compact [SignatureLength]byte
	compact[0] = sig[64] // 27/28 is exactly decred's code for recid 0/1, uncompressed
	copy(compact[1:], sig[:64])
	pub, _, err := ecdsa.RecoverCompact(compact[:], digest[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoPublicKey, err)
	}
	return pub, nil
}

// VerifyVoucher checks that sig is a valid voucher signature by want, the
// channel's expected signer (authorizedSigner, else payer — taken from stored
// channel state, never from the payload). A valid signature by anyone else
// yields ErrWrongSigner naming both addresses.
func VerifyVoucher(d Domain, channelID Hash, amount *big.Int, sig []byte, want Address) error {
	got, err := RecoverVoucherSigner(d, channelID, amount, sig)
	if err != nil {
		return err
	}
	if got != want {
		return wrongSigner(got, want)
	}
	return nil
}

// wrongSigner is the rejection of a valid signature by got instead of want,
// worded alike by VerifyVoucher and Verifier.Verify.
func wrongSigner(got, want Address) error {
	return fmt.Errorf("%w: recovered %s, expected %s", ErrWrongSigner, got, want)
}

// ParseSignature decodes the wire form: "0x" followed by exactly 130 hex
// digits (either case). It checks only the encoding; RecoverVoucherSigner
// judges the content.
func ParseSignature(s string) ([]byte, error) {
	sig := make([]byte, SignatureLength)
	if err := parseHex(s, sig); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignatureEncoding, err)
	}
	return sig, nil
}

// FormatSignature is the canonical wire form: "0x" + lower-case hex.
func FormatSignature(sig []byte) string { return "0x" + hex.EncodeToString(sig) }

// ParsePrivateKey decodes "0x" + 64 hex digits into a secp256k1 key, rejecting
// zero and values ≥ N, which are not valid scalars (decred would silently
// reduce them).
func ParsePrivateKey(s string) (*secp256k1.PrivateKey, error) {
	var b [32]byte
	if err := parseHex(s, b[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPrivateKey, err)
	}
	var k secp256k1.ModNScalar
	if overflow := k.SetBytes(&b); overflow != 0 {
		return nil, fmt.Errorf("%w: not below the curve order", ErrInvalidPrivateKey)
	}
	if k.IsZero() {
		return nil, fmt.Errorf("%w: zero", ErrInvalidPrivateKey)
	}
	return secp256k1.NewPrivateKey(&k), nil
}

// AddressOf is the EVM address of pub: the last 20 bytes of
// keccak256(X ‖ Y) over the uncompressed coordinates. A nil key yields the
// zero address.
func AddressOf(pub *secp256k1.PublicKey) Address {
	var a Address
	if pub == nil {
		return a
	}
	var p secp256k1.JacobianPoint
	pub.AsJacobian(&p)
	p.X.Normalize() // keys built with NewPublicKey may hold unnormalized values
	p.Y.Normalize()
	var xy [64]byte
	p.X.PutBytesUnchecked(xy[:32])
	p.Y.PutBytesUnchecked(xy[32:])
	h := Keccak256(xy[:])
	copy(a[:], h[12:])
	return a
}

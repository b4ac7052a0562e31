package client

import (
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Fault is one deliberate defect injected into the reference client: a
// "mutant". The client conformance suite proves it can fail by running
// against each mutant and requiring the cases expected to catch it to fail.
type Fault string

// The mutants. Each comment says what the client does wrong.
const (
	FaultNone Fault = ""
	// FaultOverSign signs whatever requiredCumulative the server asks for,
	// however far ahead of what arrived (up to the deposit).
	FaultOverSign Fault = "over-sign"
	// FaultPayTwice pays a repeated need-voucher again.
	FaultPayTwice Fault = "pay-twice"
	// FaultIgnoreReceipts takes every receipt and payment-receipt as it
	// comes, unchecked.
	FaultIgnoreReceipts Fault = "ignore-receipts"
	// FaultTrustCloseReady signs a close for whatever payment-close-ready
	// claims, up to what it signed.
	FaultTrustCloseReady Fault = "trust-close-ready"
	// FaultWrongDomain signs vouchers in the other protocol's EIP-712
	// domain (v1's name for a v2 channel and the reverse).
	FaultWrongDomain Fault = "wrong-domain"
	// FaultHighS sends the malleable high-s twin of every signature.
	FaultHighS Fault = "high-s"
	// FaultIgnoreLedger opens a session as if nothing had been signed on
	// the channel before, below its own ledger.
	FaultIgnoreLedger Fault = "ignore-ledger"
	// FaultOverDeposit ignores the deposit when choosing an amount.
	FaultOverDeposit Fault = "over-deposit"
	// FaultNoDescriptor leaves the v2 descriptor out of its payloads.
	FaultNoDescriptor Fault = "no-descriptor"
	// FaultDropOpaque echoes the challenge without opaque and digest.
	FaultDropOpaque Fault = "drop-opaque"
	// FaultNoSource leaves the payer DID out of its credentials.
	FaultNoSource Fault = "no-source"
	// FaultStaleChallenge keeps echoing its first challenge: it ignores
	// later challenge frames (A) and never probes again (B).
	FaultStaleChallenge Fault = "stale-challenge"
	// FaultCrashOnGarbage panics on a frame it cannot decode.
	FaultCrashOnGarbage Fault = "crash-on-garbage"
	// FaultNoTimeout waits for the server for ever.
	FaultNoTimeout Fault = "no-timeout"
	// FaultAnyTerms pays a challenge from any channel of its protocol,
	// whatever its recipient, chain and escrow.
	FaultAnyTerms Fault = "any-terms"
	// FaultAllowDecreasing takes a requiredCumulative below an earlier one
	// as already paid.
	FaultAllowDecreasing Fault = "allow-decreasing"
)

// Faults lists every mutant, in a stable order.
var Faults = []Fault{
	FaultOverSign, FaultPayTwice, FaultIgnoreReceipts, FaultTrustCloseReady, FaultWrongDomain,
	FaultHighS, FaultIgnoreLedger, FaultOverDeposit, FaultNoDescriptor, FaultDropOpaque,
	FaultNoSource, FaultStaleChallenge, FaultCrashOnGarbage, FaultNoTimeout, FaultAnyTerms,
	FaultAllowDecreasing,
}

// Valid reports whether f is a known mutant.
func (f Fault) Valid() bool {
	for _, k := range Faults {
		if k == f {
			return true
		}
	}
	return false
}

// highS is FaultHighS: the other valid encoding of a low-s signature,
// (r, N−s) with v flipped.
func highS(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	var s secp256k1.ModNScalar
	s.SetByteSlice(out[32:64])
	s.Negate()
	b := s.Bytes()
	copy(out[32:64], b[:])
	out[64] = 27 + 28 - out[64] // v: 27 ↔ 28
	return out
}

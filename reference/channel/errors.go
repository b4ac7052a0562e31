package channel

import (
	"errors"
	"fmt"
)

// Problem slugs (protocol.md §5). The server appends them to the problem base
// URI; they live here so the accounting layer decides the problem type once
// and transports cannot disagree about it.
const (
	ProblemChannelNotFound     = "session/channel-not-found"
	ProblemExceedsDeposit      = "session/amount-exceeds-deposit"
	ProblemInvalidSignature    = "session/invalid-signature"
	ProblemDeltaTooSmall       = "session/delta-too-small"
	ProblemVerificationFailed  = "verification-failed"
	ProblemInsufficientBalance = "session/insufficient-balance"
	ProblemChannelFinalized    = "session/channel-finalized"
)

// Sentinels for errors.Is. Every error the Store returns for a rejected
// operation is an *Error that unwraps to exactly one of these.
var (
	ErrChannelNotFound     = errors.New("channel not found")
	ErrExceedsDeposit      = errors.New("amount exceeds deposit")
	ErrWrongSigner         = errors.New("voucher not signed by the channel signer")
	ErrNotIncreasing       = errors.New("voucher below the accepted amount")
	ErrDeltaTooSmall       = errors.New("voucher delta too small")
	ErrInsufficientBalance = errors.New("insufficient balance")
	ErrChannelFinalized    = errors.New("channel closed")
	// ErrInvalidAmount reports a nil or negative amount from the caller: a
	// wire decoder should never produce one, so it maps to verification-failed.
	ErrInvalidAmount = errors.New("invalid amount")
	// ErrDepositNotRaised reports a TopUp that does not increase the deposit
	// (protocol.md §6.11: the new deposit must be greater than the stored one).
	ErrDepositNotRaised = errors.New("deposit not raised")
)

// Error is a rejected channel operation, shaped for an RFC 9457 problem:
// Problem is the slug and Detail the human text with the numbers involved.
type Error struct {
	Problem string
	Detail  string
	kind    error
}

func (e *Error) Error() string { return e.Problem + ": " + e.Detail }

// Unwrap exposes the sentinel so callers can branch with errors.Is without
// comparing slugs (verification-failed is shared by several causes).
func (e *Error) Unwrap() error { return e.kind }

func newError(kind error, problem, format string, args ...any) *Error {
	return &Error{Problem: problem, Detail: fmt.Sprintf(format, args...), kind: kind}
}

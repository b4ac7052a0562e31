package mpp

import (
	"net/http"
	"strings"
)

// ProblemBase prefixes every problem slug to form the RFC 9457 "type" URI
// (protocol.md §5).
const ProblemBase = "https://paymentauth.org/problems/"

// ProblemContentType is the media type of a problem details body.
const ProblemContentType = "application/problem+json"

// Problem slugs, one per row of protocol.md §5.
const (
	SlugPaymentRequired       = "payment-required"
	SlugPaymentInsufficient   = "payment-insufficient"
	SlugPaymentExpired        = "payment-expired"
	SlugVerificationFailed    = "verification-failed"
	SlugMethodUnsupported     = "method-unsupported"
	SlugMalformedCredential   = "malformed-credential"
	SlugInvalidChallenge      = "invalid-challenge"
	SlugInvalidPayload        = "invalid-payload"
	SlugBadRequest            = "bad-request"
	SlugPaymentActionRequired = "payment-action-required"
	SlugInvalidSignature      = "session/invalid-signature"
	SlugSignerMismatch        = "session/signer-mismatch"
	SlugAmountExceedsDeposit  = "session/amount-exceeds-deposit"
	SlugDeltaTooSmall         = "session/delta-too-small"
	SlugChannelNotFound       = "session/channel-not-found"
	SlugChannelFinalized      = "session/channel-finalized"
	SlugChallengeNotFound     = "session/challenge-not-found"
	SlugInsufficientBalance   = "session/insufficient-balance"
)

type problemInfo struct {
	title  string
	status int
}

// problemTable holds the human titles mppx and mpp-go use (Rust's class-style
// titles are not reproduced) and the HTTP status the specs assign. Where the
// sources disagree on status (protocol.md §8 items 8 and 10) the session spec
// and mppx win: channel errors are 410 and invalid-payload stays 402 under
// the paymentauth.org URI.
var problemTable = map[string]problemInfo{
	SlugPaymentRequired:       {"Payment Required", http.StatusPaymentRequired},
	SlugPaymentInsufficient:   {"Payment Insufficient", http.StatusPaymentRequired},
	SlugPaymentExpired:        {"Payment Expired", http.StatusPaymentRequired},
	SlugVerificationFailed:    {"Verification Failed", http.StatusPaymentRequired},
	SlugMethodUnsupported:     {"Method Unsupported", http.StatusBadRequest},
	SlugMalformedCredential:   {"Malformed Credential", http.StatusPaymentRequired},
	SlugInvalidChallenge:      {"Invalid Challenge", http.StatusPaymentRequired},
	SlugInvalidPayload:        {"Invalid Payload", http.StatusPaymentRequired},
	SlugBadRequest:            {"Bad Request", http.StatusBadRequest},
	SlugPaymentActionRequired: {"Payment Action Required", http.StatusPaymentRequired},
	SlugInvalidSignature:      {"Invalid Signature", http.StatusPaymentRequired},
	SlugSignerMismatch:        {"Signer Mismatch", http.StatusPaymentRequired},
	SlugAmountExceedsDeposit:  {"Amount Exceeds Deposit", http.StatusPaymentRequired},
	SlugDeltaTooSmall:         {"Delta Too Small", http.StatusPaymentRequired},
	SlugChannelNotFound:       {"Channel Not Found", http.StatusGone},
	SlugChannelFinalized:      {"Channel Closed", http.StatusGone},
	SlugChallengeNotFound:     {"Challenge Not Found", http.StatusPaymentRequired},
	SlugInsufficientBalance:   {"Insufficient Balance", http.StatusPaymentRequired},
}

// Problem is an RFC 9457 problem details object as MPP servers send it
// (protocol.md §5). It doubles as the error type of this package so a
// handler can serialise whatever a verification step returned.
type Problem struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	Status      int    `json:"status"`
	Detail      string `json:"detail,omitempty"`
	ChallengeID string `json:"challengeId,omitempty"`
}

// NewProblem returns the problem for slug (one of the Slug constants) with
// its spec status and title filled in. An unknown slug still yields a usable
// problem: status 402, the core spec's default for payment failures, and a
// title derived from the slug.
func NewProblem(slug, detail string) *Problem {
	info, ok := problemTable[slug]
	if !ok {
		info = problemInfo{title: titleFromSlug(slug), status: http.StatusPaymentRequired}
	}
	return &Problem{Type: ProblemBase + slug, Title: info.title, Status: info.status, Detail: detail}
}

// Error reports the slug and detail, which is what a log line or test
// failure needs; the title adds nothing the slug does not say.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return p.Slug()
	}
	return p.Slug() + ": " + p.Detail
}

// Slug returns the type with ProblemBase removed, e.g. "session/delta-too-small".
// A type outside ProblemBase (mpp-go's https://mpp.dev/errors/… URIs) is
// returned unchanged so it never compares equal to a paymentauth.org slug.
func (p *Problem) Slug() string {
	return strings.TrimPrefix(p.Type, ProblemBase)
}

// titleFromSlug turns "session/foo-bar" into "Foo Bar".
func titleFromSlug(slug string) string {
	if i := strings.LastIndexByte(slug, '/'); i >= 0 {
		slug = slug[i+1:]
	}
	words := strings.Split(slug, "-")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

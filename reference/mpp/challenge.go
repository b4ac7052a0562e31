package mpp

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mppws/conformance/reference/jcs"
)

// DefaultTTL is how long a challenge stays valid when ChallengeParams leaves
// Expires unset: five minutes, the default of all three SDKs (protocol.md §1.1).
const DefaultTTL = 5 * time.Minute

// expiresLayout is mpp-go's layout (mppx's toISOString gives the same shape).
// Millisecond precision is fixed so every challenge string has one length.
const expiresLayout = "2006-01-02T15:04:05.000Z"

// expiresPattern is mppx's validation regex. time.Parse alone would accept
// forms no other SDK parses (lower-case "t"/"z", for instance).
var expiresPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)

// Challenge is one Payment challenge (protocol.md §1.1). Request and Opaque
// hold the base64url wire strings, not decoded JSON, because the challenge id
// is an HMAC over exactly those characters. Its JSON form is therefore the
// Rust SDK's (protocol.md §1.4, dialect A): request and opaque as strings.
type Challenge struct {
	ID          string `json:"id"`
	Realm       string `json:"realm"`
	Method      string `json:"method"`
	Intent      string `json:"intent"`
	Request     string `json:"request"`
	Expires     string `json:"expires,omitempty"`
	Description string `json:"description,omitempty"`
	Digest      string `json:"digest,omitempty"`
	Opaque      string `json:"opaque,omitempty"`
}

// ComputeID returns the challenge id of protocol.md §2: unpadded base64url of
// HMAC-SHA256(secret, realm|method|intent|request|expires|digest|opaque). The
// fields are used exactly as they are in c, so verifying an echoed challenge
// hashes the echoed strings (the Rust SDK's rule, the strictest of the three).
// Description and ID are not part of the input.
func ComputeID(secret []byte, c Challenge) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(bindingInput(c))
	return b64.EncodeToString(mac.Sum(nil))
}

// bindingInput is the HMAC input: seven slots joined by '|' with absent
// optional slots empty. Values are not escaped; there are always exactly six
// separators.
func bindingInput(c Challenge) []byte {
	slots := [...]string{c.Realm, c.Method, c.Intent, c.Request, c.Expires, c.Digest, c.Opaque}
	n := len(slots) - 1
	for _, s := range slots {
		n += len(s)
	}
	in := make([]byte, 0, n)
	for i, s := range slots {
		if i > 0 {
			in = append(in, '|')
		}
		in = append(in, s...)
	}
	return in
}

// VerifyID reports whether c.ID is the id this server would have issued for
// c's other fields. The comparison is constant-time so a client cannot learn
// a valid id byte by byte from response timing.
func (c Challenge) VerifyID(secret []byte) bool {
	return hmac.Equal([]byte(ComputeID(secret, c)), []byte(c.ID))
}

// FormatExpires renders t in UTC with millisecond precision, as mpp-go and
// mppx do, e.g. "2025-01-06T12:05:00.000Z".
func FormatExpires(t time.Time) string {
	return t.UTC().Format(expiresLayout)
}

// ExpiresAt parses the expires parameter. A challenge without one is an
// error: the spec makes expires optional but every SDK verifier requires it
// (protocol.md §1.1), and an unbounded challenge could be replayed forever.
func (c Challenge) ExpiresAt() (time.Time, error) {
	if c.Expires == "" {
		return time.Time{}, errors.New("challenge has no expires")
	}
	if !expiresPattern.MatchString(c.Expires) {
		return time.Time{}, fmt.Errorf("expires %q is not an RFC 3339 timestamp", c.Expires)
	}
	t, err := time.Parse(time.RFC3339Nano, c.Expires)
	if err != nil {
		return time.Time{}, fmt.Errorf("expires %q: %w", c.Expires, err)
	}
	return t, nil
}

// ChallengeParams describes a challenge to issue. Request and Opaque are
// plain values; NewChallenge does the JCS and base64url encoding.
type ChallengeParams struct {
	Realm  string
	Method string // ^[a-z]+$
	Intent string // ^[A-Za-z0-9-]+$
	// Request must marshal to a JSON object. Amounts should be decimal
	// strings and chainId a number (protocol.md §1.3).
	Request any
	// Opaque is server state the client must echo unchanged. nil means no
	// opaque parameter; an empty non-nil map is sent as "e30" ({}), which is
	// a different challenge (protocol.md §2).
	Opaque map[string]string
	// Expires is the absolute expiry; the zero value means now + DefaultTTL.
	Expires time.Time
	// Digest, if set, must have the "sha-256=" prefix mppx and Rust require.
	Digest      string
	Description string
}

// NewChallenge validates p, encodes request and opaque, and computes the id.
// Validation happens here rather than at header formatting so that a
// challenge value that exists is always one every SDK client can parse.
func NewChallenge(secret []byte, p ChallengeParams) (Challenge, error) {
	if p.Realm == "" {
		return Challenge{}, errors.New("new challenge: realm is empty")
	}
	if !isLowerAlpha(p.Method) {
		return Challenge{}, fmt.Errorf("new challenge: method %q does not match ^[a-z]+$", p.Method)
	}
	if !isIntentName(p.Intent) {
		return Challenge{}, fmt.Errorf("new challenge: intent %q does not match ^[A-Za-z0-9-]+$", p.Intent)
	}
	if p.Digest != "" && !strings.HasPrefix(p.Digest, "sha-256=") {
		return Challenge{}, fmt.Errorf("new challenge: digest %q lacks the sha-256= prefix", p.Digest)
	}
	for _, f := range [...]struct{ name, value string }{
		{"realm", p.Realm}, {"digest", p.Digest}, {"description", p.Description},
	} {
		if err := checkHeaderValue(f.value); err != nil {
			return Challenge{}, fmt.Errorf("new challenge: %s: %w", f.name, err)
		}
	}

	canon, err := jcs.Marshal(p.Request)
	if err != nil {
		return Challenge{}, fmt.Errorf("new challenge: request: %w", err)
	}
	if len(canon) == 0 || canon[0] != '{' {
		return Challenge{}, fmt.Errorf("new challenge: request must be a JSON object, got %.20s", canon)
	}
	c := Challenge{
		Realm:       p.Realm,
		Method:      p.Method,
		Intent:      p.Intent,
		Request:     b64.EncodeToString(canon),
		Digest:      p.Digest,
		Description: p.Description,
	}
	if p.Opaque != nil {
		if c.Opaque, err = EncodeJSON(p.Opaque); err != nil {
			return Challenge{}, fmt.Errorf("new challenge: opaque: %w", err)
		}
	}
	expires := p.Expires
	if expires.IsZero() {
		expires = time.Now().Add(DefaultTTL)
	}
	c.Expires = FormatExpires(expires)
	c.ID = ComputeID(secret, c)
	return c, nil
}

// Verify checks a challenge echoed in a credential against this server's
// secret and clock, in mppx's order (protocol.md §3.3): the HMAC first, so a
// forged challenge learns nothing about expiry handling, then expires.
// Errors are *Problem: invalid-challenge for a bad id or a missing or
// unparsable expires, payment-expired once expires < now. A challenge whose
// expires equals now is still accepted, as in mppx and mpp-go (Rust rejects
// it). There is no clock-skew allowance, as in every SDK.
//
// Verify leaves Problem.ChallengeID empty: it names the fresh challenge the
// server answers with, which only the caller knows.
func Verify(secret []byte, echo Challenge, now time.Time) error {
	if !echo.VerifyID(secret) {
		return NewProblem(SlugInvalidChallenge, "challenge was not issued by this server")
	}
	exp, err := echo.ExpiresAt()
	if err != nil {
		return NewProblem(SlugInvalidChallenge, err.Error())
	}
	if exp.Before(now) {
		return NewProblem(SlugPaymentExpired, "challenge expired at "+echo.Expires)
	}
	return nil
}

func isLowerAlpha(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

func isIntentName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

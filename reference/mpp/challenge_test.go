package mpp_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mppws/conformance/reference/mpp"
)

var testSecret = []byte("reference-server-secret")

func newTestChallenge(t *testing.T, p mpp.ChallengeParams) mpp.Challenge {
	t.Helper()
	c, err := mpp.NewChallenge(testSecret, p)
	if err != nil {
		t.Fatalf("NewChallenge: %v", err)
	}
	return c
}

func baseParams() mpp.ChallengeParams {
	return mpp.ChallengeParams{
		Realm:   "api.example.com",
		Method:  "tempo",
		Intent:  "charge",
		Request: map[string]any{"amount": "1000000", "currency": currency},
		Opaque:  map[string]string{"pi": "pi_3abc123XYZ"},
		Expires: time.Date(2025, 1, 6, 12, 5, 0, 0, time.UTC),
		Digest:  vecDigest,
	}
}

func TestNewChallenge(t *testing.T) {
	c := newTestChallenge(t, baseParams())
	want := mpp.Challenge{
		Realm:   "api.example.com",
		Method:  "tempo",
		Intent:  "charge",
		Request: "eyJhbW91bnQiOiIxMDAwMDAwIiwiY3VycmVuY3kiOiIweDIwYzAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAifQ",
		Expires: "2025-01-06T12:05:00.000Z",
		Digest:  vecDigest,
		Opaque:  "eyJwaSI6InBpXzNhYmMxMjNYWVoifQ",
	}
	want.ID = mpp.ComputeID(testSecret, want)
	if c != want {
		t.Fatalf("NewChallenge =\n%+v\nwant\n%+v", c, want)
	}
	if len(c.ID) != 43 {
		t.Errorf("id length %d, want 43", len(c.ID))
	}
}

func TestNewChallengeDefaults(t *testing.T) {
	p := baseParams()
	p.Expires = time.Time{}
	p.Opaque = nil
	before := time.Now()
	c := newTestChallenge(t, p)
	exp, err := c.ExpiresAt()
	if err != nil {
		t.Fatal(err)
	}
	// FormatExpires truncates to milliseconds.
	lo, hi := before.Add(mpp.DefaultTTL).Add(-time.Millisecond), time.Now().Add(mpp.DefaultTTL)
	if exp.Before(lo) || exp.After(hi) {
		t.Errorf("default expires %s not within [%s, %s]", exp, lo, hi)
	}
	if c.Opaque != "" {
		t.Errorf("nil opaque encoded as %q, want absent", c.Opaque)
	}

	p.Opaque = map[string]string{}
	if c := newTestChallenge(t, p); c.Opaque != "e30" {
		t.Errorf("empty opaque encoded as %q, want e30", c.Opaque)
	}
}

func TestNewChallengeRejects(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*mpp.ChallengeParams)
		want   string
	}{
		{"empty realm", func(p *mpp.ChallengeParams) { p.Realm = "" }, "realm is empty"},
		{"CR in realm", func(p *mpp.ChallengeParams) { p.Realm = "a\rb" }, "CR or LF"},
		{"LF in description", func(p *mpp.ChallengeParams) { p.Description = "a\nSet-Cookie: x" }, "CR or LF"},
		{"NUL in description", func(p *mpp.ChallengeParams) { p.Description = "a\x00" }, "control character"},
		{"LF in digest", func(p *mpp.ChallengeParams) { p.Digest = "sha-256=a\n" }, "CR or LF"},
		{"digest without prefix", func(p *mpp.ChallengeParams) { p.Digest = "md5=abc" }, "sha-256="},
		{"empty method", func(p *mpp.ChallengeParams) { p.Method = "" }, "method"},
		{"upper-case method", func(p *mpp.ChallengeParams) { p.Method = "Tempo" }, "method"},
		{"method with digit", func(p *mpp.ChallengeParams) { p.Method = "tempo2" }, "method"},
		{"method with CRLF", func(p *mpp.ChallengeParams) { p.Method = "tempo\r\n" }, "method"},
		{"empty intent", func(p *mpp.ChallengeParams) { p.Intent = "" }, "intent"},
		{"intent with underscore", func(p *mpp.ChallengeParams) { p.Intent = "pay_now" }, "intent"},
		{"intent with space", func(p *mpp.ChallengeParams) { p.Intent = "a b" }, "intent"},
		{"nil request", func(p *mpp.ChallengeParams) { p.Request = nil }, "JSON object"},
		{"array request", func(p *mpp.ChallengeParams) { p.Request = []string{"a"} }, "JSON object"},
		{"string request", func(p *mpp.ChallengeParams) { p.Request = "eyJ9" }, "JSON object"},
		{"unmarshalable request", func(p *mpp.ChallengeParams) { p.Request = map[string]any{"f": func() {}} }, "request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := baseParams()
			tc.modify(&p)
			c, err := mpp.NewChallenge(testSecret, p)
			if err == nil {
				t.Fatalf("NewChallenge succeeded: %+v", c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// Intents may use upper case, digits and '-' per the ABNF.
	p := baseParams()
	p.Intent = "Charge-2"
	if _, err := mpp.NewChallenge(testSecret, p); err != nil {
		t.Errorf("intent Charge-2: %v", err)
	}
}

func TestFormatExpires(t *testing.T) {
	cases := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2025, 1, 6, 12, 0, 0, 0, time.UTC), "2025-01-06T12:00:00.000Z"},
		{time.Date(2025, 1, 6, 12, 0, 0, 123456789, time.UTC), "2025-01-06T12:00:00.123Z"},
		{time.Date(2025, 1, 6, 14, 0, 0, 0, time.FixedZone("CEST", 2*3600)), "2025-01-06T12:00:00.000Z"},
	}
	for _, tc := range cases {
		if got := mpp.FormatExpires(tc.in); got != tc.want {
			t.Errorf("FormatExpires(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestExpiresAt(t *testing.T) {
	want := time.Date(2025, 1, 6, 12, 0, 0, 0, time.UTC)
	valid := map[string]time.Time{
		"2025-01-06T12:00:00Z":                want,
		"2025-01-06T12:00:00.000Z":            want,
		"2025-01-06T12:00:00.000000000Z":      want, // mpp-rs receipts use nine digits
		"2025-01-06T14:00:00+02:00":           want,
		"2025-01-06T07:00:00.5-05:00":         want.Add(500 * time.Millisecond),
		"2025-01-06T12:00:00.123456789Z":      want.Add(123456789),
		"2025-01-06T12:00:00.1234567891Z":     want.Add(123456789), // sub-ns digits truncated
		"2025-01-06T12:00:00.000000000+00:00": want,
	}
	for s, w := range valid {
		got, err := mpp.Challenge{Expires: s}.ExpiresAt()
		if err != nil {
			t.Errorf("ExpiresAt(%s): %v", s, err)
			continue
		}
		if !got.Equal(w) {
			t.Errorf("ExpiresAt(%s) = %s, want %s", s, got, w)
		}
	}
	invalid := []string{
		"",
		"2025-01-06",
		"2025-01-06 12:00:00Z",
		"2025-01-06t12:00:00Z",
		"2025-01-06T12:00:00z",
		"2025-01-06T12:00:00",
		"2025-01-06T12:00Z",
		"2025-01-06T12:00:00+0200",
		"2025-01-06T12:00:00.Z",
		"2025-13-06T12:00:00Z",
		"2025-01-06T25:00:00Z",
		"1736164800",
		"tomorrow",
		" 2025-01-06T12:00:00Z",
	}
	for _, s := range invalid {
		if got, err := (mpp.Challenge{Expires: s}).ExpiresAt(); err == nil {
			t.Errorf("ExpiresAt(%q) = %s, want error", s, got)
		}
	}
}

func TestVerify(t *testing.T) {
	issued := newTestChallenge(t, baseParams())
	exp, err := issued.ExpiresAt()
	if err != nil {
		t.Fatal(err)
	}
	before := exp.Add(-time.Minute)

	t.Run("genuine", func(t *testing.T) {
		if err := mpp.Verify(testSecret, issued, before); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("expires == now accepted", func(t *testing.T) {
		if err := mpp.Verify(testSecret, issued, exp); err != nil {
			t.Fatalf("Verify at expiry: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		err := mpp.Verify(testSecret, issued, exp.Add(time.Millisecond))
		wantProblem(t, err, mpp.SlugPaymentExpired, "expired")
	})
	t.Run("other secret", func(t *testing.T) {
		err := mpp.Verify([]byte("another-secret"), issued, before)
		wantProblem(t, err, mpp.SlugInvalidChallenge, "challenge was not issued by this server")
	})
	t.Run("forged id", func(t *testing.T) {
		c := issued
		c.ID = "X6v1eo7fJ76gAxqY0xN9Jd__4lUyDDYmriryOM-5FO4"
		wantProblem(t, mpp.Verify(testSecret, c, before), mpp.SlugInvalidChallenge, "not issued by this server")
	})
	t.Run("empty id", func(t *testing.T) {
		c := issued
		c.ID = ""
		wantProblem(t, mpp.Verify(testSecret, c, before), mpp.SlugInvalidChallenge, "not issued by this server")
	})
	t.Run("truncated id", func(t *testing.T) {
		c := issued
		c.ID = c.ID[:42]
		wantProblem(t, mpp.Verify(testSecret, c, before), mpp.SlugInvalidChallenge, "not issued by this server")
	})

	otherRequest, err := mpp.EncodeJSON(map[string]string{"amount": "1", "currency": currency})
	if err != nil {
		t.Fatal(err)
	}
	tampers := []struct {
		field  string
		modify func(*mpp.Challenge)
	}{
		{"realm", func(c *mpp.Challenge) { c.Realm = "evil.example.com" }},
		{"method", func(c *mpp.Challenge) { c.Method = "stripe" }},
		{"intent", func(c *mpp.Challenge) { c.Intent = "session" }},
		{"request", func(c *mpp.Challenge) { c.Request = otherRequest }},
		{"expires", func(c *mpp.Challenge) { c.Expires = "2099-01-01T00:00:00.000Z" }},
		{"expires removed", func(c *mpp.Challenge) { c.Expires = "" }},
		{"digest", func(c *mpp.Challenge) { c.Digest = "sha-256=AAAAqOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE" }},
		{"digest removed", func(c *mpp.Challenge) { c.Digest = "" }},
		{"opaque", func(c *mpp.Challenge) { c.Opaque = "eyJwaSI6InBpX290aGVyIn0" }},
		{"opaque removed", func(c *mpp.Challenge) { c.Opaque = "" }},
		{"opaque emptied", func(c *mpp.Challenge) { c.Opaque = "e30" }},
		{"slot shift", func(c *mpp.Challenge) { c.Realm, c.Method = c.Realm+"|"+c.Method, "" }},
	}
	for _, tc := range tampers {
		t.Run("tampered "+tc.field, func(t *testing.T) {
			c := issued
			tc.modify(&c)
			wantProblem(t, mpp.Verify(testSecret, c, before), mpp.SlugInvalidChallenge, "not issued by this server")
		})
	}

	t.Run("description is not bound", func(t *testing.T) {
		c := issued
		c.Description = "changed by the client"
		if err := mpp.Verify(testSecret, c, before); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})

	// A challenge with a genuine id but no or a malformed expires: the
	// server must still refuse it.
	for name, expires := range map[string]string{"missing expires": "", "malformed expires": "2025-01-06 12:05:00"} {
		t.Run(name, func(t *testing.T) {
			c := issued
			c.Expires = expires
			c.ID = mpp.ComputeID(testSecret, c)
			wantProblem(t, mpp.Verify(testSecret, c, before), mpp.SlugInvalidChallenge, "expires")
		})
	}
}

func wantProblem(t *testing.T, err error, slug, detail string) *mpp.Problem {
	t.Helper()
	var p *mpp.Problem
	if !errors.As(err, &p) {
		t.Fatalf("error %v (%T) is not a *mpp.Problem", err, err)
	}
	if p.Slug() != slug {
		t.Fatalf("problem slug %q, want %q (detail %q)", p.Slug(), slug, p.Detail)
	}
	if p.Type != mpp.ProblemBase+slug {
		t.Errorf("problem type %q, want %q", p.Type, mpp.ProblemBase+slug)
	}
	if !strings.Contains(p.Detail, detail) {
		t.Errorf("problem detail %q does not mention %q", p.Detail, detail)
	}
	if p.Status != http.StatusPaymentRequired && p.Status != http.StatusBadRequest && p.Status != http.StatusGone {
		t.Errorf("problem status %d", p.Status)
	}
	return p
}

func TestEncodeDecodeJSON(t *testing.T) {
	s, err := mpp.EncodeJSON(map[string]any{"b": "<&>", "a": 1.0})
	if err != nil {
		t.Fatal(err)
	}
	// {"a":1,"b":"<&>"}
	if want := "eyJhIjoxLCJiIjoiPCY-In0"; s != want {
		t.Errorf("EncodeJSON = %s, want %s", s, want)
	}
	var m map[string]any
	if err := mpp.DecodeJSON(s, &m); err != nil {
		t.Fatal(err)
	}
	if m["b"] != "<&>" || m["a"] != 1.0 {
		t.Errorf("DecodeJSON = %v", m)
	}

	bad := map[string]string{
		"padding":           "e30=",
		"standard alphabet": "eyJhIjoxLCJiIjoiPCY+In0",
		"slash":             "eyJ/In0",
		"newline":           "eyJh\nIjoxfQ",
		"CR":                "eyJh\rIjoxfQ",
		"space":             "eyJh IjoxfQ",
		"trailing bits":     "e31",
		"impossible length": "e30AA",
		"not JSON":          "bm90IGpzb24",
		"repeated name":     "eyJhIjoxLCJhIjoyfQ", // {"a":1,"a":2}
		"empty":             "",
	}
	for name, s := range bad {
		var v any
		if err := mpp.DecodeJSON(s, &v); err == nil {
			t.Errorf("DecodeJSON(%s %q) succeeded with %v", name, s, v)
		}
	}
}

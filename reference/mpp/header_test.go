package mpp_test

import (
	"strings"
	"testing"

	"github.com/mppws/conformance/reference/mpp"
)

func fullChallenge() mpp.Challenge {
	return mpp.Challenge{
		ID:          "X6v1eo7fJ76gAxqY0xN9Jd__4lUyDDYmriryOM-5FO4",
		Realm:       "api.example.com",
		Method:      "tempo",
		Intent:      "charge",
		Request:     "eyJhbW91bnQiOiIxMDAwMDAwIn0",
		Expires:     "2025-01-06T12:00:00.000Z",
		Description: "Pay 1 USD",
		Digest:      vecDigest,
		Opaque:      "e30",
	}
}

func TestFormatChallenge(t *testing.T) {
	t.Run("all params in Rust order", func(t *testing.T) {
		h, err := mpp.FormatChallenge(fullChallenge())
		if err != nil {
			t.Fatal(err)
		}
		want := `Payment id="X6v1eo7fJ76gAxqY0xN9Jd__4lUyDDYmriryOM-5FO4", realm="api.example.com", method="tempo", intent="charge", ` +
			`request="eyJhbW91bnQiOiIxMDAwMDAwIn0", expires="2025-01-06T12:00:00.000Z", description="Pay 1 USD", ` +
			`digest="sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE", opaque="e30"`
		if h != want {
			t.Fatalf("got  %s\nwant %s", h, want)
		}
	})
	t.Run("optionals omitted", func(t *testing.T) {
		c := fullChallenge()
		c.Expires, c.Description, c.Digest, c.Opaque = "", "", "", ""
		h, err := mpp.FormatChallenge(c)
		if err != nil {
			t.Fatal(err)
		}
		want := `Payment id="X6v1eo7fJ76gAxqY0xN9Jd__4lUyDDYmriryOM-5FO4", realm="api.example.com", method="tempo", intent="charge", request="eyJhbW91bnQiOiIxMDAwMDAwIn0"`
		if h != want {
			t.Fatalf("got  %s\nwant %s", h, want)
		}
	})
	t.Run("escaping", func(t *testing.T) {
		c := fullChallenge()
		c.Realm = `a"b\c`
		c.Description = `say "hi", \o/`
		h, err := mpp.FormatChallenge(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, frag := range []string{`realm="a\"b\\c"`, `description="say \"hi\", \\o/"`} {
			if !strings.Contains(h, frag) {
				t.Errorf("header %s lacks %s", h, frag)
			}
		}
		got := parseOne(t, h)
		if got != c {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
		}
	})
	t.Run("non-ASCII description kept raw", func(t *testing.T) {
		c := fullChallenge()
		c.Description = "café ☕"
		h, err := mpp.FormatChallenge(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := parseOne(t, h); got != c {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
		}
	})

	rejects := []struct {
		name   string
		modify func(*mpp.Challenge)
		want   string
	}{
		{"CR in description", func(c *mpp.Challenge) { c.Description = "a\rb" }, "CR or LF"},
		{"LF in realm", func(c *mpp.Challenge) { c.Realm = "a\nb" }, "CR or LF"},
		{"CRLF header injection in opaque", func(c *mpp.Challenge) { c.Opaque = "e30\r\nSet-Cookie: a=b" }, "CR or LF"},
		{"LF in id", func(c *mpp.Challenge) { c.ID += "\n" }, "CR or LF"},
		{"LF in method", func(c *mpp.Challenge) { c.Method += "\n" }, "CR or LF"},
		{"LF in intent", func(c *mpp.Challenge) { c.Intent += "\n" }, "CR or LF"},
		{"LF in request", func(c *mpp.Challenge) { c.Request += "\n" }, "CR or LF"},
		{"LF in expires", func(c *mpp.Challenge) { c.Expires += "\n" }, "CR or LF"},
		{"LF in digest", func(c *mpp.Challenge) { c.Digest += "\n" }, "CR or LF"},
		{"NUL", func(c *mpp.Challenge) { c.Description = "\x00" }, "control character"},
		{"DEL", func(c *mpp.Challenge) { c.Description = "\x7f" }, "control character"},
		{"missing id", func(c *mpp.Challenge) { c.ID = "" }, "id is empty"},
		{"missing realm", func(c *mpp.Challenge) { c.Realm = "" }, "realm is empty"},
		{"missing method", func(c *mpp.Challenge) { c.Method = "" }, "method is empty"},
		{"missing intent", func(c *mpp.Challenge) { c.Intent = "" }, "intent is empty"},
		{"missing request", func(c *mpp.Challenge) { c.Request = "" }, "request is empty"},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			c := fullChallenge()
			tc.modify(&c)
			h, err := mpp.FormatChallenge(c)
			if err == nil {
				t.Fatalf("FormatChallenge = %q, want error", h)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// HTAB is a legal field-value character.
	c := fullChallenge()
	c.Description = "a\tb"
	if _, err := mpp.FormatChallenge(c); err != nil {
		t.Errorf("tab in description: %v", err)
	}
}

func parseOne(t *testing.T, h string) mpp.Challenge {
	t.Helper()
	cs, err := mpp.ParseChallenges(h)
	if err != nil {
		t.Fatalf("ParseChallenges(%s): %v", h, err)
	}
	if len(cs) != 1 {
		t.Fatalf("ParseChallenges(%s) returned %d challenges, want 1", h, len(cs))
	}
	return cs[0]
}

const minimal = `id="i", realm="r", method="tempo", intent="charge", request="e30"`

func TestParseChallenges(t *testing.T) {
	base := mpp.Challenge{ID: "i", Realm: "r", Method: "tempo", Intent: "charge", Request: "e30"}
	with := func(f func(*mpp.Challenge)) mpp.Challenge {
		c := base
		f(&c)
		return c
	}
	cases := []struct {
		name   string
		header string
		want   []mpp.Challenge
	}{
		{"minimal", "Payment " + minimal, []mpp.Challenge{base}},
		{"scheme lower case", "payment " + minimal, []mpp.Challenge{base}},
		{"scheme upper case", "PAYMENT " + minimal, []mpp.Challenge{base}},
		{"param names case-insensitive", `Payment ID="i", Realm="r", METHOD="tempo", Intent="charge", Request="e30"`, []mpp.Challenge{base}},
		{"unquoted tokens", `Payment id=i, realm=r, method=tempo, intent=charge, request=e30, expires=2025-01-06T12:00:00Z, digest=sha-256=abc=`,
			[]mpp.Challenge{with(func(c *mpp.Challenge) { c.Expires, c.Digest = "2025-01-06T12:00:00Z", "sha-256=abc=" })}},
		{"unknown params ignored", `Payment ` + minimal + `, foo="bar", x-ext=1, hint="a, b"`, []mpp.Challenge{base}},
		{"params in any order", `Payment request="e30", intent="charge", method="tempo", realm="r", id="i"`, []mpp.Challenge{base}},
		{"optional fields", `Payment ` + minimal + `, expires="2025-01-06T12:00:00Z", description="d", digest="sha-256=x", opaque="e30"`,
			[]mpp.Challenge{with(func(c *mpp.Challenge) {
				c.Expires, c.Description, c.Digest, c.Opaque = "2025-01-06T12:00:00Z", "d", "sha-256=x", "e30"
			})}},
		{"escapes", `Payment ` + minimal + `, description="a\"b\\c\,d\u2615"`,
			[]mpp.Challenge{with(func(c *mpp.Challenge) { c.Description = `a"b\c,du2615` })}},
		{"comma inside quotes", `Payment id="i", realm="r, s", method="tempo", intent="charge", request="e30"`,
			[]mpp.Challenge{with(func(c *mpp.Challenge) { c.Realm = "r, s" })}},
		{"Payment<SP> inside quotes is not a split point", `Payment id="i", realm="x, Payment id=y", method="tempo", intent="charge", request="e30"`,
			[]mpp.Challenge{with(func(c *mpp.Challenge) { c.Realm = "x, Payment id=y" })}},
		{"optional whitespace", "Payment  id = \"i\" ,realm=\"r\",\tmethod=\"tempo\" , intent=\"charge\",request=\"e30\"  ", []mpp.Challenge{base}},
		{"empty list elements", "Payment " + minimal + ",,  ,", []mpp.Challenge{base}},
		{"two challenges in one header",
			`Payment ` + minimal + `, Payment id="j", realm="r", method="stripe", intent="charge", request="e30"`,
			[]mpp.Challenge{base, with(func(c *mpp.Challenge) { c.ID, c.Method = "j", "stripe" })}},
		{"other schemes skipped",
			`Bearer realm="api", error="invalid_token", Basic dXNlcjpwYXNz==, Payment ` + minimal + `, Negotiate, DPoP algs="ES256"`,
			[]mpp.Challenge{base}},
		{"PaymentX is another scheme", `PaymentX a="b", Payment ` + minimal, []mpp.Challenge{base}},
		{"empty quoted optional", `Payment ` + minimal + `, description=""`, []mpp.Challenge{base}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mpp.ParseChallenges(tc.header)
			if err != nil {
				t.Fatalf("ParseChallenges: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d challenges %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("challenge %d:\n got %+v\nwant %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseChallengesRejects(t *testing.T) {
	cases := []struct{ name, header, want string }{
		{"empty", "", "no Payment challenge"},
		{"other scheme only", `Bearer realm="x"`, "no Payment challenge"},
		{"scheme only", "Payment", "missing or empty id"},
		{"duplicate param", `Payment ` + minimal + `, realm="s"`, `duplicate parameter "realm"`},
		{"duplicate param differing in case", `Payment ` + minimal + `, Realm="r"`, `duplicate parameter "realm"`},
		{"duplicate unknown param", `Payment ` + minimal + `, x="1", x="2"`, `duplicate parameter "x"`},
		{"unterminated quote", `Payment id="i, realm="r"`, "unterminated"},
		{"unterminated quote at end", `Payment ` + minimal + `, description="abc`, "unterminated"},
		{"escape at end", `Payment ` + minimal + `, description="abc\`, "unterminated"},
		{"missing id", `Payment realm="r", method="tempo", intent="charge", request="e30"`, "missing or empty id"},
		{"empty id", `Payment id="", realm="r", method="tempo", intent="charge", request="e30"`, "missing or empty id"},
		{"missing realm", `Payment id="i", method="tempo", intent="charge", request="e30"`, "missing or empty realm"},
		{"missing method", `Payment id="i", realm="r", intent="charge", request="e30"`, "missing or empty method"},
		{"missing intent", `Payment id="i", realm="r", method="tempo", request="e30"`, "missing or empty intent"},
		{"missing request", `Payment id="i", realm="r", method="tempo", intent="charge"`, "missing or empty request"},
		{"second challenge incomplete", `Payment ` + minimal + `, Payment id="j"`, "Payment challenge 2: missing or empty realm"},
		{"token68 for Payment", `Payment abc`, "expected name=value"},
		{"missing comma", `Payment id="i" realm="r"`, "after quoted-string"},
		{"space in unquoted value", `Payment id=a b, realm="r"`, "unquoted value"},
		{"empty unquoted value", `Payment id=, realm="r"`, "no value"},
		{"param before scheme", minimal, "before any auth-scheme"},
		{"junk after scheme", `Payment"id"`, "after auth-scheme"},
		{"CR in header", "Payment " + minimal + ",\r\n description=\"x\"", "control character"},
		{"LF inside quotes", "Payment " + minimal + ", description=\"a\nb\"", "control character"},
		{"escaped LF", "Payment " + minimal + ", description=\"a\\\nb\"", "control character"},
		{"NUL", "Payment " + minimal + ", description=\"a\x00\"", "control character"},
		{"oversize", "Payment " + minimal + `, description="` + strings.Repeat("a", mpp.MaxHeaderBytes) + `"`, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mpp.ParseChallenges(tc.header)
			if err == nil {
				t.Fatalf("ParseChallenges = %+v, want error", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestChallengeHeaderRoundTrip(t *testing.T) {
	c := newTestChallenge(t, baseParams())
	c.Description = `Quote " and backslash \ and comma, fine`
	h, err := mpp.FormatChallenge(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseOne(t, h); got != c {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
	}
	// Two formatted challenges joined as one header value, as a server
	// offering two methods may send them.
	c2 := c
	c2.Method = "stripe"
	c2.ID = mpp.ComputeID(testSecret, c2)
	h2, err := mpp.FormatChallenge(c2)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mpp.ParseChallenges(h + ", " + h2)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0] != c || cs[1] != c2 {
		t.Fatalf("joined header parsed as %+v", cs)
	}
	for _, got := range cs {
		if !got.VerifyID(testSecret) {
			t.Errorf("parsed challenge %s does not verify", got.ID)
		}
	}
	// A header exactly at the size limit is accepted.
	c.Description = ""
	h, _ = mpp.FormatChallenge(c)
	pad := mpp.MaxHeaderBytes - len(h) - len(`, x=""`)
	atLimit := h + `, x="` + strings.Repeat("a", pad) + `"`
	if len(atLimit) != mpp.MaxHeaderBytes {
		t.Fatalf("test bug: header is %d bytes", len(atLimit))
	}
	if _, err := mpp.ParseChallenges(atLimit); err != nil {
		t.Errorf("header of exactly %d bytes: %v", mpp.MaxHeaderBytes, err)
	}
}

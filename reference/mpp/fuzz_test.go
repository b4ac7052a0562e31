package mpp_test

import (
	"errors"
	"testing"

	"github.com/mppws/conformance/reference/mpp"
)

// FuzzParseAuthorization checks that any header either parses into a
// credential that formats and re-parses to itself, or fails with a *Problem;
// it must never panic.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("Payment " + token(`{"challenge":`+echoJSON+`,"payload":{}}`))
	f.Add("Bearer x, payment " + token(`{"challenge":`+echoJSON+`,"source":"did:x","payload":{"a":1}}`))
	f.Add("Payment !!!")
	f.Add("Payment e30=")
	f.Add("Payment , Payment")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		c, err := mpp.ParseAuthorization(h)
		if err != nil {
			var p *mpp.Problem
			if !errors.As(err, &p) {
				t.Fatalf("error %v is not a *Problem", err)
			}
			return
		}
		again, err := mpp.FormatAuthorization(c)
		if err != nil {
			t.Fatalf("parsed credential %+v does not format: %v", c, err)
		}
		c2, err := mpp.ParseAuthorization(again)
		if err != nil {
			t.Fatalf("formatted credential %q does not parse: %v", again, err)
		}
		if c2.Challenge != c.Challenge || c2.Source != c.Source {
			t.Fatalf("round trip changed credential: %+v vs %+v", c, c2)
		}
	})
}

// FuzzParseChallenges checks that ParseChallenges never panics and that
// whatever it accepts survives a format/parse round trip unchanged.
func FuzzParseChallenges(f *testing.F) {
	f.Add(`Payment ` + minimal)
	f.Add(`Payment ` + minimal + `, Payment id="j", realm="r", method="stripe", intent="charge", request="e30"`)
	f.Add(`Bearer realm="x", Payment id=i, realm=r, method=tempo, intent=charge, request=e30, description="a\"b\\c"`)
	f.Add(`Payment id="unterminated`)
	f.Add(`Payment ` + minimal + `, realm="dup"`)
	f.Add(`Basic dXNlcjpwYXNz==, Payment`)
	f.Fuzz(func(t *testing.T, h string) {
		cs, err := mpp.ParseChallenges(h)
		if err != nil {
			return
		}
		for _, c := range cs {
			formatted, err := mpp.FormatChallenge(c)
			if err != nil {
				t.Fatalf("parsed challenge %+v does not format: %v", c, err)
			}
			back, err := mpp.ParseChallenges(formatted)
			if err != nil {
				t.Fatalf("formatted challenge %q does not parse: %v", formatted, err)
			}
			if len(back) != 1 || back[0] != c {
				t.Fatalf("round trip changed challenge: %+v vs %+v", c, back)
			}
		}
	})
}

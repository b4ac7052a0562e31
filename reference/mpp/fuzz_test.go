package mpp_test

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

var b64 = base64.RawURLEncoding

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

// FuzzDecodeJSON checks that DecodeJSON accepts only unpadded base64url of
// strict JSON, and that whatever it accepts re-encodes (JCS, base64url) to
// a value that decodes to the same thing, as a generic value and as the
// session request a challenge carries.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"amount":"1000","currency":"0x20c0","recipient":"0x1","methodDetails":{"chainId":4217,"escrowContract":"0x4d50","sessionProtocol":"v2"}}`,
		`{"amount":"1","AMOUNT":"2"}`,
		`{"amount":"1","amount":"2"}`,
		`{"a":[1,2.5,-0,1e21,null,true,{"b":"\u00e9"}]}`,
		`"\ud800"`,
		"\"\xff\"",
		`1e400`,
	} {
		f.Add(b64.EncodeToString([]byte(s)))
	}
	f.Add("e30=")
	f.Add("eyJh\nIjoxfQ")
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if err := mpp.DecodeJSON(s, &v); err == nil {
			if strings.ContainsAny(s, "=+/ \t\r\n") {
				t.Fatalf("DecodeJSON accepted %q, not unpadded base64url", s)
			}
			again, err := mpp.EncodeJSON(v)
			if err != nil {
				t.Fatalf("decoded %q to %v, which EncodeJSON refuses: %v", s, v, err)
			}
			var w any
			if err := mpp.DecodeJSON(again, &w); err != nil || !reflect.DeepEqual(v, w) {
				t.Fatalf("re-encoded %q as %q, which decodes to %v (%v), not %v", s, again, w, err, v)
			}
		}
		var req tempo.SessionRequest
		if err := mpp.DecodeJSON(s, &req); err == nil {
			var generic any
			if err := mpp.DecodeJSON(s, &generic); err != nil {
				t.Fatalf("%q decodes as a session request but not as a value: %v", s, err)
			}
			if m, ok := generic.(map[string]any); ok {
				if a, ok := m["amount"].(string); ok && a != req.Amount {
					t.Fatalf("%q: amount %q, but the member named exactly amount holds %q", s, req.Amount, a)
				}
			}
		}
	})
}

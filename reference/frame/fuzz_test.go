package frame

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"
)

// fuzzDecode checks what every decoded frame must satisfy: its input was
// valid UTF-8 JSON, its kind is one the dialect defines for the direction,
// and it encodes to a frame that decodes to the same frame.
func fuzzDecode(t *testing.T, d Dialect, b []byte) {
	for _, dir := range []Direction{FromClient, FromServer} {
		fr, err := d.Decode(b, dir)
		if err != nil {
			continue
		}
		if !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("dialect %s decoded invalid JSON or UTF-8 %q", d.Name(), b)
		}
		if !slices.ContainsFunc(d.Schema(), func(s Spec) bool { return s.Kind == fr.Kind && s.Dir == dir }) {
			t.Fatalf("dialect %s decoded %q from %s as %s, a kind it has not for that direction", d.Name(), b, dir, fr.Kind)
		}
		enc, err := d.Encode(fr)
		if err != nil {
			t.Fatalf("dialect %s decoded %q but cannot encode %+v: %v", d.Name(), b, fr, err)
		}
		again, err := d.Decode(enc, dir)
		if err != nil {
			t.Fatalf("dialect %s: re-encoded %q does not decode: %v", d.Name(), enc, err)
		}
		if !sameFrame(fr, again) {
			t.Fatalf("dialect %s round trip changed the frame:\n in  %q\n out %q\n %+v\n %+v", d.Name(), b, enc, fr, again)
		}
	}
}

// sameFrame compares frames, raw JSON members by their compact form.
func sameFrame(a, b Frame) bool {
	compact := func(raw json.RawMessage) string {
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			return string(raw)
		}
		return buf.String()
	}
	return a.Kind == b.Kind && a.Credential == b.Credential && a.ChallengeError == b.ChallengeError &&
		a.NeedVoucher == b.NeedVoucher && a.Error == b.Error && a.Status == b.Status &&
		compact(a.Challenge) == compact(b.Challenge) && compact(a.Data) == compact(b.Data) &&
		compact(a.Receipt) == compact(b.Receipt)
}

// FuzzDecodeA decodes dialect A frames in both directions.
func FuzzDecodeA(f *testing.F) {
	for _, s := range []string{
		`{"type":"needVoucher","channelId":"a","requiredCumulative":"1","acceptedCumulative":"0","deposit":"9"}`,
		`{"type":"credential","credential":"Payment x"}`,
		`{"type":"message","data":{"a":[1,2.5e3,null,true]}}`,
		`{"type":"challenge","challenge":{"id":"x"},"error":"expired"}`,
		`{"type":"receipt","receipt":{"spent":"1"}}`,
		`{"type":"error","error":"\u00e9"}`,
		`{"type":"credential","credential":"a","credential":"b"}`,
		`{"type":"credential","Credential":"a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, A, b) })
}

// FuzzDecodeB decodes dialect B frames in both directions.
func FuzzDecodeB(f *testing.F) {
	for _, s := range []string{
		`{"mpp":"authorization","authorization":"Payment x"}`,
		`{"mpp":"payment-close-request"}`,
		`{"mpp":"message","data":"hi"}`,
		`{"mpp":"payment-need-voucher","data":{"channelId":"a","requiredCumulative":"1","acceptedCumulative":"0","deposit":"9"}}`,
		`{"mpp":"payment-receipt","data":{"spent":"1"}}`,
		`{"mpp":"payment-close-ready","data":{"spent":"2"}}`,
		`{"mpp":"payment-error","status":402.5,"message":"no"}`,
		`{"mpp":"payment-error","status":1e300,"message":"no"}`,
		`{"mpp":"authorization","authorization":"a","mpp":"message"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, B, b) })
}

package frame

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDialectARoundTrip(t *testing.T) {
	frames := []struct {
		f   Frame
		dir Direction
		raw string
	}{
		{Frame{Kind: KindCredential, Credential: "Payment abc"}, FromClient, `{"type":"credential","credential":"Payment abc"}`},
		{Frame{Kind: KindMessage, Data: json.RawMessage(`{"jsonrpc":"2.0"}`)}, FromClient, `{"type":"message","data":{"jsonrpc":"2.0"}}`},
		{Frame{Kind: KindChallenge, Challenge: json.RawMessage(`{"id":"x"}`)}, FromServer, `{"type":"challenge","challenge":{"id":"x"}}`},
		{Frame{Kind: KindChallenge, Challenge: json.RawMessage(`{"id":"x"}`), ChallengeError: "expired"}, FromServer, `{"type":"challenge","challenge":{"id":"x"},"error":"expired"}`},
		{Frame{Kind: KindMessage, Data: StringData("unit-1")}, FromServer, `{"type":"message","data":"unit-1"}`},
		{Frame{Kind: KindNeedVoucher, NeedVoucher: NeedVoucher{"0x01", "20", "10", "100"}}, FromServer,
			`{"type":"needVoucher","channelId":"0x01","requiredCumulative":"20","acceptedCumulative":"10","deposit":"100"}`},
		{Frame{Kind: KindReceipt, Receipt: json.RawMessage(`{"status":"success"}`)}, FromServer, `{"type":"receipt","receipt":{"status":"success"}}`},
		{Frame{Kind: KindError, Error: "no"}, FromServer, `{"type":"error","error":"no"}`},
		// No HTML escaping, as serde and JSON.stringify.
		{Frame{Kind: KindReceipt, Receipt: json.RawMessage(`{"reference":"a&b<c>"}`)}, FromServer, `{"type":"receipt","receipt":{"reference":"a&b<c>"}}`},
		{Frame{Kind: KindError, Error: "<&>"}, FromServer, `{"type":"error","error":"<&>"}`},
	}
	for _, tc := range frames {
		b, err := A.Encode(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.raw {
			t.Errorf("encode %s: got %s, want %s", tc.f.Kind, b, tc.raw)
		}
		got, err := A.Decode(b, tc.dir)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		again, _ := A.Encode(got)
		if string(again) != tc.raw {
			t.Errorf("round trip %s: got %s", tc.raw, again)
		}
	}
}

func TestDialectADecodeErrors(t *testing.T) {
	cases := []struct {
		raw  string
		dir  Direction
		want string
	}{
		{`not json`, FromClient, "not a JSON object"},
		{`null`, FromClient, "not a JSON object"},
		{`[1]`, FromClient, "not a JSON object"},
		{`{}`, FromClient, `missing "type"`},
		{`{"type":7}`, FromClient, "want string"},
		{`{"type":"credntial"}`, FromClient, `unknown type "credntial"`},
		{`{"type":"credential"}`, FromClient, `missing field "credential"`},
		{`{"type":"credential","credential":{}}`, FromClient, `is object, want string`},
		{`{"type":"message","data":{}}`, FromServer, `is object, want string`},
		{`{"type":"needVoucher","channelId":"0x","requiredCumulative":5,"acceptedCumulative":"1","deposit":"9"}`, FromServer, `"requiredCumulative" is number`},
		{`{"type":"challenge","challenge":{},"error":3}`, FromServer, `"error" is number`},
		{`{"type":"receipt","receipt":"x"}`, FromServer, `is string, want object`},
		{`{"type":"challenge","challenge":{}}`, FromClient, "unknown type"},
	}
	for _, tc := range cases {
		_, err := A.Decode([]byte(tc.raw), tc.dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("decode %s: got %v, want error containing %q", tc.raw, err, tc.want)
		}
	}
	// Unknown extra fields are ignored, as serde does.
	if _, err := A.Decode([]byte(`{"type":"credential","credential":"Payment x","extra":[1]}`), FromClient); err != nil {
		t.Errorf("extra field: %v", err)
	}
}

// TestStrictNames: member names match exactly and none may repeat, in
// either dialect: a case variant is an unknown member, and of two values
// no reader could agree which counts.
func TestStrictNames(t *testing.T) {
	cases := []struct {
		d    Dialect
		raw  string
		dir  Direction
		want string
	}{
		{A, `{"type":"credential","Credential":"Payment x"}`, FromClient, `missing field "credential"`},
		{A, `{"TYPE":"credential","credential":"Payment x"}`, FromClient, `missing "type"`},
		{A, `{"type":"credential","credential":"Payment x","credential":"Payment y"}`, FromClient, "duplicate"},
		{A, `{"type":"message","type":"credential","credential":"Payment x","data":1}`, FromClient, "duplicate"},
		{A, `{"type":"message","data":{"a":1,"a":2}}`, FromClient, "duplicate"},
		{A, `{"type":"receipt","receipt":{"spent":"1","spent":"2"}}`, FromServer, "duplicate"},
		{A, "{\"type\":\"credential\",\"credential\":\"Payment \xff\"}", FromClient, "invalid UTF-8"},
		{B, `{"mpp":"authorization","Authorization":"Payment x"}`, FromClient, `missing field "authorization"`},
		{B, `{"mpp":"authorization","authorization":"Payment x","mpp":"authorization"}`, FromClient, "duplicate"},
		{B, `{"mpp":"payment-need-voucher","data":{"channelId":"a","requiredCumulative":"1","acceptedCumulative":"0","deposit":"9","deposit":"1"}}`, FromServer, "duplicate"},
		{B, `{"mpp":"payment-need-voucher","data":{"channelId":"a","RequiredCumulative":"1","acceptedCumulative":"0","deposit":"9"}}`, FromServer, `missing field "requiredCumulative"`},
	}
	for _, tc := range cases {
		_, err := tc.d.Decode([]byte(tc.raw), tc.dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("dialect %s decode %s: got %v, want error containing %q", tc.d.Name(), tc.raw, err, tc.want)
		}
	}
}

func TestDialectBRoundTrip(t *testing.T) {
	frames := []struct {
		f   Frame
		dir Direction
		raw string
	}{
		{Frame{Kind: KindCredential, Credential: "Payment abc"}, FromClient, `{"mpp":"authorization","authorization":"Payment abc"}`},
		{Frame{Kind: KindCloseRequest}, FromClient, `{"mpp":"payment-close-request"}`},
		{Frame{Kind: KindMessage, Data: StringData("hi")}, FromClient, `{"mpp":"message","data":"hi"}`},
		{Frame{Kind: KindMessage, Data: StringData("unit-1")}, FromServer, `{"mpp":"message","data":"unit-1"}`},
		{Frame{Kind: KindNeedVoucher, NeedVoucher: NeedVoucher{"0x01", "20", "10", "100"}}, FromServer,
			`{"mpp":"payment-need-voucher","data":{"channelId":"0x01","requiredCumulative":"20","acceptedCumulative":"10","deposit":"100"}}`},
		{Frame{Kind: KindReceipt, Receipt: json.RawMessage(`{"spent":"1"}`)}, FromServer, `{"mpp":"payment-receipt","data":{"spent":"1"}}`},
		{Frame{Kind: KindCloseReady, Receipt: json.RawMessage(`{"spent":"2"}`)}, FromServer, `{"mpp":"payment-close-ready","data":{"spent":"2"}}`},
		{Frame{Kind: KindError, Status: 402, Error: "no"}, FromServer, `{"mpp":"payment-error","status":402,"message":"no"}`},
		{Frame{Kind: KindReceipt, Receipt: json.RawMessage(`{"spent":"1","x":"<&>"}`)}, FromServer, `{"mpp":"payment-receipt","data":{"spent":"1","x":"<&>"}}`},
	}
	for _, tc := range frames {
		b, err := B.Encode(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.raw {
			t.Errorf("encode %s: got %s, want %s", tc.f.Kind, b, tc.raw)
		}
		got, err := B.Decode(b, tc.dir)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		again, _ := B.Encode(got)
		if string(again) != tc.raw {
			t.Errorf("round trip %s: got %s", tc.raw, again)
		}
	}
	if _, err := B.Encode(Frame{Kind: KindChallenge}); err == nil {
		t.Error("dialect B encoded a challenge frame; it has none")
	}
}

func TestDialectBDecodeErrors(t *testing.T) {
	cases := []struct {
		raw  string
		dir  Direction
		want string
	}{
		{`{"type":"credential","credential":"x"}`, FromClient, `missing "mpp"`},
		{`{"mpp":"authorization","authorization":5}`, FromClient, "want string"},
		{`{"mpp":"payment-need-voucher","data":{"channelId":"0x","requiredCumulative":1,"acceptedCumulative":"1","deposit":"1"}}`, FromServer, `"requiredCumulative" is number`},
		{`{"mpp":"payment-need-voucher","data":{"channelId":"0x"}}`, FromServer, `missing field "requiredCumulative"`},
		{`{"mpp":"payment-error","status":"402","message":"x"}`, FromServer, `"status" is string`},
		{`{"mpp":"payment-receipt","data":"x"}`, FromServer, "want object"},
		{`{"mpp":"payment-close-request"}`, FromServer, "unknown mpp"},
	}
	for _, tc := range cases {
		_, err := B.Decode([]byte(tc.raw), tc.dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("decode %s: got %v, want error containing %q", tc.raw, err, tc.want)
		}
	}
}

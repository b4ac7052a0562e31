package tempo

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// topLevelStrings scans a JSON object with the token reader, not the struct
// decoder, and returns its string members by exact name.
func topLevelStrings(t *testing.T, b []byte) map[string]string {
	t.Helper()
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		t.Fatalf("accepted payload %q is not an object", b)
	}
	out := map[string]string{}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			t.Fatalf("accepted payload %q: %v", b, err)
		}
		name := tok.String() // the token is valid only until the next read
		v, err := dec.ReadValue()
		if err != nil {
			t.Fatalf("accepted payload %q: %v", b, err)
		}
		if v.Kind() == '"' {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				t.Fatalf("accepted payload %q: member %s: %v", b, name, err)
			}
			out[name] = s
		}
	}
	return out
}

// FuzzDecodePayload decodes one input as a voucher (voucher, close) and as
// a topUp payload. Whatever is accepted must hold exactly the values of the
// exactly-named members (a case variant never counts) and survive an
// encode/decode round trip.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{
		`{"action":"voucher","channelId":"0x01","cumulativeAmount":"30","signature":"0xab","descriptor":{"payer":"0x1","salt":"0x2"}}`,
		`{"action":"voucher","cumulativeAmount":"30","CUMULATIVEAMOUNT":"40"}`,
		`{"action":"voucher","CumulativeAmount":"30"}`,
		`{"action":"voucher","cumulativeAmount":"30","cumulativeAmount":"40"}`,
		`{"action":"close","channelId":"0x01","cumulativeAmount":"9","signature":"0x","extra":[1,{"a":null}]}`,
		`{"action":"topUp","type":"transaction","channelId":"0x01","transaction":"0x02","additionalDeposit":"5"}`,
		`{"action":"voucher","descriptor":null}`,
		`{"action":7}`,
		`{"action":"\ud800"}`,
		"{\"action\":\"\xff\"}",
		`[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeVoucherPayload(b); err == nil {
			m := topLevelStrings(t, b)
			got := map[string]string{"action": v.Action, "channelId": v.ChannelID, "cumulativeAmount": v.CumulativeAmount, "signature": v.Signature}
			for name, val := range got {
				if val != m[name] {
					t.Fatalf("payload %q: %s = %q, but the member named exactly %s holds %q", b, name, val, name, m[name])
				}
			}
			enc, _ := json.Marshal(v)
			again, err := DecodeVoucherPayload(enc)
			if err != nil || !reflect.DeepEqual(again, v) {
				t.Fatalf("voucher payload round trip: %+v → %s → %+v (%v)", v, enc, again, err)
			}
		}
		if p, err := DecodeTopUpPayload(b); err == nil {
			m := topLevelStrings(t, b)
			got := map[string]string{"action": p.Action, "type": p.Type, "channelId": p.ChannelID, "transaction": p.Transaction, "additionalDeposit": p.AdditionalDeposit}
			for name, val := range got {
				if val != m[name] {
					t.Fatalf("payload %q: %s = %q, but the member named exactly %s holds %q", b, name, val, name, m[name])
				}
			}
			enc, _ := json.Marshal(p)
			again, err := DecodeTopUpPayload(enc)
			if err != nil || !reflect.DeepEqual(again, p) {
				t.Fatalf("topUp payload round trip: %+v → %s → %+v (%v)", p, enc, again, err)
			}
		}
	})
}

// FuzzParseAmount: an accepted amount is the decimal value of its text and
// fits the protocol; a rejected one wraps ErrInvalidAmount.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"0", "1000", "00012", "", "-1", "+1", "1e3", "0x10", " 1", "1_000", "١",
		"79228162514264337593543950335", "79228162514264337593543950336",
		"340282366920938463463374607431768211455", "340282366920938463463374607431768211456",
		strings.Repeat("9", 78), strings.Repeat("0", 79)} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, v2 bool) {
		p := V1
		if v2 {
			p = V2
		}
		v, err := ParseAmount(s, p)
		if err != nil {
			if !errors.Is(err, ErrInvalidAmount) {
				t.Fatalf("ParseAmount(%q, %s): %v does not wrap ErrInvalidAmount", s, p, err)
			}
			return
		}
		want, ok := new(big.Int).SetString(s, 10)
		if !ok || strings.ContainsAny(s, "+-_ ") || want.Cmp(v) != 0 {
			t.Fatalf("ParseAmount(%q, %s) = %s, not the decimal value of its text", s, p, v)
		}
		if v.Sign() < 0 || v.Cmp(p.MaxAmount()) > 0 {
			t.Fatalf("ParseAmount(%q, %s) = %s, outside 0..%s", s, p, v, p.MaxAmount())
		}
	})
}

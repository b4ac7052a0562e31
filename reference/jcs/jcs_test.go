package jcs

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestNumberFormattingRFC8785 is the IEEE-754 → ES6 table of RFC 8785
// Appendix B. The bit patterns pin values that a decimal literal could round
// to a neighbour of.
func TestNumberFormattingRFC8785(t *testing.T) {
	cases := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"}, // -0
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, tc := range cases {
		f := math.Float64frombits(tc.bits)
		got, err := appendNumber(nil, f)
		if err != nil {
			t.Fatalf("%016x: %v", tc.bits, err)
		}
		if string(got) != tc.want {
			t.Errorf("%016x: got %s, want %s", tc.bits, got, tc.want)
		}
		// The same value reached through JSON text must format identically.
		text := strconv.FormatFloat(f, 'g', -1, 64)
		canon, err := Canonicalize([]byte(text))
		if err != nil {
			t.Fatalf("Canonicalize(%s): %v", text, err)
		}
		if string(canon) != tc.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", text, canon, tc.want)
		}
	}
}

func TestNumberFormattingNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := appendNumber(nil, f); !errors.Is(err, errNonFinite) {
			t.Errorf("appendNumber(%v): err = %v, want errNonFinite", f, err)
		}
	}
}

// TestNumberText covers number literals as they appear in JSON text: the ES6
// boundaries (1e21, 1e-7), exponent and fraction spellings that collapse to
// the same value, and the float64 range limits.
func TestNumberText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"0", "0"},
		{"-0", "0"},
		{"-0.0e-5", "0"},
		{"1", "1"},
		{"-1", "-1"},
		{"100", "100"},
		{"1E2", "100"},
		{"1e+2", "100"},
		{"4.50", "4.5"},
		{"2e-3", "0.002"},
		{"0.000001", "0.000001"},
		{"0.0000001", "1e-7"},
		{"1e-7", "1e-7"},
		{"-1e-7", "-1e-7"},
		{"1e20", "100000000000000000000"},
		{"1e21", "1e+21"},
		{"1E30", "1e+30"},
		{"123456789012345678901", "123456789012345680000"},
		{"123456789012345680000", "123456789012345680000"},
		{"9007199254740993", "9007199254740992"}, // nearest double
		{"333333333.33333329", "333333333.3333333"},
		{"0.000000000000000000000000001", "1e-27"},
		{"5e-324", "5e-324"},
		{"2.4703282292062328e-324", "5e-324"},
		{"1e-400", "0"}, // underflows to zero, which is representable
		{"1.7976931348623157e308", "1.7976931348623157e+308"},
		{"0.1", "0.1"},
		{"1.5e300", "1.5e+300"},
		{"123e-20", "1.23e-18"},
	}
	for _, tc := range cases {
		got, err := Canonicalize([]byte(tc.in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestRFC8785Examples uses the two worked examples of RFC 8785 §3.2.2 and
// §3.2.3.
func TestRFC8785Examples(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{
			name: "§3.2.2 serialization",
			in: `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			want: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			name: "§3.2.3 sorting by UTF-16 code units",
			in: `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`,
			want: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCanonicalize(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"whitespace removed", " { \"b\" : [ 1 , 2 ] ,\n\t\"a\" : { } , \"c\":[ ] }\r\n", `{"a":{},"b":[1,2],"c":[]}`},
		{"nested objects sorted", `{"z":{"b":1,"a":2},"a":[{"y":1,"x":2}]}`, `{"a":[{"x":2,"y":1}],"z":{"a":2,"b":1}}`},
		{"array order kept", `["b","a",3,1]`, `["b","a",3,1]`},
		{"scalars at top level", `"x"`, `"x"`},
		{"literals", `[true,false,null]`, `[true,false,null]`},
		{"sort is by code unit not by length", `{"aa":1,"b":2,"a":3}`, `{"a":3,"aa":1,"b":2}`},
		{"upper case before lower case", `{"a":1,"B":2}`, `{"B":2,"a":1}`},
		// U+1F600 is D83D DE00 in UTF-16, below U+FFFD; in UTF-8 bytes it is
		// F0..., above EF BF BD. JCS must use the UTF-16 order.
		{"non-BMP before U+FFFD", "{\"\uFFFD\":1,\"\U0001F600\":2}", "{\"\U0001F600\":2,\"\uFFFD\":1}"},
		{"non-BMP before U+E000", "{\"\uE000\":1,\"\U00010000\":2}", "{\"\U00010000\":2,\"\uE000\":1}"},
		{"BMP below surrogates before non-BMP", "{\"\U0001F600\":1,\"\u4e2d\":2}", "{\"\u4e2d\":2,\"\U0001F600\":1}"},
		{"two non-BMP keys", "{\"\U0001F601\":1,\"\U0001F600\":2,\"\U00020000\":3}", "{\"\U0001F600\":2,\"\U0001F601\":1,\"\U00020000\":3}"},
		{"escaped key sorts by its value", `{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
		{"html characters stay raw", `{"d":"\u003ctag\u003e\u0026value"}`, `{"d":"<tag>&value"}`},
		{"solidus unescaped", `"a\/b/c"`, `"a/b/c"`},
		{"U+2028 and U+2029 raw", `"\u2028\u2029"`, "\"\u2028\u2029\""},
		{"short escapes", `"\b\f\n\r\t\"\\"`, `"\b\f\n\r\t\"\\"`},
		{"other controls as lower-case \\u00xx", `"\u0000\u0001\u001F\u000B"`, `"\u0000\u0001\u001f\u000b"`},
		{"DEL raw", `"\u007f"`, "\"\x7f\""},
		{"non-ASCII raw", `"caf\u00e9 \u2615"`, `"café ☕"`},
		{"surrogate pair decoded", `"\uD83D\uDE00"`, "\"\U0001F600\""},
		{"raw UTF-8 kept", "\"Payment for café ☕\"", "\"Payment for café ☕\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestCanonicalizeRejects(t *testing.T) {
	cases := []struct{ name, in, wantMsg string }{
		{"empty", ``, "unexpected end of input"},
		{"only whitespace", "  ", "unexpected end of input"},
		{"trailing data", `{} {}`, "after top-level value"},
		{"trailing comma in object", `{"a":1,}`, "member name"},
		{"trailing comma in array", `[1,]`, "looking for a value"},
		{"missing colon", `{"a" 1}`, "expected ':'"},
		{"unquoted key", `{a:1}`, "member name"},
		{"single quotes", `'a'`, "looking for a value"},
		{"unterminated string", `"abc`, "unterminated string"},
		{"unterminated object", `{"a":1`, "unexpected end of input"},
		{"unterminated array", `[1`, "unexpected end of input"},
		{"raw control char", "\"a\x01\"", "control character"},
		{"raw newline", "\"a\nb\"", "control character"},
		{"bad escape", `"\x"`, "invalid escape"},
		{"truncated unicode escape", `"\u12"`, "truncated \\u escape"},
		{"bad hex", `"\u12G4"`, "hex digit"},
		{"lone high surrogate", `"\uD800"`, "unpaired high surrogate"},
		{"high surrogate then letter", `"\uD800x"`, "unpaired high surrogate"},
		{"high surrogate then BMP escape", `"\uD800\u0041"`, "followed by"},
		{"lone low surrogate", `"\uDC00"`, "unpaired low surrogate"},
		{"invalid UTF-8", "\"\xff\"", "invalid UTF-8"},
		{"truncated UTF-8", "\"\xe2\x82\"", "invalid UTF-8"},
		{"UTF-8 encoded surrogate", "\"\xed\xa0\x80\"", "invalid UTF-8"},
		{"overlong UTF-8", "\"\xc0\xaf\"", "invalid UTF-8"},
		{"duplicate key", `{"a":1,"a":2}`, "duplicate object member name \"a\""},
		{"duplicate key via escape", `{"a":1,"\u0061":2}`, "duplicate"},
		{"duplicate nested key", `{"x":{"b":1,"c":2,"b":3}}`, "duplicate"},
		{"leading zero", `01`, "after top-level value"},
		{"leading plus", `+1`, "looking for a value"},
		{"bare minus", `-`, "missing integer digits"},
		{"missing fraction", `1.`, "missing fraction digits"},
		{"missing exponent", `1e`, "missing exponent digits"},
		{"missing exponent after sign", `1e+`, "missing exponent digits"},
		{"leading dot", `.5`, "looking for a value"},
		{"hex", `0x10`, "after top-level value"},
		{"NaN", `NaN`, "looking for a value"},
		{"Infinity", `Infinity`, "looking for a value"},
		{"overflow", `1e309`, "out of float64 range"},
		{"negative overflow", `-1.8e308`, "out of float64 range"},
		{"bad literal", `tru`, "invalid literal"},
		{"literal case", `True`, "looking for a value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tc.in))
			if err == nil {
				t.Fatalf("Canonicalize(%q) = %q, want error", tc.in, got)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("error %v is not a *SyntaxError", err)
			}
		})
	}
}

func TestNestingLimit(t *testing.T) {
	ok := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := Canonicalize([]byte(ok)); err != nil {
		t.Fatalf("depth %d: %v", maxDepth, err)
	}
	deep := strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1)
	if _, err := Canonicalize([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nesting") {
		t.Fatalf("depth %d: err = %v, want nesting error", maxDepth+1, err)
	}
}

func TestMarshal(t *testing.T) {
	type methodDetails struct {
		ChainID  int  `json:"chainId"`
		FeePayer bool `json:"feePayer"`
	}
	cases := []struct {
		name string
		in   any
		want string
	}{
		{
			name: "struct fields sorted",
			in: struct {
				Recipient     string        `json:"recipient"`
				Amount        string        `json:"amount"`
				MethodDetails methodDetails `json:"methodDetails"`
			}{"0xabc", "1000000", methodDetails{42431, true}},
			want: `{"amount":"1000000","methodDetails":{"chainId":42431,"feePayer":true},"recipient":"0xabc"}`,
		},
		{
			// encoding/json would emit \u003c, \u003e, \u0026 and \u2028.
			name: "encoding/json escapes undone",
			in:   map[string]string{"description": "<tag>&value\u2028"},
			want: "{\"description\":\"<tag>&value\u2028\"}",
		},
		{
			name: "non-BMP key order differs from encoding/json",
			in:   map[string]int{"\uFFFD": 1, "\U0001F600": 2},
			want: "{\"\U0001F600\":2,\"\uFFFD\":1}",
		},
		{
			name: "raw message re-canonicalized",
			in:   json.RawMessage(`{ "b": 1.50, "a": 1e21 }`),
			want: `{"a":1e+21,"b":1.5}`,
		},
		{name: "empty map", in: map[string]string{}, want: `{}`},
		{name: "float", in: []float64{0.1, 0.2, 1e21}, want: `[0.1,0.2,1e+21]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	if _, err := Marshal(math.Inf(1)); err == nil {
		t.Error("Marshal(+Inf) succeeded, want error")
	}
}

// FuzzCanonicalize checks that Canonicalize never panics, that its output is
// a fixed point, and that the output means the same as the input to
// encoding/json (same values after decoding).
func FuzzCanonicalize(f *testing.F) {
	seeds := []string{
		`{"amount":"1000000","currency":"0x1234","methodDetails":{"chainId":42431}}`,
		`{"b":[1,2.5,-0,1e21,1e-7],"a":{"\u00e9":"\u2028","\ud83d\ude00":null}}`,
		`[true,false,null,"\u0000\"\\\/"]`,
		`{"a":1,"a":2}`,
		`"\uD800"`,
		"\"\xff\"",
		`123456789012345678901234567890`,
		`1e400`,
		` { } `,
		`[[[[]]]]`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		if err != nil {
			return
		}
		again, err := Canonicalize(out)
		if err != nil {
			t.Fatalf("output %q does not re-canonicalize: %v", out, err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n in  %q\n out %q\n out2 %q", in, out, again)
		}
		if !json.Valid(in) || !json.Valid(out) {
			t.Fatalf("accepted invalid JSON: in %q out %q", in, out)
		}
		var vin, vout any
		if err := json.Unmarshal(in, &vin); err != nil {
			t.Fatalf("encoding/json rejects accepted input %q: %v", in, err)
		}
		if err := json.Unmarshal(out, &vout); err != nil {
			t.Fatalf("encoding/json rejects output %q: %v", out, err)
		}
		if !reflect.DeepEqual(vin, vout) {
			t.Fatalf("meaning changed:\n in  %q\n out %q", in, out)
		}
	})
}

package load

import (
	"fmt"
	"testing"

	"github.com/mppws/conformance/reference/frame"
)

func TestPlainMessageAgreesWithTheDecoder(t *testing.T) {
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		prefix := fmt.Sprintf(`{%q:"message","data":"`, d.TagKey())
		other := frame.A
		if d == frame.A {
			other = frame.B
		}
		plain, err := d.Encode(frame.Frame{Kind: frame.KindMessage, Data: frame.StringData("unit-17")})
		if err != nil {
			t.Fatal(err)
		}
		foreign, _ := other.Encode(frame.Frame{Kind: frame.KindMessage, Data: frame.StringData("unit-17")})
		cases := map[string]bool{
			string(plain):                    true,
			prefix + `"}`:                    true,
			prefix + `é ü"}`:                 true,
			string(foreign):                  false,
			prefix + `a\"b"}`:                false,
			prefix + `a\nb"}`:                false,
			prefix + "a\x01b\"}":             false,
			prefix + "\xff\"}":               false,
			prefix + `a"} `:                  false,
			prefix + `a","x":1}`:             false,
			`{ "type":"message","data":"a"}`: false,
		}
		for in, want := range cases {
			if got := plainMessage([]byte(in), prefix); got != want {
				t.Errorf("dialect %s: plainMessage(%q) = %v, want %v", d.Name(), in, got, want)
				continue
			}
			if f, err := d.Decode([]byte(in), frame.FromServer); want && (err != nil || f.Kind != frame.KindMessage) {
				t.Errorf("dialect %s: %q taken as a message, but the decoder says %v, %v", d.Name(), in, f.Kind, err)
			}
		}
	}
}

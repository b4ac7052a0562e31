package load

import (
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/mppws/conformance/fixtures"
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

// TestNeedVoucherOvertakingItsReceipt: in dialect B a need-voucher may
// come before the receipt of the voucher in flight. One from before that
// voucher landed is answered by it; one that shows it accepted is a new
// shortage the target will not ask again, so it must be paid.
func TestNeedVoucherOvertakingItsReceipt(t *testing.T) {
	ch := fixtures.Default()[0]
	a := newAccount(ch, big.NewInt(1), 10)
	st := &stream{s: &session{r: &runner{b: true, rec: &recorder{}}, acct: a}, stall: time.NewTimer(time.Hour)}
	a.slot <- struct{}{}
	amount, err := a.next(nil)
	if err != nil {
		t.Fatal(err)
	}
	st.pending = amount
	need := func(required, accepted string) frame.NeedVoucher {
		return frame.NeedVoucher{ChannelID: ch.ID.String(), RequiredCumulative: required, AcceptedCumulative: accepted, Deposit: ch.Deposit.String()}
	}
	if err := st.needVoucher(need("1", "0"), time.Now()); err != nil || st.want {
		t.Fatalf("a need-voucher from before the voucher in flight landed: want %v, err %v; it answers it", st.want, err)
	}
	if err := st.needVoucher(need("11", "10"), time.Now()); err != nil || !st.want || st.required.Int64() != 11 {
		t.Fatalf("a need-voucher showing the voucher accepted: want %v (required %v), err %v; it is a new shortage", st.want, st.required, err)
	}
}

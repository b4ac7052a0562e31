package server

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/mppws/conformance/reference/frame"
)

// Fault is one deliberate defect injected into the reference server: a
// "mutant". The conformance suite proves it can fail by running against each
// mutant and requiring the case IDs expected to catch it to fail.
type Fault string

// The mutants. Each comment says what the server does wrong.
const (
	FaultNone Fault = ""
	// FaultForgedID skips the challenge-id HMAC check and the check that the
	// id was issued on this connection.
	FaultForgedID Fault = "accept-forged-id"
	// FaultSkipEcho verifies only the id against the issued challenge and
	// never compares the echoed realm, method, intent, request and expires.
	FaultSkipEcho Fault = "skip-echo-compare"
	// FaultOtherConnection accepts a verified challenge issued on another
	// connection.
	FaultOtherConnection Fault = "accept-other-connection"
	// FaultExpired accepts expired challenges.
	FaultExpired Fault = "accept-expired"
	// FaultOverDeliver delivers one unit beyond what was paid at the first
	// shortage.
	FaultOverDeliver Fault = "over-deliver"
	// FaultNoNeedVoucher never sends needVoucher; a short stream just stalls.
	FaultNoNeedVoucher Fault = "no-need-voucher"
	// FaultWrongRequired sends requiredCumulative = spent, one tick short.
	FaultWrongRequired Fault = "wrong-required-cumulative"
	// FaultNonIncreasing treats an equal or decreasing voucher as paying for
	// one more unit.
	FaultNonIncreasing Fault = "accept-non-increasing"
	// FaultOverDeposit ignores the deposit when accepting vouchers.
	FaultOverDeposit Fault = "accept-over-deposit"
	// FaultWrongSigner accepts a voucher signed by any key.
	FaultWrongSigner Fault = "accept-wrong-signer"
	// FaultWrongSpent reports spent one tick low in the receipt.
	FaultWrongSpent Fault = "wrong-receipt-spent"
	// FaultSnakeCase writes snake_case field names in needVoucher and
	// receipt frames.
	FaultSnakeCase Fault = "snake-case-fields"
	// FaultDropNonJSON drops the connection on a frame that is not JSON.
	FaultDropNonJSON Fault = "drop-on-non-json"
	// FaultDoubleCharge charges two ticks for every unit delivered.
	FaultDoubleCharge Fault = "double-charge"
	// FaultWrongChannel accepts a voucher for another channel as paying for
	// the metered one.
	FaultWrongChannel Fault = "accept-wrong-channel"
	// FaultRacyCharge checks a channel's balance and deducts a unit in two
	// steps, so connections metering one channel at once can spend the same
	// funds: it over-delivers only under concurrency.
	FaultRacyCharge Fault = "racy-charge"

	// Dialect B mutants.

	// FaultLongCloseReason closes a rejected connection with the whole
	// problem as the reason, over RFC 6455's 123 bytes: the close fails and
	// the socket stays open (mppx bug B1).
	FaultLongCloseReason Fault = "long-close-reason"
	// FaultMessageBeforeReceipt starts the stream before the first receipt.
	FaultMessageBeforeReceipt Fault = "message-before-receipt"
	// FaultCloseReadySpent reports one tick more in close-ready than was
	// spent.
	FaultCloseReadySpent Fault = "close-ready-over-spent"
)

// Faults lists every mutant, in a stable order.
var Faults = []Fault{
	FaultForgedID, FaultSkipEcho, FaultOtherConnection, FaultExpired,
	FaultOverDeliver, FaultNoNeedVoucher, FaultWrongRequired, FaultNonIncreasing,
	FaultOverDeposit, FaultWrongSigner, FaultWrongSpent, FaultSnakeCase,
	FaultDropNonJSON, FaultDoubleCharge, FaultWrongChannel, FaultRacyCharge,
	FaultLongCloseReason, FaultMessageBeforeReceipt, FaultCloseReadySpent,
}

// Valid reports whether f is a known mutant.
func (f Fault) Valid() bool {
	for _, k := range Faults {
		if k == f {
			return true
		}
	}
	return false
}

// snakeCase is FaultSnakeCase: a dialect whose needVoucher and receipt
// frames use snake_case field names, as a serde default would.
type snakeCase struct{ frame.Dialect }

func (d snakeCase) Encode(f frame.Frame) ([]byte, error) {
	b, err := d.Dialect.Encode(f)
	if err != nil || (f.Kind != frame.KindNeedVoucher && f.Kind != frame.KindReceipt) {
		return b, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return json.Marshal(snakeKeys(v))
}

func snakeKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			out[snake(k)] = snakeKeys(val)
		}
		return out
	case []any:
		for i := range t {
			t[i] = snakeKeys(t[i])
		}
	}
	return v
}

func snake(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

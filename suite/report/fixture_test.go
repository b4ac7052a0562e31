package report

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mppws/conformance/reference/mpp"
)

const (
	fixtureChannel = "0x3b87753c356be144fabd8ad0bebc92572ee4307143fd8ab4165f73beb854f1bf"
	fixturePayer   = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
)

// transcriptBuilder writes transcripts as the suite records them, a
// millisecond apart.
type transcriptBuilder struct {
	at      time.Duration
	entries []Entry
}

func (b *transcriptBuilder) add(conn string, d Direction, text string) {
	b.at += time.Millisecond
	b.entries = append(b.entries, Entry{At: b.at, Conn: conn, Dir: d, Text: text})
}

// fixtureChallenge is a session challenge as the reference issues it.
func fixtureChallenge(t testing.TB) mpp.Challenge {
	t.Helper()
	ch, err := mpp.NewChallenge([]byte("fixture secret"), mpp.ChallengeParams{
		Realm: "reference.mpp-conformance", Method: "tempo", Intent: "session",
		Request: map[string]any{
			"amount": "1000", "currency": "0x20c0000000000000000000000000000000000000",
			"methodDetails": map[string]any{"chainId": 4217, "escrowContract": "0x4d50500000000000000000000000000000000000", "minVoucherDelta": "0", "sessionProtocol": "v2"},
			"recipient":     "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65", "unitType": "message",
		},
		Opaque:  map[string]string{"nonce": "yt4g36j_RmhHygIU"},
		Expires: time.Date(2026, 12, 1, 10, 45, 50, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// fixtureAuthorization is a voucher credential for cumulative, as the
// suite's payer signs it (the signature is not checked here).
func fixtureAuthorization(t testing.TB, ch mpp.Challenge, cumulative int) string {
	t.Helper()
	payload, _ := json.Marshal(map[string]string{
		"action": "voucher", "channelId": fixtureChannel, "cumulativeAmount": fmt.Sprint(cumulative),
		"signature": "0x" + strings.Repeat("5a", 65),
	})
	auth, err := mpp.FormatAuthorization(mpp.Credential{Challenge: ch, Source: "did:pkh:eip155:4217:" + fixturePayer, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return auth
}

// sessionTranscript is a dialect A session of n messages with a voucher
// every other message, closed by the harness.
func sessionTranscript(t testing.TB, n int) []Entry {
	b := &transcriptBuilder{}
	ch := fixtureChallenge(t)
	b.add("c1", Note, "connected to ws://127.0.0.1:41897/session")
	challenge, _ := json.Marshal(ch)
	b.add("c1", Received, fmt.Sprintf(`{"type":"challenge","challenge":%s}`, challenge))
	b.add("c1", Sent, fmt.Sprintf(`{"type":"credential","credential":%q}`, fixtureAuthorization(t, ch, 1000)))
	for i := 1; i <= n; i++ {
		b.add("c1", Received, fmt.Sprintf(`{"type":"message","data":"unit-%d"}`, i))
		if i%2 == 1 && i < n {
			b.add("c1", Received, fmt.Sprintf(`{"type":"needVoucher","channelId":%q,"requiredCumulative":"%d","acceptedCumulative":"%d","deposit":"100000000"}`,
				fixtureChannel, (i+1)*1000, i*1000))
			b.add("c1", Sent, fmt.Sprintf(`{"type":"credential","credential":%q}`, fixtureAuthorization(t, ch, (i+2)*1000)))
		}
	}
	b.add("c1", Note, "harness closes with 1000")
	b.add("c1", Received, `close 1000 ""`)
	return b.entries
}

// dialectBTranscript is a dialect B probe, authorization and receipt.
func dialectBTranscript(t testing.TB) []Entry {
	b := &transcriptBuilder{}
	ch := fixtureChallenge(t)
	header, err := mpp.FormatChallenge(ch)
	if err != nil {
		t.Fatal(err)
	}
	b.add("", Note, "probe GET http://127.0.0.1:41898/session: HTTP 402, WWW-Authenticate: "+header)
	b.add("c1", Note, "connected to ws://127.0.0.1:41898/session")
	b.add("c1", Sent, fmt.Sprintf(`{"mpp":"authorization","authorization":%q}`, fixtureAuthorization(t, ch, 1000)))
	b.add("c1", Received, fmt.Sprintf(`{"mpp":"payment-receipt","data":{"channelId":%q,"acceptedCumulative":"1000"}}`, fixtureChannel))
	b.add("c1", Received, `{"mpp":"message","data":"unit-1"}`)
	return b.entries
}

// fixtureAreas are the suite's areas with their case counts: 78 in all.
var fixtureAreas = []struct {
	area Area
	n    int
}{{"wire", 24}, {"replay", 20}, {"voucher", 20}, {"robust", 14}}

// greenRun is a passing run of 78 cases with transcripts as long as the
// suite's: mostly OK, some INFO, some NOT APPLICABLE.
func greenRun(t testing.TB) *Summary {
	t.Helper()
	s := &Summary{Kind: KindServer, Target: "reference (embedded)", Targets: []string{"ws://127.0.0.1:41897/session", "ws://127.0.0.1:41897/charge"}, Dialect: "A"}
	session := sessionTranscript(t, 12)
	for _, a := range fixtureAreas {
		for i := 1; i <= a.n; i++ {
			r := Result{
				ID: fmt.Sprintf("WS-%s-%03d", strings.ToUpper(string(a.area)), i), Title: fmt.Sprintf("%s case %d behaves", a.area, i),
				Level: MUST, Area: a.area, Dialects: []string{"A", "B"}, Verdict: OK,
				Duration: 40 * time.Millisecond, Seconds: 0.04,
				Requirement: "A voucher signed by a key other than the channel's signer delivers no message.",
				Source:      "protocol.md §6.5", Transcript: session,
			}
			switch {
			case i%9 == 0:
				r.Level, r.Verdict, r.Observed = INFO, Informational, []string{"the target closes with 1008 after a rejected credential"}
			case i%7 == 0:
				r.Dialects, r.Verdict, r.Reason, r.Transcript = []string{"B"}, NotApplicable, "a dialect B case; the target speaks dialect A", nil
			}
			s.Results = append(s.Results, r)
		}
	}
	s.Tally()
	return s
}

// mixedRun is greenRun with one case of every other verdict, a structured
// failure and one whose message carries the transcript as text.
func mixedRun(t testing.TB) *Summary {
	t.Helper()
	s := greenRun(t)
	set := func(id string, f func(*Result)) { f(resultOf(t, s, id)) }
	set("WS-WIRE-003", func(r *Result) {
		r.Verdict = Failed
		r.Expected = []string{"exactly 1 messages for the voucher of 2000, then a needVoucher"}
		r.Actual = `message 2: message frame {"type":"message","data":"unit-3"}`
		r.Failure = "[WS-WIRE-003] MUST: wire case 3 behaves\nActual: " + r.Actual
	})
	set("WS-VOUCHER-008", func(r *Result) {
		var lines []string
		for _, e := range sessionTranscript(t, 30) {
			lines = append(lines, e.String(600))
		}
		r.Verdict, r.Transcript = Failed, nil
		r.Failure = "[WS-VOUCHER-008] MUST: voucher case 8 behaves\nRequirement: " + r.Requirement + "\nSource:      " + r.Source +
			"\nExpected:    a receipt frame\nActual:      close 1011 \"internal error\"\nTranscript:\n" + strings.Join(lines, "\n") + "\n"
	})
	set("WS-ROBUST-002", func(r *Result) {
		r.Level, r.Verdict = SHOULD, NonStrict
		r.Expected, r.Actual = []string{"close 1009"}, "close 1011"
		r.Observed = []string{"NON-STRICT: close 1011"}
	})
	set("WS-REPLAY-004", func(r *Result) {
		r.Verdict, r.Reason = ExpectedFail, "known bug: replays are accepted within the same second"
	})
	set("WS-REPLAY-005", func(r *Result) {
		r.Dialects, r.Transcript = []string{"B"}, dialectBTranscript(t)
	})
	set("WS-ROBUST-011", func(r *Result) {
		r.Verdict, r.Reason, r.Transcript = NotRun, "the run was interrupted", nil
	})
	s.Problems = nil
	s.Tally()
	return s
}

func resultOf(t testing.TB, s *Summary, id string) *Result {
	t.Helper()
	for i := range s.Results {
		if s.Results[i].ID == id {
			return &s.Results[i]
		}
	}
	t.Fatalf("no case %s", id)
	return nil
}

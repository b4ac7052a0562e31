package clients

import (
	"context"
	"fmt"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/mppws/conformance/fixtures"
	refclient "github.com/mppws/conformance/reference/client"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/tempo"
)

// TestMain fails the package if a goroutine outlives its tests: every
// scripted server, connection and reader of a run must end with it.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestCatalogue(t *testing.T) {
	if err := validate(); err != nil {
		t.Fatal(err)
	}
	perArea := map[string]int{}
	perDialect := map[string]int{}
	for _, c := range Catalogue() {
		perArea[c.Area]++
		for _, d := range c.Dialects {
			perDialect[d]++
		}
	}
	for _, a := range Areas {
		if perArea[a] == 0 {
			t.Errorf("area %s has no case", a)
		}
	}
	if perDialect["A"] < 30 || perDialect["B"] < 30 {
		t.Errorf("cases per dialect %v, want at least 30 each", perDialect)
	}
	sel, err := Select([]string{"cheat", "WS-CLIENT-001"})
	if err != nil || len(sel) != perArea["cheat"]+1 {
		t.Fatalf("select cheat + one ID: %d cases, %v", len(sel), err)
	}
	if _, err := Select([]string{"WS-CLIENT-999"}); err == nil {
		t.Fatal("an unknown ID was selected")
	}
}

func TestReadExpectFail(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	os.WriteFile(good, []byte("# comment\nWS-CLIENT-022  # signs the deposit\n\n"), 0o644)
	m, err := ReadExpectFail(good)
	if err != nil || m["WS-CLIENT-022"] != "signs the deposit" || len(m) != 1 {
		t.Fatalf("got %v, %v", m, err)
	}
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("WS-VOUCHER-010\n"), 0o644)
	if _, err := ReadExpectFail(bad); err == nil {
		t.Fatal("a server case ID was accepted as a client case")
	}
}

// TestSignatureFindings: the scripted server tells a high-s encoding, the
// wrong domain and the wrong signer apart, on real signatures.
func TestSignatureFindings(t *testing.T) {
	ch := fixtures.Default()[0]
	amount := big.NewInt(123456)
	sig, err := tempo.SignVoucher(ch.SignerKey, ch.Domain(), ch.ID, amount)
	if err != nil {
		t.Fatal(err)
	}
	if string(lowS(lowS(sig))) != string(sig) {
		t.Fatal("lowS is not its own inverse")
	}
	if err, high := checkSignature(ch, amount, tempo.FormatSignature(sig)); err != nil || high {
		t.Fatalf("a good signature: %v, high-s %t", err, high)
	}
	if err, high := checkSignature(ch, amount, tempo.FormatSignature(lowS(sig))); err != nil || !high {
		t.Fatalf("the high-s twin: %v, high-s %t; want it recognized and otherwise valid", err, high)
	}
	other := ch.Domain()
	other.Protocol = tempo.V1
	wrong, _ := tempo.SignVoucher(ch.SignerKey, other, ch.ID, amount)
	if err, _ := checkSignature(ch, amount, tempo.FormatSignature(wrong)); err == nil || !strings.Contains(err.Error(), "v1 domain") {
		t.Fatalf("a v1-domain signature on a v2 channel: %v", err)
	}
	stranger, _ := tempo.SignVoucher(fixtures.Default()[1].SignerKey, ch.Domain(), ch.ID, amount)
	if err, _ := checkSignature(ch, amount, tempo.FormatSignature(stranger)); err == nil || !strings.Contains(err.Error(), "not the channel signer") {
		t.Fatalf("another key's signature: %v", err)
	}
}

func TestExpandQuotes(t *testing.T) {
	got := expand("client {url} --state {state} {case}", map[string]string{
		"url": "ws://127.0.0.1:1/case/WS-CLIENT-001/ab", "state": "/tmp/it's here", "case": "WS-CLIENT-001"})
	want := `client ws://127.0.0.1:1/case/WS-CLIENT-001/ab --state '/tmp/it'\''s here' WS-CLIENT-001`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

func TestCrashed(t *testing.T) {
	for _, tc := range []struct {
		ex   Exit
		out  string
		want bool
	}{
		{Exit{Code: 1}, "client: stream: server error: no", false},
		{Exit{Code: 2}, "panic: undecodable frame\n\ngoroutine 1 [running]:", true},
		{Exit{Code: 1}, "file:///x.mjs:3\n throw e\n ^\n\nError: boom\n\nNode.js v20.20.2\n", true},
		{Exit{Code: -1, Signal: "segmentation fault"}, "", true},
		{Exit{Code: 139}, "", true},
		{Exit{Code: 0}, "", false},
	} {
		if got := crashed(tc.ex, tc.out) != ""; got != tc.want {
			t.Errorf("%+v %q: crashed %t, want %t", tc.ex, tc.out, got, tc.want)
		}
	}
}

// TestSubprotocol: the scripted server selects the first subprotocol it
// accepts that the client offers, in its own order of preference, serves a
// client that offers none without one, and says in the case's transcript
// which were offered and which was selected.
func TestSubprotocol(t *testing.T) {
	c, _ := lookup("WS-CLIENT-001")
	for _, tc := range []struct {
		offer            []string
		want, transcript string
	}{
		{[]string{"json", "mpp", "mpp.v2"}, "mpp.v2", "offered subprotocols json, mpp, mpp.v2; selected mpp.v2"},
		{nil, "", "offered no subprotocol; selected none (the suite accepts mpp.v2, mpp)"},
	} {
		o := &options{dialect: frame.A, channels: fixtures.Default(), scale: 1, window: 100, subprotocols: []string{"mpp.v2", "mpp"}}
		ctx, cancel := context.WithCancel(context.Background())
		cr := newCaseRun(ctx, c, o, c.offerOf(o))
		hs := httptest.NewServer(cr)
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &websocket.DialOptions{Subprotocols: tc.offer})
		if err != nil {
			t.Fatalf("offering %q: %v", tc.offer, err)
		}
		got := ws.Subprotocol()
		ws.CloseNow()
		cancel()
		cr.wg.Wait()
		hs.Close()
		if got != tc.want {
			t.Errorf("offering %q: selected %q, want %q", tc.offer, got, tc.want)
		}
		if tr := cr.rec.Transcript(); !strings.Contains(tr, tc.transcript) {
			t.Errorf("offering %q: the transcript does not say %q:\n%s", tc.offer, tc.transcript, tr)
		}
	}
}

// TestListen drives --listen with the reference client in this process:
// it reads the printed URLs and connects to each (twice where a case asks
// for two runs). Every case passes on the wire alone.
func TestListen(t *testing.T) {
	if testing.Short() {
		t.Skip("listen run skipped in -short mode")
	}
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		t.Run(d.Name(), func(t *testing.T) {
			out := &connector{dialect: d}
			s, err := Run(context.Background(), Config{Listen: "127.0.0.1:0", Dialect: d.Name(), Out: out, Wait: 30 * time.Second,
				Select: []string{"WS-CLIENT-003", "WS-CLIENT-022", "WS-CLIENT-045", "WS-CLIENT-055"}})
			out.wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range s.Results {
				if r.Verdict != OK {
					t.Errorf("%s: %s %s%s", r.ID, r.Verdict, r.Reason, r.Failure)
				}
				if r.ID == "WS-CLIENT-022" && !strings.Contains(strings.Join(r.Observed, "\n"), "exit status not graded") {
					t.Errorf("%s does not say its exit status went ungraded: %q", r.ID, r.Observed)
				}
			}
		})
	}
}

// connector is --listen's output: for every case URL it prints, it runs
// the reference client against it.
type connector struct {
	dialect frame.Dialect
	mu      sync.Mutex
	wg      sync.WaitGroup
}

var caseURL = regexp.MustCompile(`^(WS-CLIENT-\d{3}) (ws://\S+)(  \(connect (\d) times)?`)

func (w *connector) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.Split(string(p), "\n") {
		m := caseURL.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		runs := 1
		if m[4] != "" {
			fmt.Sscan(m[4], &runs)
		}
		w.wg.Go(func() {
			ledger := refclient.NewLedger()
			for range runs {
				// Failures are the case's to judge.
				_, _ = refclient.Run(context.Background(), m[2], refclient.Config{Dialect: w.dialect, Ledger: ledger, Timeout: clientTimeout})
			}
		})
	}
	return len(p), nil
}

// TestReadmeCatalogue fails when README's client case table is not the
// catalogue's.
func TestReadmeCatalogue(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "### Client case catalogue\n\n")
	if !ok {
		t.Fatal(`README.md has no "### Client case catalogue" section`)
	}
	got, _, _ := strings.Cut(after, "\n\n")
	want := "| ID | Level | Dialects | Area | Title |\n|---|---|---|---|---|"
	for _, c := range Catalogue() {
		want += fmt.Sprintf("\n| %s | %s | %s | %s | %s |", c.ID, c.Level, strings.Join(c.Dialects, ","), c.Area, c.Title)
	}
	if got != want {
		t.Errorf("README.md's client case table differs from the catalogue; replace it with:\n\n%s", want)
	}
}

package suite_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/suite"
)

// Interop with mppx, the SDK that defines dialect B: its server is driven by
// this suite, its client pays our reference server. The Node side lives in
// testdata/mppx (server.mjs, client.mjs), installed from its lock file by
// `npm ci`.

const mppxDir = "testdata/mppx"

// mppxNode returns the node binary, or skips the test when the Node side
// cannot run here.
func mppxNode(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("mppx interop skipped in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("mppx interop needs Node.js: node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(mppxDir, "node_modules", "mppx")); err != nil {
		t.Skip("mppx interop: suite/testdata/mppx/node_modules is missing: run npm ci in suite/testdata/mppx")
	}
	return node
}

// TestInteropMppxServer runs the suite against mppx's own WebSocket session
// server: two instances of server.mjs (mppx's default challenge lifetime and a
// short one for the expiry case), each seeded with the fixture channel
// v2-payer-signs. Every applicable case must pass, except those listed in
// testdata/mppx/expect-fail.txt (known mppx defects).
//
// The suite runs in TestConformance re-run as a child process, given the
// targets (MPPWS_TARGET, comma-separated), their challenge HMAC key
// (MPPWS_SECRET) and the expect-fail file (MPPWS_EXPECT_FAIL).
func TestInteropMppxServer(t *testing.T) {
	node := mppxNode(t)
	var key [32]byte
	rand.Read(key[:])
	secret := hex.EncodeToString(key[:])
	targets := []string{
		startMppxServer(t, node, "--secret", secret),
		startMppxServer(t, node, "--secret", secret, "--challenge-ttl-seconds", "2"),
	}
	expectFail, err := filepath.Abs(filepath.Join(mppxDir, "expect-fail.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s, out, err := runChild(t,
		"MPPWS_TARGET="+strings.Join(targets, ","),
		"MPPWS_SECRET="+secret,
		"MPPWS_EXPECT_FAIL="+expectFail,
	)
	if err != nil {
		t.Fatalf("the suite wrote no report: %v\n%s", err, out)
	}
	if ran := strings.Join(s.Targets, "\n"); !strings.Contains(ran, targets[0]) || !strings.Contains(ran, targets[1]) {
		t.Fatalf("the suite ran against %q, not the mppx servers %q:\n%s", s.Targets, targets, out)
	}
	if !s.Passed {
		t.Fatalf("the mppx server is not conformant beyond its expected failures: %s\n%s", strings.Join(s.Problems, "; "), out)
	}
	t.Logf("mppx server: %d cases, %v", len(s.Results), s.Counts)
}

// TestInteropMppxClient has mppx's session client pay our reference server,
// in dialect B, for a whole session from the pre-opened fixture channel: at
// least three need-voucher rounds, close-ready, then the close handshake and
// its settlement receipt.
func TestInteropMppxClient(t *testing.T) {
	node := mppxNode(t)
	s := runMppxClient(t, node, referenceB(t))
	checkPaidSession(t, s)
	if s.Settlement == nil || s.Settlement.TxHash == "" {
		t.Fatalf("no settlement receipt with a txHash: %+v", s.Settlement)
	}
	if s.Settlement.AcceptedCumulative != s.CloseReady.Spent {
		t.Errorf("settlement acceptedCumulative %s, want the close-ready spent %s", s.Settlement.AcceptedCumulative, s.CloseReady.Spent)
	}
}

// referenceB starts the reference server in dialect B for this test and
// returns its session endpoint.
func referenceB(t *testing.T) string {
	t.Helper()
	ref, err := suite.StartReference(suite.ReferenceOptions{Dialect: "b"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ref.Close)
	for _, u := range ref.URLs {
		if strings.HasSuffix(u, "/session") {
			return u
		}
	}
	t.Fatalf("the dialect B reference has no /session endpoint: %q", ref.URLs)
	return ""
}

// TestInteropMppxPair checks the Node side on its own: mppx's client against
// mppx's server, up to close-ready. The server cannot settle (its chain stub
// sends no transactions), so the client disconnects instead of closing.
func TestInteropMppxPair(t *testing.T) {
	node := mppxNode(t)
	s := runMppxClient(t, node, startMppxServer(t, node, "--messages", "60"), "--no-settle")
	checkPaidSession(t, s)
	if s.Messages != 60 {
		t.Errorf("%d messages, want 60", s.Messages)
	}
	if s.Settlement != nil {
		t.Errorf("settled with --no-settle: %+v", s.Settlement)
	}
}

// startMppxServer runs server.mjs with args until the test ends and returns
// the ws:// URL it prints. Its stderr is logged if the test fails.
func startMppxServer(t *testing.T, node string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), node, append([]string{"server.mjs"}, args...)...)
	cmd.Dir = mppxDir
	url := make(chan string, 1)
	var stderr bytes.Buffer // written by exec's copier; read only after Wait
	cmd.Stdout, cmd.Stderr = &firstLine{line: url}, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	var started string
	// t.Context is cancelled, killing node, before cleanups run.
	t.Cleanup(func() {
		<-done
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("server.mjs at %s, stderr:\n%s", started, stderr.Bytes())
		}
	})
	select {
	case started = <-url:
		return started
	case <-done:
		t.Fatalf("server.mjs exited before printing its URL: %v\n%s", waitErr, stderr.Bytes())
	case <-time.After(30 * time.Second):
		t.Fatal("server.mjs printed no URL within 30s")
	}
	return ""
}

// firstLine is a child's stdout: it sends the first line to line and
// discards the rest.
type firstLine struct {
	buf  []byte
	line chan<- string // nil once sent
}

func (w *firstLine) Write(p []byte) (int, error) {
	if w.line == nil {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		w.line <- strings.TrimSpace(string(w.buf[:i]))
		w.buf, w.line = nil, nil
	}
	return len(p), nil
}

// mppxClientSummary is client.mjs's one-line JSON report.
type mppxClientSummary struct {
	ChannelID         string         `json:"channelId"`
	Tick              string         `json:"tick"`
	Messages          int            `json:"messages"`
	NeedVoucherRounds int            `json:"needVoucherRounds"`
	VouchersSent      int            `json:"vouchersSent"`
	CloseReady        *mppxReceipt   `json:"closeReady"`
	Settlement        *mppxReceipt   `json:"settlement"`
	Frames            map[string]any `json:"frames"`
}

// mppxReceipt is a dialect-B session receipt as client.mjs reports it.
type mppxReceipt struct {
	ChannelID          string `json:"channelId"`
	ChallengeID        string `json:"challengeId"`
	AcceptedCumulative string `json:"acceptedCumulative"`
	Spent              string `json:"spent"`
	Units              int    `json:"units"`
	TxHash             string `json:"txHash"`
}

// runMppxClient runs client.mjs against url and returns its summary; a
// client failure fails the test with the tail of its frame trace.
func runMppxClient(t *testing.T, node, url string, args ...string) mppxClientSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // client.mjs gives up after 60s itself
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"client.mjs", url}, args...)...)
	cmd.Dir = mppxDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client.mjs %s: %v\n%s", url, err, lastLines(stderr.String(), 40))
	}
	var s mppxClientSummary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("client.mjs summary %q: %v", out, err)
	}
	t.Logf("client.mjs: %d messages, %d need-voucher rounds, %d vouchers; frames %v", s.Messages, s.NeedVoucherRounds, s.VouchersSent, s.Frames)
	return s
}

// checkPaidSession requires a session paid in at least three need-voucher
// rounds whose close-ready charges exactly the messages delivered.
func checkPaidSession(t *testing.T, s mppxClientSummary) {
	t.Helper()
	if s.NeedVoucherRounds < 3 {
		t.Errorf("%d need-voucher rounds, want at least 3", s.NeedVoucherRounds)
	}
	if want := fixtureID(t, "v2-payer-signs"); !strings.EqualFold(s.ChannelID, want) { // see fixture.mjs
		t.Errorf("paid from channel %s, want the fixture %s", s.ChannelID, want)
	}
	tick, err := strconv.ParseUint(s.Tick, 10, 64)
	if err != nil || tick == 0 {
		t.Fatalf("tick %q is not a positive amount", s.Tick)
	}
	if s.CloseReady == nil {
		t.Fatal("no payment-close-ready")
	}
	if want := strconv.FormatUint(uint64(s.Messages)*tick, 10); s.CloseReady.Spent != want || s.CloseReady.Units != s.Messages {
		t.Errorf("close-ready spent %s for %d units, want %s (%d messages × tick %d)", s.CloseReady.Spent, s.CloseReady.Units, want, s.Messages, tick)
	}
}

func fixtureID(t *testing.T, name string) string {
	t.Helper()
	for _, ch := range fixtures.Default() {
		if ch.Name == name {
			return ch.ID.String()
		}
	}
	t.Fatalf("no fixture channel %s", name)
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mppws/conformance/suite"
	"github.com/mppws/conformance/suite/harness"
)

// The suite runs once per process (Ginkgo's rule), so CLI tests that run it
// execute this test binary as the conformance command.
func TestMain(m *testing.M) {
	if os.Getenv("CONFORMANCE_AS_CLI") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// cli runs the conformance command in a child process.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CONFORMANCE_AS_CLI=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("conformance %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

func TestListPrintsTheCatalogue(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--list"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	ids := 0
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "WS-") {
			ids++
		}
	}
	if ids < 40 {
		t.Fatalf("--list printed %d cases, want at least 40:\n%s", ids, out.String())
	}
}

func TestUsageAndSetupErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--no-such-flag"}, exitUsage, "flag provided but not defined"},
		{[]string{"http://example.com/"}, exitUsage, "want a ws:// or wss:// URL"},
		{[]string{"WS-NOPE-999"}, exitUsage, "neither a case ID nor an area"},
		{[]string{"--timeout-scale", "0.001"}, exitUsage, "timeout scale"},
		{[]string{"--mutant", "nope"}, exitUsage, "unknown"},
		{[]string{"--expect-fail", "/no/such/file"}, exitUsage, "expect-fail"},
		{[]string{"serve", "--tick", "-5"}, exitUsage, "--tick"},
		{[]string{"serve", "--intent", "subscribe"}, exitUsage, "intent"},
		{[]string{"serve", "extra"}, exitUsage, "no arguments"},
		{[]string{"client"}, exitUsage, "exactly one"},
		{[]string{"client", "ws://127.0.0.1:1/"}, exitSetup, "connect"},
		{[]string{"ws://127.0.0.1:1/"}, exitSetup, "setup failed"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("conformance %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

func TestEmbeddedRunWritesReports(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := cli(t, "--report-dir", dir, "wire", "WS-REPLAY-001")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"junit.xml", "ginkgo.json", "conformance.json", "summary.txt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("report %s: %v", f, err)
		}
	}
	var s struct {
		Passed bool
		Cases  []struct{ ID, Verdict string }
	}
	b, _ := os.ReadFile(filepath.Join(dir, "conformance.json"))
	want := 1 // WS-REPLAY-001
	for _, m := range suite.Catalogue() {
		if m.Area == harness.AreaWire {
			want++
		}
	}
	if err := json.Unmarshal(b, &s); err != nil || !s.Passed || len(s.Cases) != want {
		t.Fatalf("conformance.json: passed %v, %d cases (want %d), err %v", s.Passed, len(s.Cases), want, err)
	}
	if !strings.Contains(stdout, "CONFORMANT") {
		t.Errorf("summary missing from stdout:\n%s", stdout)
	}
}

func TestMutantFailsAndExpectFailGates(t *testing.T) {
	dir := t.TempDir()
	code, stdout, _ := cli(t, "--mutant", "accept-wrong-signer", "--report-dir", dir, "WS-VOUCHER-008", "WS-WIRE-001")
	if code != exitFailed {
		t.Fatalf("mutant run: exit %d, want %d\n%s", code, exitFailed, stdout)
	}
	for _, want := range []string{"WS-VOUCHER-008", "Requirement:", "Expected:", "Actual:", "Transcript:", "NOT CONFORMANT"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("failure output lacks %q", want)
		}
	}
	junit, _ := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if !bytes.Contains(junit, []byte("<failure")) || !bytes.Contains(junit, []byte("WS-VOUCHER-008")) {
		t.Errorf("junit.xml does not record the failure")
	}

	expect := filepath.Join(t.TempDir(), "expect-fail.txt")
	os.WriteFile(expect, []byte("# known defects\nWS-VOUCHER-008  # the mutant accepts any signer\n"), 0o644)
	if code, stdout, _ := cli(t, "--mutant", "accept-wrong-signer", "--expect-fail", expect, "WS-VOUCHER-008", "WS-WIRE-001"); code != exitOK || !strings.Contains(stdout, "EXPECTED FAIL") {
		t.Fatalf("expected failure: exit %d, want 0 with EXPECTED FAIL\n%s", code, stdout)
	}
	if code, stdout, _ := cli(t, "--expect-fail", expect, "WS-VOUCHER-008"); code != exitFailed || !strings.Contains(stdout, "NOW PASSING") {
		t.Fatalf("fixed case still listed: exit %d, want 1 with NOW PASSING\n%s", code, stdout)
	}
}

// startServe starts `conformance serve` in a child process and returns its URL,
// read from the first line of its stdout.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	srv.Env = append(os.Environ(), "CONFORMANCE_AS_CLI=1")
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); srv.Wait() })
	url, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(url, "ws://") {
		t.Fatalf("first line of serve: %q, %v", url, err)
	}
	return strings.TrimSpace(url)
}

func TestServeInAnotherProcess(t *testing.T) {
	// The suite assumes a fresh target, so the client pays another server.
	url := startServe(t, "--secret", "cli-test", "--challenge-ttl", "3s")
	code, stdout, stderr := cli(t, "client", "--voucher-units", "7", startServe(t))
	if code != exitOK {
		t.Fatalf("client: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var sum struct {
		Intent       string
		Messages     int
		VouchersSent int
		Receipt      struct{ Spent string }
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil || sum.Intent != "session" || sum.Messages != 60 || sum.VouchersSent != 9 || sum.Receipt.Spent != "60000" {
		t.Fatalf("client summary %q: %+v, %v; want 60 messages paid by 9 vouchers", stdout, sum, err)
	}
	code, stdout, stderr = cli(t, "--secret", "cli-test", url, "wire", "replay", "WS-VOUCHER-001")
	if code != exitOK {
		t.Fatalf("suite against serve: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestUsedTargetIsASetupError runs the suite twice against one server: the
// second run finds the channels holding vouchers it never signed, which no
// verdict can account for, and stops with exit 3 saying why.
func TestUsedTargetIsASetupError(t *testing.T) {
	url := serveHere(t)
	if code, stdout, stderr := cli(t, url, "WS-VOUCHER-001"); code != exitOK {
		t.Fatalf("first run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr := cli(t, url, "WS-VOUCHER-001")
	if code != exitSetup || !strings.Contains(stderr, "was the target used before this run") {
		t.Fatalf("second run: exit %d, want %d naming the used target\n%s\n%s", code, exitSetup, stdout, stderr)
	}
}

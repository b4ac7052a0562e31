package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	refclient "github.com/mppws/conformance/reference/client"
	"github.com/mppws/conformance/suite/clients"
	"github.com/mppws/conformance/suite/connect/testcert"
)

// The client suite grades the reference client through --exec: the
// conformance command's own client subcommand, built once per test
// without the race detector (whose start-up would cost a second a case;
// the suite's side, in this process, runs under it).

// buildConformance builds the conformance command into a temporary
// directory and returns its path.
func buildConformance(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "conformance")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// clientCommand is the --exec command of the reference client of bin,
// with a mutant when fault is set. The ledger lives in the case's {state}
// file, so a case that runs the client twice sees it remember what it
// signed.
func clientCommand(bin string, fault refclient.Fault) string {
	cmd := shellWord(bin) + " client --dialect {dialect} --timeout {timeout}s --ledger {state}"
	if fault != refclient.FaultNone {
		cmd += " --fault " + string(fault)
	}
	return cmd + " {url}"
}

func shellWord(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runClients runs the client suite in this process.
func runClients(t *testing.T, cfg clients.Config) (*clients.Summary, string) {
	t.Helper()
	var out bytes.Buffer
	cfg.Out = &out
	s, err := clients.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("client suite: %v\n%s", err, out.String())
	}
	return s, out.String()
}

// TestClientsReference: the reference client passes every case of the
// client suite in both dialects.
func TestClientsReference(t *testing.T) {
	if testing.Short() {
		t.Skip("client suite runs skipped in -short mode")
	}
	cmd := clientCommand(buildConformance(t), refclient.FaultNone)
	for _, d := range []string{"a", "b"} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			s, out := runClients(t, clients.Config{Exec: cmd, Dialect: d, ReportDir: t.TempDir()})
			for _, r := range s.Results {
				if r.Verdict != clients.OK && r.Verdict != clients.NotApplicable {
					t.Errorf("%s: %s\n%s%s", r.ID, r.Verdict, r.Failure, r.Reason)
				}
			}
			if !s.Passed {
				t.Fatalf("the reference client is not conformant in dialect %s: %s\n%s", d, strings.Join(s.Problems, "; "), out)
			}
			t.Logf("dialect %s: %v", d, s.Counts)
		})
	}
}

// TestClientsOverTLS: with --tls-cert and --tls-key the case URLs are
// wss:// (and dialect B's probe https://). The reference client, trusting
// the test CA with --ca-file and offering the subprotocol the suite
// accepts, passes a wire and a metering case in each dialect; without the
// CA it cannot connect, and the case fails naming the certificate.
func TestClientsOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("client suite runs skipped in -short mode")
	}
	ca, cert, key := testcert.New(t).Files(t)
	cmd := clientCommand(buildConformance(t), refclient.FaultNone)
	trusting := strings.Replace(cmd, " {url}", " --ca-file "+shellWord(ca)+" --subprotocol mpp {url}", 1)
	for _, d := range []string{"a", "b"} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			tlsArgs := []string{"--dialect", d, "--tls-cert", cert, "--tls-key", key, "--subprotocol", "mpp"}
			s, code, out := clientsReport(t, slices.Concat(tlsArgs, []string{"--exec", trusting, "WS-CLIENT-003", "WS-CLIENT-011"}))
			if code != exitOK || len(s.Results) != 2 {
				t.Fatalf("dialect %s over TLS with --ca-file: exit %d, %d results\n%s", d, code, len(s.Results), out)
			}
			for _, r := range s.Results {
				if r.Verdict != clients.OK {
					t.Errorf("%s: %s\n%s", r.ID, r.Verdict, r.Failure)
				}
			}
			s, code, out = clientsReport(t, slices.Concat(tlsArgs, []string{"--exec", cmd, "WS-CLIENT-003"}))
			if code != exitFailed || len(s.Results) != 1 || s.Results[0].Verdict != clients.Failed {
				t.Fatalf("dialect %s over TLS without the CA: exit %d; want the case failed\n%s", d, code, out)
			}
			if f := s.Results[0].Failure; !strings.Contains(f, "wss://") || !strings.Contains(f, "certificate") || !strings.Contains(f, "--ca-file") {
				t.Errorf("the failure does not show a wss:// URL and name the certificate and --ca-file:\n%s", f)
			}
		})
	}
}

// clientsReport runs `conformance clients` with args in this process and
// returns its conformance.json, exit code and output.
func clientsReport(t *testing.T, args []string) (s clients.Summary, code int, out string) {
	t.Helper()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code = run(context.Background(), slices.Concat([]string{"clients", "--report-dir", dir}, args), &stdout, &stderr)
	out = stdout.String() + stderr.String()
	b, err := os.ReadFile(filepath.Join(dir, "conformance.json"))
	if err != nil {
		t.Fatalf("conformance %v: exit %d, no report: %v\n%s", args, code, err, out)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("conformance.json: %v", err)
	}
	return s, code, out
}

// clientMutants maps every mutant of the reference client, per dialect,
// to the cases that must catch it. A mutant of a step the dialect does not
// have (close-ready, source in dialect A) is absent from that dialect.
var clientMutants = map[string]map[refclient.Fault][]string{
	"a": {
		refclient.FaultOverSign:        {"WS-CLIENT-022", "WS-CLIENT-023"},
		refclient.FaultPayTwice:        {"WS-CLIENT-014", "WS-CLIENT-015"},
		refclient.FaultIgnoreReceipts:  {"WS-CLIENT-026", "WS-CLIENT-027", "WS-CLIENT-028", "WS-CLIENT-034"},
		refclient.FaultWrongDomain:     {"WS-CLIENT-005", "WS-CLIENT-006"},
		refclient.FaultHighS:           {"WS-CLIENT-007"},
		refclient.FaultIgnoreLedger:    {"WS-CLIENT-045"},
		refclient.FaultOverDeposit:     {"WS-CLIENT-013", "WS-CLIENT-020", "WS-CLIENT-021"},
		refclient.FaultNoDescriptor:    {"WS-CLIENT-005"},
		refclient.FaultDropOpaque:      {"WS-CLIENT-003"},
		refclient.FaultStaleChallenge:  {"WS-CLIENT-040"},
		refclient.FaultCrashOnGarbage:  {"WS-CLIENT-050", "WS-CLIENT-051", "WS-CLIENT-057", "WS-CLIENT-058", "WS-CLIENT-059"},
		refclient.FaultNoTimeout:       {"WS-CLIENT-055", "WS-CLIENT-056"},
		refclient.FaultAnyTerms:        {"WS-CLIENT-031", "WS-CLIENT-032", "WS-CLIENT-033"},
		refclient.FaultAllowDecreasing: {"WS-CLIENT-024"},
	},
	"b": {
		refclient.FaultOverSign:        {"WS-CLIENT-022", "WS-CLIENT-023"},
		refclient.FaultPayTwice:        {"WS-CLIENT-014", "WS-CLIENT-015"},
		refclient.FaultIgnoreReceipts:  {"WS-CLIENT-026", "WS-CLIENT-034"},
		refclient.FaultTrustCloseReady: {"WS-CLIENT-027", "WS-CLIENT-028", "WS-CLIENT-029"},
		refclient.FaultWrongDomain:     {"WS-CLIENT-005", "WS-CLIENT-006", "WS-CLIENT-044"},
		refclient.FaultHighS:           {"WS-CLIENT-007"},
		refclient.FaultIgnoreLedger:    {"WS-CLIENT-045"},
		refclient.FaultOverDeposit:     {"WS-CLIENT-013", "WS-CLIENT-020", "WS-CLIENT-021"},
		refclient.FaultNoDescriptor:    {"WS-CLIENT-005"},
		refclient.FaultDropOpaque:      {"WS-CLIENT-003"},
		refclient.FaultNoSource:        {"WS-CLIENT-004"},
		refclient.FaultStaleChallenge:  {"WS-CLIENT-041"},
		refclient.FaultCrashOnGarbage:  {"WS-CLIENT-050", "WS-CLIENT-051", "WS-CLIENT-057", "WS-CLIENT-058", "WS-CLIENT-059"},
		refclient.FaultNoTimeout:       {"WS-CLIENT-055", "WS-CLIENT-056"},
		refclient.FaultAnyTerms:        {"WS-CLIENT-031", "WS-CLIENT-032", "WS-CLIENT-033"},
		refclient.FaultAllowDecreasing: {"WS-CLIENT-024"},
	},
}

// TestClientsMutants runs the client suite against every mutant of the
// reference client, restricted to the cases expected to catch it, and
// requires each of those cases to fail (SHOULD cases counted: --strict).
func TestClientsMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("client mutant runs skipped in -short mode")
	}
	used := map[refclient.Fault]bool{}
	for d, table := range clientMutants {
		for f, ids := range table {
			used[f] = true
			for _, id := range ids {
				if c, ok := caseByID(id); !ok || !slices.Contains(c.Dialects, strings.ToUpper(d)) {
					t.Errorf("mutant %s (dialect %s): %s is not a dialect %s client case", f, d, id, d)
				}
			}
		}
	}
	for _, f := range refclient.Faults {
		if !used[f] {
			t.Errorf("mutant %s has no expected cases in any dialect", f)
		}
	}
	bin := buildConformance(t)
	// Mutants run four at a time, each with its cases side by side: most of
	// a case is waiting on the client, not computing.
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	caught, total := 0, 0
	for _, d := range []string{"a", "b"} {
		for _, f := range refclient.Faults {
			ids, ok := clientMutants[d][f]
			if !ok {
				continue
			}
			total++
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				var out bytes.Buffer
				s, err := clients.Run(context.Background(), clients.Config{Exec: clientCommand(bin, f), Dialect: d, Select: ids, Strict: true, Out: &out})
				if err != nil {
					t.Errorf("mutant %s (dialect %s): %v\n%s", f, d, err, out.String())
					return
				}
				var missed []string
				for _, r := range s.Results {
					if r.Verdict != clients.Failed {
						missed = append(missed, r.ID+"="+string(r.Verdict))
					}
				}
				if len(missed) > 0 || len(s.Results) != len(ids) {
					t.Errorf("mutant %s (dialect %s) not caught by %s\n%s", f, d, strings.Join(missed, ", "), out.String())
					return
				}
				mu.Lock()
				caught++
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	t.Logf("client mutants caught: %d/%d", caught, total)
}

func caseByID(id string) (*clients.Case, bool) {
	for _, c := range clients.Catalogue() {
		if c.ID == id {
			return c, true
		}
	}
	return nil, false
}

// TestClientsCLI: usage errors, the catalogue, and the exit code of a
// failing client through the command line.
func TestClientsCLI(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"clients", "--list"}, &out, &errb); code != exitOK || strings.Count(out.String(), "WS-CLIENT-") < 30 {
		t.Fatalf("clients --list: exit %d, %d cases\n%s%s", code, strings.Count(out.String(), "WS-CLIENT-"), out.String(), errb.String())
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"clients"}, exitUsage, "exactly one of --exec and --listen"},
		{[]string{"clients", "--exec", "true"}, exitUsage, "{url}"},
		{[]string{"clients", "--exec", "x {url}", "--dialect", "c"}, exitUsage, "dialect"},
		{[]string{"clients", "--exec", "x {url}", "nonsense"}, exitUsage, "neither a client case ID nor an area"},
		{[]string{"clients", "--listen", "256.0.0.1:1"}, exitSetup, "listen"},
		{[]string{"clients", "--exec", "x {url}", "--tls-cert", "cert.pem"}, exitUsage, "go together"},
		{[]string{"clients", "--exec", "x {url}", "--subprotocol", "a,b"}, exitUsage, "--subprotocol"},
		{[]string{"client", "--fault", "nonsense", "ws://127.0.0.1:1/"}, exitUsage, "unknown"},
	} {
		out.Reset()
		errb.Reset()
		if code := run(context.Background(), tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d (%s), want %d with %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
	if testing.Short() {
		return
	}
	// A client that pays nothing and exits 0 fails; an expect-fail file
	// turns that into EXPECTED FAIL and exit 0.
	dir := t.TempDir()
	code, stdout, stderr := cli(t, "clients", "--exec", "true {url}", "--report-dir", dir, "WS-CLIENT-003")
	if code != exitFailed || !strings.Contains(stdout, "FAILED") {
		t.Fatalf("a client that does nothing: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, f := range []string{"conformance.json", "summary.txt", "junit.xml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("report %s: %v", f, err)
		}
	}
	ef := filepath.Join(dir, "expect-fail.txt")
	if err := os.WriteFile(ef, []byte("WS-CLIENT-003  # pays nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = cli(t, "clients", "--exec", "true {url}", "--expect-fail", ef, "WS-CLIENT-003")
	if code != exitOK || !strings.Contains(stdout, "EXPECTED FAIL") {
		t.Fatalf("expected failure: exit %d\n%s%s", code, stdout, stderr)
	}
}

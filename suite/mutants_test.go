package suite_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/suite"
)

// mutants maps every fault of the reference server to the cases that must
// catch it. A conformance suite proves it can fail by failing these.
var mutants = map[server.Fault][]string{
	server.FaultForgedID:        {"WS-REPLAY-001", "WS-REPLAY-010"},
	server.FaultSkipEcho:        {"WS-REPLAY-002", "WS-REPLAY-003", "WS-REPLAY-004", "WS-REPLAY-005", "WS-REPLAY-006", "WS-REPLAY-015", "WS-REPLAY-016"},
	server.FaultOtherConnection: {"WS-REPLAY-007", "WS-REPLAY-008"},
	server.FaultExpired:         {"WS-REPLAY-009"},
	server.FaultOverDeliver:     {"WS-VOUCHER-001"},
	server.FaultNoNeedVoucher:   {"WS-VOUCHER-001"},
	server.FaultWrongRequired:   {"WS-VOUCHER-001", "WS-WIRE-008"},
	server.FaultNonIncreasing:   {"WS-VOUCHER-005", "WS-VOUCHER-006"},
	server.FaultOverDeposit:     {"WS-VOUCHER-007"},
	server.FaultWrongSigner:     {"WS-VOUCHER-008"},
	server.FaultWrongSpent:      {"WS-VOUCHER-011"},
	server.FaultSnakeCase:       {"WS-WIRE-008", "WS-WIRE-009"},
	server.FaultDropNonJSON:     {"WS-ROBUST-001"},
	server.FaultDoubleCharge:    {"WS-VOUCHER-001", "WS-VOUCHER-011"},
	server.FaultWrongChannel:    {"WS-VOUCHER-009"},
}

// TestMutants runs the suite against every mutant of the reference, each in
// a child process (Ginkgo runs one suite per process), restricted to the
// cases expected to catch it, and requires each of them to fail.
func TestMutants(t *testing.T) {
	if os.Getenv("MPPWS_FAULT") != "" {
		t.Skip("child process of TestMutants")
	}
	if testing.Short() {
		t.Skip("mutant runs skipped in -short mode")
	}
	for _, f := range server.Faults {
		if _, ok := mutants[f]; !ok {
			t.Errorf("mutant %s has no expected cases", f)
		}
	}
	for f, ids := range mutants {
		for _, id := range ids {
			if _, ok := suite.Lookup(id); !ok {
				t.Errorf("mutant %s: unknown case %s", f, id)
			}
		}
	}
	sem := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	caught := 0
	for _, f := range server.Faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			verdicts, out, err := runMutant(t, f, mutants[f])
			if err != nil {
				t.Errorf("mutant %s: %v\n%s", f, err, out)
				return
			}
			var missed []string
			for _, id := range mutants[f] {
				if verdicts[id] != string(suite.Failed) {
					missed = append(missed, id+"="+verdicts[id])
				}
			}
			if len(missed) > 0 {
				t.Errorf("mutant %s not caught by %s\n%s", f, strings.Join(missed, ", "), out)
				return
			}
			mu.Lock()
			caught++
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("mutants caught: %d/%d", caught, len(server.Faults))
}

// runMutant re-runs this test binary's TestConformance against the mutant
// and returns the verdict of every case from its conformance.json.
func runMutant(t *testing.T, f server.Fault, ids []string) (map[string]string, string, error) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestConformance$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MPPWS_FAULT="+string(f), "MPPWS_SELECT="+strings.Join(ids, ","), "MPPWS_REPORT_DIR="+dir)
	out, _ := cmd.CombinedOutput() // the child fails by design; the report says how
	b, err := os.ReadFile(filepath.Join(dir, "conformance.json"))
	if err != nil {
		return nil, string(out), err
	}
	var s suite.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, string(out), err
	}
	verdicts := map[string]string{}
	for _, r := range s.Results {
		verdicts[r.ID] = string(r.Verdict)
	}
	return verdicts, string(out), nil
}

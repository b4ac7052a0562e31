package clients

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mppxDir holds the Node side of the mppx interop (suite/interop_test.go
// installs and uses it too).
const mppxDir = "../testdata/mppx"

// TestMppxClient grades mppx 0.11.0's session client (client.mjs) with the
// whole client suite in dialect B: every case must pass except those
// listed, with their reasons, in client-expect-fail.txt. Node is slow to
// start on a loaded machine, hence the timeout scale.
func TestMppxClient(t *testing.T) {
	if testing.Short() {
		t.Skip("mppx client grading skipped in -short mode")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("mppx client grading needs Node.js: node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(mppxDir, "node_modules", "mppx")); err != nil {
		t.Skip("mppx client grading: suite/testdata/mppx/node_modules is missing: run npm ci in suite/testdata/mppx")
	}
	dir, err := filepath.Abs(mppxDir)
	if err != nil {
		t.Fatal(err)
	}
	expectFail, err := ReadExpectFail(filepath.Join(dir, "client-expect-fail.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s, err := Run(context.Background(), Config{
		Exec:       "node " + shellQuote(filepath.Join(dir, "client.mjs")) + " {url} --timeout-seconds {timeout} --state {state}",
		Dialect:    "b",
		Agent:      "mppx 0.11.0 (client.mjs)",
		ExpectFail: expectFail, TimeoutScale: 4, Parallel: 2, Out: &out,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !s.Passed {
		t.Fatalf("mppx's client fails beyond its expected failures: %s\n%s", strings.Join(s.Problems, "; "), out.String())
	}
	for _, r := range s.Results {
		if r.Verdict == ExpectedFail || r.Verdict == NonStrict {
			why := r.Reason
			if why == "" {
				why = firstLine(r.Failure)
			}
			t.Logf("%s %s: %s", r.ID, r.Verdict, why)
		}
	}
	t.Logf("mppx client: %v", s.Counts)
}

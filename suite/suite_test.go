package suite_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/suite"
)

// TestConformance runs the whole suite against the embedded reference in
// dialect A: every case must pass. Other tests re-run it in a child process
// (Ginkgo runs one suite per process), configured by the environment:
//
//	MPPWS_DIALECT      a or b: the embedded reference's dialect
//	MPPWS_FAULT        a mutant of the embedded reference
//	MPPWS_TARGET       comma-separated target URLs instead of the embedded reference
//	MPPWS_SECRET       the targets' challenge HMAC secret
//	MPPWS_SELECT       comma-separated case IDs or areas
//	MPPWS_EXPECT_FAIL  an expect-fail file
//	MPPWS_REPORT_DIR   where to write the reports
//	MPPWS_SHAPE        a target shape of the embedded reference (see shapes)
func TestConformance(t *testing.T) {
	cfg := suite.Config{
		Dialect:   "auto",
		ReportDir: os.Getenv("MPPWS_REPORT_DIR"),
		Out:       os.Stdout,
	}
	fault := server.Fault(os.Getenv("MPPWS_FAULT"))
	if target := os.Getenv("MPPWS_TARGET"); target != "" {
		cfg.Targets, cfg.TargetLabel = strings.Split(target, ","), target
		cfg.Secret = os.Getenv("MPPWS_SECRET")
	} else {
		opts, ok := shapes[os.Getenv("MPPWS_SHAPE")]
		if !ok {
			t.Fatalf("unknown shape %q", os.Getenv("MPPWS_SHAPE"))
		}
		opts.Fault, opts.Dialect = fault, os.Getenv("MPPWS_DIALECT")
		ref, err := suite.StartReference(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		cfg.Targets, cfg.Secret, cfg.TargetLabel = ref.URLs, ref.Secret, "embedded reference"
		cfg.Channels = opts.Channels // the suite pays from the channels the target knows
	}
	if sel := os.Getenv("MPPWS_SELECT"); sel != "" {
		cfg.Select = strings.Split(sel, ",")
	}
	if path := os.Getenv("MPPWS_EXPECT_FAIL"); path != "" {
		m, err := suite.ReadExpectFail(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ExpectFail = m
	}
	s, err := suite.Run(context.Background(), cfg, t)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Passed && fault == server.FaultNone && os.Getenv("MPPWS_SHAPE") == "" {
		t.Errorf("not conformant: %s", strings.Join(s.Problems, "; "))
	}
}

// TestConformanceDialectB runs the whole suite against the embedded
// reference in dialect B, in a child process.
func TestConformanceDialectB(t *testing.T) {
	if os.Getenv("MPPWS_DIALECT") != "" || os.Getenv("MPPWS_TARGET") != "" {
		t.Skip("child process")
	}
	s, out, err := runChild(t, "MPPWS_DIALECT=b")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !s.Passed {
		t.Fatalf("the dialect B reference is not conformant: %s\n%s", strings.Join(s.Problems, "; "), out)
	}
	t.Logf("dialect B: %d cases, %v", len(s.Results), s.Counts)
}

// runChild re-runs this test binary's TestConformance with env and returns
// the summary it wrote.
func runChild(t *testing.T, env ...string) (*suite.Summary, string, error) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestConformance$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), env...), "MPPWS_REPORT_DIR="+dir)
	out, _ := cmd.CombinedOutput() // a failing child is judged by its report
	b, err := os.ReadFile(filepath.Join(dir, "conformance.json"))
	if err != nil {
		return nil, string(out), err
	}
	var s suite.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, string(out), err
	}
	return &s, string(out), nil
}

// shapes are targets configured unlike the reference's defaults, as servers
// under test are: the suite's verdicts must hold on each.
var shapes = map[string]suite.ReferenceOptions{
	"":             {},
	"one-channel":  {Channels: fixtures.Default()[:1]},
	"ten-messages": {Messages: 10},
	"digit-data":   {DigitData: true},
	"charge-only":  {Intent: server.IntentCharge},
	"session-only": {Intent: server.IntentSession},
	// A small target: every challenge expires within a case, and cases
	// take turns on one channel, ten messages per connection.
	"one-channel-short-ttl": {Channels: fixtures.Default()[:1], Messages: 10, ChallengeTTL: 3 * time.Second},
}

// TestShapes runs the whole suite against every shape of the reference, in
// each dialect the shape exists in: no case may fail, and every case that
// does not apply must say why.
func TestShapes(t *testing.T) {
	if os.Getenv("MPPWS_DIALECT") != "" || os.Getenv("MPPWS_TARGET") != "" {
		t.Skip("child process")
	}
	if testing.Short() {
		t.Skip("shape runs skipped in -short mode")
	}
	for name := range shapes {
		for _, d := range []string{"a", "b"} {
			if name == "" || (d == "b" && name == "charge-only") {
				continue
			}
			t.Run(name+"/"+d, func(t *testing.T) {
				t.Parallel()
				began := time.Now()
				s, out, err := runChild(t, "MPPWS_DIALECT="+d, "MPPWS_SHAPE="+name)
				took := time.Since(began)
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				for _, r := range s.Results {
					switch {
					case r.Verdict == suite.Failed || r.Verdict == suite.NotRun:
						t.Errorf("%s: %s\n%s", r.ID, r.Verdict, r.Failure+r.Reason)
					case r.Verdict == suite.NotApplicable && r.Reason == "":
						t.Errorf("%s: not applicable without a reason", r.ID)
					}
				}
				t.Logf("%s/%s: %v in %s (shapes run side by side)", name, d, s.Counts, took.Round(100*time.Millisecond))
			})
		}
	}
}

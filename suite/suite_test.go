package suite_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/suite"
)

// TestConformance runs the whole suite against the embedded reference: every
// case must pass. The mutant test re-runs this test in a child process
// against a faulty reference (MPPWS_FAULT), where cases must fail.
func TestConformance(t *testing.T) {
	fault := server.Fault(os.Getenv("MPPWS_FAULT"))
	ref, err := suite.StartReference(suite.ReferenceOptions{Fault: fault})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	cfg := suite.Config{
		Targets:     ref.URLs,
		Secret:      ref.Secret,
		ReportDir:   os.Getenv("MPPWS_REPORT_DIR"),
		TargetLabel: "embedded reference",
		Out:         os.Stdout,
	}
	if sel := os.Getenv("MPPWS_SELECT"); sel != "" {
		cfg.Select = strings.Split(sel, ",")
	}
	s, err := suite.Run(context.Background(), cfg, t)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Passed && fault == server.FaultNone {
		t.Errorf("the reference is not conformant: %s", strings.Join(s.Problems, "; "))
	}
}

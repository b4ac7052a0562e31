package suite

import (
	"context"
	"testing"

	"github.com/mppws/conformance/suite/harness"
)

// Test runs the suite against cfg's targets as subtests of t, one per case
// ID, so that a Go implementation gates its own `go test` on the suite:
//
//	func TestConformance(t *testing.T) {
//		srv := httptest.NewServer(myHandler) // serves the WebSocket route
//		defer srv.Close()
//		suite.Test(t, suite.Config{Targets: []string{"ws" + strings.TrimPrefix(srv.URL, "http")}})
//	}
//
// A failed case fails its subtest with the suite's failure text; a case
// that does not apply, or is expected to fail, is skipped with its reason.
// Unlike Run it needs no Ginkgo, so a test binary may call it many times.
// It writes the reports when cfg.ReportDir is set, and returns the summary.
func Test(t *testing.T, cfg Config) *Summary {
	t.Helper()
	r, chosen, selected, err := prepare(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg = r.Config()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	sched := harness.NewScheduler(r, chosen, false, 0)
	sched.Start(ctx)
	var results []Result
	for _, d := range chosen {
		t.Run(d.ID, func(t *testing.T) {
			res, err := sched.Wait(ctx, d.ID)
			if err != nil {
				t.Fatalf("%s: %v", d.ID, err)
			}
			v := verdictOf(d.Meta, res, cfg.ExpectFail)
			results = append(results, v)
			for _, o := range v.Observed {
				t.Log(o)
			}
			switch v.Verdict {
			case Failed:
				t.Error(v.Failure)
			case NowPassing, NotRun:
				t.Errorf("%s: %s", v.Verdict, v.Reason)
			case NotApplicable, ExpectedFail:
				t.Skipf("%s: %s", v.Verdict, v.Reason)
			}
		})
	}
	if err := r.Aborted(); err != nil {
		t.Fatal(err)
	}
	s := summarize(cfg, r, selected, results)
	if cfg.ReportDir != "" {
		if err := s.WriteFiles(cfg.ReportDir); err != nil {
			t.Errorf("writing reports: %v", err)
		}
	}
	return s
}

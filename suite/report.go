package suite

import (
	"sort"

	"github.com/mppws/conformance/suite/harness"
	"github.com/mppws/conformance/suite/report"
)

// The report model belongs to package report; these names keep the suite's
// API whole.
type (
	Verdict = report.Verdict
	Result  = report.Result
	Summary = report.Summary
)

// The verdicts.
const (
	OK            = report.OK
	Failed        = report.Failed
	NonStrict     = report.NonStrict
	Informational = report.Informational
	NotApplicable = report.NotApplicable
	ExpectedFail  = report.ExpectedFail
	NowPassing    = report.NowPassing
	NotRun        = report.NotRun
)

// verdictOf derives a verdict from how the case ended and its level; no
// case decides its own category.
func verdictOf(m Meta, res harness.Result, expectFail map[string]string) Result {
	r := Result{ID: m.ID, Title: m.Title, Level: m.Level, Area: m.Area, Dialects: m.Dialects,
		Requirement: m.Requirement, Source: m.Source,
		Duration: res.Duration, Seconds: res.Duration.Seconds(), Observed: res.Observed,
		Expected: res.Expected, Actual: res.Actual, Transcript: res.Transcript}
	switch res.Kind {
	case harness.NotApplicable:
		r.Verdict, r.Reason = NotApplicable, res.Reason
	case harness.NotRun:
		r.Verdict, r.Reason = NotRun, res.Reason
	case harness.Failed:
		r.Verdict, r.Failure = Failed, res.Failure
	case harness.NonStrict:
		r.Verdict, r.Failure = NonStrict, res.Failure
	case harness.Passed:
		r.Verdict = OK
		if m.Level == INFO {
			r.Verdict = Informational
		}
	}
	r.ExpectFail(expectFail)
	return r
}

// summarize collects the verdicts of the selected cases in catalogue
// order; a selected case that never reported is NOT RUN.
func summarize(cfg Config, r *harness.Run, selected map[string]bool, results []Result) *Summary {
	s := &Summary{Kind: report.KindServer, Target: cfg.TargetLabel, Dialect: r.Dialect(), Strict: cfg.Strict}
	for _, t := range r.Targets() {
		s.Targets = append(s.Targets, t.String())
	}
	got := map[string]bool{}
	for _, res := range results {
		if selected[res.ID] {
			got[res.ID] = true
			s.Results = append(s.Results, res)
		}
	}
	for _, m := range Catalogue() {
		if selected[m.ID] && !got[m.ID] {
			// The run was interrupted, or a Ginkgo filter left the case out.
			s.Results = append(s.Results, Result{ID: m.ID, Title: m.Title, Level: m.Level, Area: m.Area, Dialects: m.Dialects,
				Requirement: m.Requirement, Source: m.Source, Verdict: NotRun})
		}
	}
	sort.Slice(s.Results, func(i, j int) bool {
		a, _ := Lookup(s.Results[i].ID)
		b, _ := Lookup(s.Results[j].ID)
		return caseLess(a, b)
	})
	for id := range cfg.ExpectFail {
		if _, ok := Lookup(id); !ok {
			s.Problems = append(s.Problems, "expect-fail file names unknown case "+id)
		}
	}
	s.Tally()
	return s
}

package suite

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mppws/conformance/suite/harness"
)

// Verdict is a case's outcome in the conformance report.
type Verdict string

const (
	OK            Verdict = "OK"
	Failed        Verdict = "FAILED"
	NonStrict     Verdict = "NON-STRICT"
	Informational Verdict = "INFO"
	NotApplicable Verdict = "NOT APPLICABLE"
	ExpectedFail  Verdict = "EXPECTED FAIL"
	NowPassing    Verdict = "NOW PASSING"
	NotRun        Verdict = "NOT RUN"
)

// Result is one case in conformance.json.
type Result struct {
	ID       string        `json:"id"`
	Title    string        `json:"title"`
	Level    Level         `json:"level"`
	Area     Area          `json:"area"`
	Dialects []string      `json:"dialects"`
	Verdict  Verdict       `json:"verdict"`
	Duration time.Duration `json:"durationNs"`
	Seconds  float64       `json:"seconds"`
	Observed []string      `json:"observed,omitempty"`
	Reason   string        `json:"reason,omitempty"`  // why not applicable, or why expected to fail
	Failure  string        `json:"failure,omitempty"` // the failure message, with transcript
}

// verdictOf derives a verdict from how the case ended and its level; no
// case decides its own category.
func verdictOf(m Meta, res harness.Result, expectFail map[string]string) Result {
	r := Result{ID: m.ID, Title: m.Title, Level: m.Level, Area: m.Area, Dialects: m.Dialects,
		Duration: res.Duration, Seconds: res.Duration.Seconds(), Observed: res.Observed}
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
	if reason, listed := expectFail[m.ID]; listed {
		switch r.Verdict {
		case Failed:
			r.Verdict, r.Reason = ExpectedFail, reason
		case OK:
			r.Verdict, r.Reason = NowPassing, "listed in the expect-fail file but passes: remove it from the list"
		}
	}
	return r
}

// Summary is the outcome of a run.
type Summary struct {
	Target   string          `json:"target"`
	Targets  []string        `json:"targets"`
	Dialect  string          `json:"dialect"`
	Strict   bool            `json:"strict"`
	Passed   bool            `json:"passed"`
	Counts   map[Verdict]int `json:"counts"`
	Results  []Result        `json:"cases"`
	Problems []string        `json:"problems,omitempty"`
}

func summarize(cfg Config, r *harness.Run, selected map[string]bool, results []Result) *Summary {
	s := &Summary{Target: cfg.TargetLabel, Dialect: r.Dialect(), Strict: cfg.Strict, Counts: map[Verdict]int{}}
	for _, t := range r.Targets() {
		s.Targets = append(s.Targets, t.String())
	}
	got := map[string]bool{}
	for _, r := range results {
		if !selected[r.ID] {
			continue
		}
		got[r.ID] = true
		s.Results = append(s.Results, r)
	}
	for id := range selected {
		if !got[id] {
			// A selected case that never reported: the run was interrupted,
			// or a Ginkgo filter left it out.
			m, _ := Lookup(id)
			s.Results = append(s.Results, Result{ID: id, Title: m.Title, Level: m.Level, Area: m.Area, Dialects: m.Dialects, Verdict: NotRun})
		}
	}
	sort.Slice(s.Results, func(i, j int) bool {
		a, _ := Lookup(s.Results[i].ID)
		b, _ := Lookup(s.Results[j].ID)
		return caseLess(a, b)
	})
	ran := 0
	for _, r := range s.Results {
		s.Counts[r.Verdict]++
		switch r.Verdict {
		case Failed:
			s.Problems = append(s.Problems, r.ID+" failed")
		case NowPassing:
			s.Problems = append(s.Problems, r.ID+" now passes: remove it from the expect-fail file")
		case NotRun:
			s.Problems = append(s.Problems, r.ID+" did not run")
		}
		if r.Verdict != NotApplicable && r.Verdict != NotRun {
			ran++
		}
	}
	if ran == 0 {
		s.Problems = append(s.Problems, "no selected case was applicable to the target")
	}
	for id := range cfg.ExpectFail {
		if _, ok := Lookup(id); !ok {
			s.Problems = append(s.Problems, "expect-fail file names unknown case "+id)
		}
	}
	sort.Strings(s.Problems)
	s.Passed = len(s.Problems) == 0
	return s
}

// write stores conformance.json and summary.txt in dir.
func (s *Summary) write(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "conformance.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "summary.txt"))
	if err != nil {
		return err
	}
	s.print(f)
	return f.Close()
}

// print writes the readable summary: one line per case, then the totals.
func (s *Summary) print(w io.Writer) {
	fmt.Fprintf(w, "\nMPP WebSocket conformance: %s (dialect %s)\n", s.Target, s.Dialect)
	for _, t := range s.Targets {
		fmt.Fprintf(w, "  target %s\n", t)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range s.Results {
		note := r.Reason
		if note == "" && len(r.Observed) > 0 && (r.Verdict == Informational || r.Verdict == NonStrict) {
			note = r.Observed[len(r.Observed)-1]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.ID, r.Verdict, r.Level, r.Title, harness.ClipNote(note))
	}
	tw.Flush()
	var parts []string
	for _, v := range []Verdict{OK, Failed, NonStrict, Informational, NotApplicable, ExpectedFail, NowPassing, NotRun} {
		if n := s.Counts[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
	}
	fmt.Fprintf(w, "%d cases: %s\n", len(s.Results), strings.Join(parts, ", "))
	if s.Passed {
		fmt.Fprintln(w, "CONFORMANT")
		return
	}
	fmt.Fprintln(w, "NOT CONFORMANT:")
	for _, p := range s.Problems {
		fmt.Fprintln(w, "  -", p)
	}
}

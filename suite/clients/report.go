package clients

// This file is the client suite's whole dependency on package suite: the
// verdict, level and result types the server suite reports with, and the
// writers of a run's reports. Everything else in the package is its own.

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/mppws/conformance/suite"
)

// Levels and verdicts are the server suite's, so one CI gate reads both.
type (
	Level   = suite.Level
	Verdict = suite.Verdict
	Result  = suite.Result
	Summary = suite.Summary
)

const (
	MUST   = suite.MUST
	SHOULD = suite.SHOULD
	INFO   = suite.INFO
)

// The verdicts, as the server suite names them.
const (
	OK            = suite.OK
	Failed        = suite.Failed
	NonStrict     = suite.NonStrict
	Informational = suite.Informational
	NotApplicable = suite.NotApplicable
	ExpectedFail  = suite.ExpectedFail
	NowPassing    = suite.NowPassing
	NotRun        = suite.NotRun
)

// verdict derives a case's verdict from how it ended, its level and the
// expect-fail list, exactly as the server suite does: no case decides its
// own category.
func verdict(c *Case, o outcome, strict bool, expectFail map[string]string) Result {
	r := Result{ID: c.ID, Title: c.Title, Level: c.Level, Area: suite.Area(c.Area), Dialects: c.Dialects,
		Duration: o.duration, Seconds: o.duration.Seconds(), Observed: o.observed}
	switch {
	case o.notApplicable != "":
		r.Verdict, r.Reason = NotApplicable, o.notApplicable
	case o.notRun != "":
		r.Verdict, r.Reason = NotRun, o.notRun
	case o.failure == "":
		r.Verdict = OK
		if c.Level == INFO {
			r.Verdict = Informational
		}
	case c.Level == INFO:
		r.Verdict = Informational
		r.Observed = append(r.Observed, "could not observe: "+firstLine(o.failure))
	case c.Level == SHOULD && !strict:
		r.Verdict, r.Failure = NonStrict, o.failure
	default:
		r.Verdict, r.Failure = Failed, o.failure
	}
	if reason, listed := expectFail[c.ID]; listed {
		switch r.Verdict {
		case Failed:
			r.Verdict, r.Reason = ExpectedFail, reason
		case OK:
			r.Verdict, r.Reason = NowPassing, "listed in the expect-fail file but passes: remove it from the list"
		}
	}
	return r
}

// summarize totals a run's results; it passes when no counted case failed,
// none now passes against the expect-fail list, every selected case ran and
// at least one applied.
func summarize(target, dialect string, strict bool, results []Result, expectFail map[string]string) *Summary {
	s := &Summary{Target: target, Targets: []string{target}, Dialect: dialect, Strict: strict, Counts: map[Verdict]int{}, Results: results}
	ran := 0
	for _, r := range results {
		s.Counts[r.Verdict]++
		switch r.Verdict {
		case Failed:
			s.Problems = append(s.Problems, r.ID+" failed")
		case NowPassing:
			s.Problems = append(s.Problems, r.ID+" now passes: remove it from the expect-fail file")
		case NotRun:
			s.Problems = append(s.Problems, r.ID+" did not run: "+r.Reason)
		}
		if r.Verdict != NotApplicable && r.Verdict != NotRun {
			ran++
		}
	}
	if ran == 0 {
		s.Problems = append(s.Problems, "no selected case was applicable to the client")
	}
	for id := range expectFail {
		if _, ok := lookup(id); !ok {
			s.Problems = append(s.Problems, "expect-fail file names unknown case "+id)
		}
	}
	s.Passed = len(s.Problems) == 0
	return s
}

// writeReports stores conformance.json, summary.txt and junit.xml in dir.
func writeReports(s *Summary, dir string) error {
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
	printSummary(f, s)
	if err := f.Close(); err != nil {
		return err
	}
	return writeJUnit(s, filepath.Join(dir, "junit.xml"))
}

// printSummary writes the readable summary: one line per case, then totals.
func printSummary(w io.Writer, s *Summary) {
	fmt.Fprintf(w, "\nMPP WebSocket client conformance: %s (dialect %s)\n", s.Target, s.Dialect)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range s.Results {
		note := r.Reason
		if note == "" && len(r.Observed) > 0 && (r.Verdict == Informational || r.Verdict == NonStrict) {
			note = r.Observed[len(r.Observed)-1]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.ID, r.Verdict, r.Level, r.Title, clip(firstLine(note), 100))
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

// writeJUnit writes one testcase per case: failures carry the failure
// anatomy, skips the reason a case did not apply or did not run.
func writeJUnit(s *Summary, path string) error {
	type message struct {
		Message string `xml:"message,attr"`
		Body    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      float64  `xml:"time,attr"`
		Failure   *message `xml:"failure,omitempty"`
		Skipped   *message `xml:"skipped,omitempty"`
		SystemOut string   `xml:"system-out,omitempty"`
	}
	type testsuite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Skipped  int        `xml:"skipped,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	ts := testsuite{Name: "MPP WebSocket client conformance (dialect " + s.Dialect + ")", Tests: len(s.Results)}
	for _, r := range s.Results {
		tc := testcase{Name: fmt.Sprintf("[%s] %s", r.ID, r.Title), Classname: "clients." + string(r.Area), Time: r.Seconds,
			SystemOut: strings.Join(r.Observed, "\n")}
		switch r.Verdict {
		case Failed, NowPassing:
			tc.Failure = &message{Message: string(r.Verdict), Body: r.Failure + r.Reason}
			ts.Failures++
		case NotApplicable, NotRun, ExpectedFail:
			tc.Skipped = &message{Message: string(r.Verdict) + ": " + r.Reason}
			ts.Skipped++
		}
		ts.Cases = append(ts.Cases, tc)
	}
	b, err := xml.MarshalIndent(ts, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}

// ReadExpectFail reads an expect-fail file of client cases: one case ID per
// line, text after # is the reason, blank lines ignored. An ID that is not
// a client case is an error, so a typo cannot silence a failure.
func ReadExpectFail(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("expect-fail: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, reason, _ := strings.Cut(sc.Text(), "#")
		id := strings.TrimSpace(line)
		if id == "" {
			continue
		}
		if _, ok := lookup(id); !ok {
			return nil, fmt.Errorf("%s:%d: %q is not a client case ID", path, n, id)
		}
		out[id] = strings.TrimSpace(reason)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("expect-fail: %w", err)
	}
	return out, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

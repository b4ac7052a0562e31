package clients

// This file is the client suite's whole dependency on the suite's report
// package: verdicts, levels, results and summaries are the server suite's,
// so one CI gate reads both, and so are the writers of every report.

import (
	"io"
	"strings"
	"time"

	"github.com/mppws/conformance/suite/report"
)

type (
	Level   = report.Level
	Verdict = report.Verdict
	Result  = report.Result
	Summary = report.Summary
	// Entry is one line of a case's transcript; direction its arrow.
	Entry     = report.Entry
	direction = report.Direction
)

const (
	MUST   = report.MUST
	SHOULD = report.SHOULD
	INFO   = report.INFO
)

// The verdicts, as the server suite names them.
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

// The directions of transcript entries.
const (
	sent     = report.Sent
	received = report.Received
	note     = report.Note
)

// verdict derives a case's verdict from how it ended, its level and the
// expect-fail list, exactly as the server suite does: no case decides its
// own category.
func verdict(c *Case, o outcome, strict bool, expectFail map[string]string) Result {
	r := Result{ID: c.ID, Title: c.Title, Level: c.Level, Area: report.Area(c.Area), Dialects: c.Dialects,
		Requirement: c.Requirement, Source: c.Source,
		Duration: o.duration, Seconds: o.duration.Seconds(), Observed: o.observed,
		Expected: o.expected, Actual: o.actual, Transcript: o.transcript}
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
	r.ExpectFail(expectFail)
	return r
}

// summarize totals a run's results as the server suite does.
func summarize(target, dialect string, strict bool, results []Result) *Summary {
	s := &Summary{Kind: report.KindClient, Target: target, Dialect: dialect, Strict: strict, Results: results}
	s.Tally()
	return s
}

// writeReports writes conformance.json, summary.txt, report.html and
// junit.xml into dir.
func writeReports(s *Summary, dir string) error { return s.WriteFiles(dir) }

// printSummary writes the readable summary: one line per case, then totals.
func printSummary(w io.Writer, s *Summary) error { return s.WriteText(w) }

// entry is a transcript entry at d into the case.
func entry(d time.Duration, who string, dir direction, text string) Entry {
	return Entry{At: d, Conn: who, Dir: dir, Text: text}
}

// ReadExpectFail reads an expect-fail file of client cases; an ID that is
// not a client case is an error.
func ReadExpectFail(path string) (map[string]string, error) {
	return report.ReadExpectFail(path, func(id string) bool { _, ok := lookup(id); return ok })
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

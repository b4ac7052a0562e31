// Package report holds the outcome of a conformance run, server or client,
// and writes it: conformance.json with every transcript, summary.txt for a
// terminal, report.html for a person, and a lean junit.xml for a CI page.
// It depends on nothing of the suite, so any runner can fill it in.
package report

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Verdict is a case's outcome in the report.
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

// Verdicts lists every verdict in report order.
var Verdicts = []Verdict{OK, Failed, NonStrict, Informational, NotApplicable, ExpectedFail, NowPassing, NotRun}

// Fails reports whether a case with this verdict makes the run fail.
func (v Verdict) Fails() bool { return v == Failed || v == NowPassing || v == NotRun }

// Level is a case's requirement level.
type Level string

const (
	// MUST failures fail the run.
	MUST Level = "MUST"
	// SHOULD failures fail the run only in strict mode; otherwise the case
	// is NON-STRICT.
	SHOULD Level = "SHOULD"
	// INFO cases never fail: they record what the target does where the
	// sources allow several behaviours.
	INFO Level = "INFO"
)

// Area groups cases. The report keeps areas in the order their first case
// appears, so a runner orders them by ordering its results.
type Area string

// Direction says which way a transcript entry went.
type Direction string

const (
	Sent     Direction = "sent"     // from the suite to the peer under test
	Received Direction = "received" // from the peer under test
	Note     Direction = "note"     // the harness's own remark
)

// Arrow is the direction's transcript symbol.
func (d Direction) Arrow() string {
	switch d {
	case Sent:
		return "→"
	case Received:
		return "←"
	}
	return "•"
}

// Entry is one line of a case's transcript: a frame or a note.
type Entry struct {
	At   time.Duration `json:"atNs"` // since the case began
	Conn string        `json:"conn,omitempty"`
	Dir  Direction     `json:"dir"`
	Text string        `json:"text"`
}

// String renders the entry as the suite's transcripts always have, with
// text longer than clip bytes shortened (clip 0 keeps it whole).
func (e Entry) String(clip int) string {
	conn := ""
	if e.Conn != "" {
		conn = "[" + e.Conn + "] "
	}
	return fmt.Sprintf("%+8.3fs %s%s %s", e.At.Seconds(), conn, e.Dir.Arrow(), clipText(e.Text, clip))
}

// Result is one case.
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
	Reason   string        `json:"reason,omitempty"` // why not applicable, not run, or expected to fail
	// Failure is the failure message. It may end with a "Transcript:"
	// section, as the suite's messages do; the writers cut it where they
	// show Transcript instead.
	Failure     string   `json:"failure,omitempty"`
	Requirement string   `json:"requirement,omitempty"`
	Source      string   `json:"source,omitempty"`
	Expected    []string `json:"expected,omitempty"`
	Actual      string   `json:"actual,omitempty"`
	Transcript  []Entry  `json:"transcript,omitempty"`
}

// Kinds of run: the suite drove a server, or a client drove the suite.
const (
	KindServer = "server"
	KindClient = "client"
)

// Summary is the outcome of a run.
type Summary struct {
	Kind     string          `json:"kind"`
	Target   string          `json:"target"`
	Targets  []string        `json:"targets"`
	Dialect  string          `json:"dialect"`
	Strict   bool            `json:"strict"`
	Passed   bool            `json:"passed"`
	Counts   map[Verdict]int `json:"counts"`
	Results  []Result        `json:"cases"`
	Problems []string        `json:"problems,omitempty"`
	// Load is a load run's outcome, shown after the cases when present.
	Load *Load `json:"load,omitempty"`
}

// Tally counts the verdicts, adds each case's problem to the run's own
// (those already in Problems), and passes the run if none is left.
func (s *Summary) Tally() {
	s.Counts = map[Verdict]int{}
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
	if s.Load != nil && !s.Load.Passed {
		s.Problems = append(s.Problems, "the load run found violations")
	}
	sort.Strings(s.Problems)
	s.Passed = len(s.Problems) == 0
}

// Areas lists the areas of the results, in the order they first appear.
func (s *Summary) Areas() []Area {
	var out []Area
	seen := map[Area]bool{}
	for _, r := range s.Results {
		if !seen[r.Area] {
			seen[r.Area] = true
			out = append(out, r.Area)
		}
	}
	return out
}

// failureHead is the failure message without its trailing transcript,
// which the writers show from Transcript or clip.
func failureHead(failure string) (head string, transcript []string) {
	head, tr, found := strings.Cut(failure, "\nTranscript:\n")
	if !found {
		return strings.TrimRight(failure, "\n"), nil
	}
	for l := range strings.SplitSeq(strings.TrimRight(tr, "\n"), "\n") {
		transcript = append(transcript, l)
	}
	return head, transcript
}

// clipText shortens s to about n bytes, on a rune boundary, and says how
// long it was; n 0 keeps s whole.
func clipText(s string, n int) string {
	if n <= 0 || len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

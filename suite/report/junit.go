package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// What a JUnit failure keeps: a CI page shows the end of a transcript, and
// report.html and conformance.json have the rest.
const (
	junitTail     = 20  // transcript lines
	junitLineClip = 300 // bytes of one transcript line
	junitHeadMax  = 40  // lines of a failure message without structure
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
	Skipped   *junitSkipped `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
}

// junitFailure's body is CDATA, so the raw file reads line by line.
type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes junit.xml: a test suite per area and a test case per
// case. A case that fails the run carries its requirement, expected and
// actual outcomes and the end of its transcript; a case not run or
// expected to fail is skipped with its reason; a passing case carries no
// transcript.
func (s *Summary) WriteJUnit(w io.Writer) error {
	name := "MPP WebSocket conformance"
	if s.Kind != "" {
		name += " (" + s.Kind + ")"
	}
	doc := junitSuites{Name: name}
	props := []junitProperty{
		{"kind", s.Kind}, {"target", s.Target}, {"dialect", s.Dialect}, {"strict", fmt.Sprint(s.Strict)},
	}
	for _, t := range s.Targets {
		props = append(props, junitProperty{"url", t})
	}
	var total float64
	for _, a := range s.Areas() {
		suite := junitSuite{Name: string(a), Properties: props}
		var secs float64
		for _, r := range s.Results {
			if r.Area != a {
				continue
			}
			c := junitCaseOf(r)
			suite.Tests++
			if c.Failure != nil {
				suite.Failures++
			}
			if c.Skipped != nil {
				suite.Skipped++
			}
			secs += r.Seconds
			suite.Cases = append(suite.Cases, c)
		}
		suite.Time = seconds(secs)
		doc.Tests += suite.Tests
		doc.Failures += suite.Failures
		doc.Skipped += suite.Skipped
		total += secs
		doc.Suites = append(doc.Suites, suite)
	}
	doc.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encoding junit.xml: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }

func junitCaseOf(r Result) junitCase {
	c := junitCase{Name: fmt.Sprintf("[%s] %s", r.ID, r.Title), Classname: string(r.Area), Time: seconds(r.Seconds)}
	switch r.Verdict {
	case Failed:
		c.Failure = &junitFailure{Type: string(r.Verdict), Message: clipNote(r.ID + ": " + r.actual()), Body: xmlText(failureBody(r))}
	case NowPassing, NotRun:
		c.Failure = &junitFailure{Type: string(r.Verdict), Message: clipNote(string(r.Verdict) + ": " + r.Reason), Body: xmlText(r.Reason)}
	case NotApplicable, ExpectedFail:
		c.Skipped = &junitSkipped{Message: string(r.Verdict) + ": " + r.Reason}
	case NonStrict:
		c.SystemOut = "NON-STRICT: " + r.actual()
	case Informational:
		c.SystemOut = strings.Join(r.Observed, "\n")
	}
	return c
}

// actual is the one line that says what went wrong.
func (r Result) actual() string {
	if r.Actual != "" {
		return r.Actual
	}
	head, _ := failureHead(r.Failure)
	for l := range strings.SplitSeq(head, "\n") {
		if a, ok := strings.CutPrefix(l, "Actual:"); ok {
			return strings.TrimSpace(a)
		}
	}
	l, _, _ := strings.Cut(head, "\n")
	return l
}

// failureBody is what a CI page needs of a failure: the requirement, what
// was expected and what happened, and the last lines of the transcript.
func failureBody(r Result) string {
	var b strings.Builder
	head, lines := failureHead(r.Failure)
	if len(r.Expected) > 0 || r.Actual != "" {
		fmt.Fprintf(&b, "[%s] %s: %s\n", r.ID, r.Level, r.Title)
		fmt.Fprintf(&b, "Requirement: %s\n", r.Requirement)
		fmt.Fprintf(&b, "Source:      %s\n", r.Source)
		fmt.Fprintf(&b, "Expected:    %s\n", strings.Join(r.Expected, " | "))
		fmt.Fprintf(&b, "Actual:      %s\n", r.Actual)
	} else {
		if r.Requirement != "" && !strings.Contains(head, "Requirement:") {
			fmt.Fprintf(&b, "Requirement: %s\nSource:      %s\n", r.Requirement, r.Source)
		}
		hl := strings.Split(head, "\n")
		if len(hl) > junitHeadMax {
			hl = append(hl[:junitHeadMax], fmt.Sprintf("… (%d more lines in report.html)", len(hl)-junitHeadMax))
		}
		b.WriteString(strings.Join(hl, "\n") + "\n")
	}
	if len(r.Transcript) > 0 {
		lines = make([]string, 0, len(r.Transcript))
		for _, e := range r.Transcript {
			lines = append(lines, e.String(junitLineClip))
		}
	}
	if len(lines) == 0 {
		return b.String()
	}
	tail := lines[max(0, len(lines)-junitTail):]
	if len(tail) < len(lines) {
		fmt.Fprintf(&b, "Transcript, last %d of %d lines (all of it in report.html):\n", len(tail), len(lines))
	} else {
		b.WriteString("Transcript:\n")
	}
	for _, l := range tail {
		b.WriteString(clipText(l, junitLineClip) + "\n")
	}
	return b.String()
}

// xmlText replaces what XML cannot carry, even in CDATA, with U+FFFD: a
// target's frames may hold any byte (strings.Map turns invalid UTF-8 into
// U+FFFD too).
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '\uFFFD'
	}, s)
}

package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
)

func renderJUnit(t *testing.T, s *Summary) (string, junitSuites) {
	t.Helper()
	var b bytes.Buffer
	if err := s.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("junit.xml does not parse: %v", err)
	}
	return b.String(), doc
}

func junitCaseNamed(t *testing.T, doc junitSuites, id string) junitCase {
	t.Helper()
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			if strings.HasPrefix(c.Name, "["+id+"] ") {
				return c
			}
		}
	}
	t.Fatalf("junit.xml has no case %s", id)
	return junitCase{}
}

func TestJUnitHasACasePerCaseAndTheTotals(t *testing.T) {
	s := mixedRun(t)
	_, doc := renderJUnit(t, s)
	failing := countOf(s, "", Failed) + countOf(s, "", NowPassing) + countOf(s, "", NotRun)
	skipped := countOf(s, "", NotApplicable) + countOf(s, "", ExpectedFail)
	if doc.Tests != len(s.Results) || doc.Failures != failing || doc.Skipped != skipped {
		t.Errorf("totals: %d tests, %d failures, %d skipped; want %d, %d, %d", doc.Tests, doc.Failures, doc.Skipped, len(s.Results), failing, skipped)
	}
	if len(doc.Suites) != len(fixtureAreas) {
		t.Fatalf("%d suites, want one per area", len(doc.Suites))
	}
	for i, a := range fixtureAreas {
		if got := doc.Suites[i]; got.Name != string(a.area) || got.Tests != a.n || len(got.Cases) != a.n {
			t.Errorf("suite %d: %s with %d tests, want %s with %d", i, got.Name, got.Tests, a.area, a.n)
		}
	}
}

func TestJUnitFailureCarriesWhatACIPageNeeds(t *testing.T) {
	s := mixedRun(t)
	_, doc := renderJUnit(t, s)
	r := resultOf(t, s, "WS-WIRE-003")
	f := junitCaseNamed(t, doc, "WS-WIRE-003").Failure
	if f == nil || f.Type != "FAILED" || f.Message != "WS-WIRE-003: "+r.Actual {
		t.Fatalf("failure %+v", f)
	}
	for _, want := range []string{
		"Requirement: " + r.Requirement, "Source:      " + r.Source,
		"Expected:    " + r.Expected[0], "Actual:      " + r.Actual,
		fmt.Sprintf("Transcript, last 20 of %d lines", len(r.Transcript)),
		r.Transcript[len(r.Transcript)-1].String(0),
	} {
		if !strings.Contains(f.Body, want) {
			t.Errorf("failure body lacks %q:\n%s", want, f.Body)
		}
	}
	if strings.Contains(f.Body, r.Transcript[len(r.Transcript)-21].String(junitLineClip)) {
		t.Error("failure body has more than the last 20 transcript lines")
	}
	for _, l := range strings.Split(f.Body, "\n") {
		if len(l) > junitLineClip+40 {
			t.Errorf("transcript line of %d bytes left unclipped", len(l))
		}
	}
}

// A failure whose message carries its transcript as text keeps the
// message and the end of that transcript.
func TestJUnitFailureFromAMessageWithATranscript(t *testing.T) {
	s := mixedRun(t)
	_, doc := renderJUnit(t, s)
	head, lines := failureHead(resultOf(t, s, "WS-VOUCHER-008").Failure)
	f := junitCaseNamed(t, doc, "WS-VOUCHER-008").Failure
	if f == nil || f.Message != `WS-VOUCHER-008: close 1011 "internal error"` {
		t.Fatalf("failure %+v", f)
	}
	if !strings.HasPrefix(f.Body, head+"\n") || strings.Count(f.Body, "Requirement:") != 1 ||
		!strings.Contains(f.Body, fmt.Sprintf("Transcript, last 20 of %d lines", len(lines))) ||
		!strings.Contains(f.Body, lines[len(lines)-1]) || strings.Contains(f.Body, lines[len(lines)-21]+"\n") {
		t.Errorf("failure body:\n%s", f.Body)
	}
}

func TestJUnitOtherVerdicts(t *testing.T) {
	s := mixedRun(t)
	_, doc := renderJUnit(t, s)
	for id, want := range map[string]string{
		"WS-WIRE-007":   "skipped NOT APPLICABLE: a dialect B case; the target speaks dialect A",
		"WS-REPLAY-004": "skipped EXPECTED FAIL: known bug: replays are accepted within the same second",
		"WS-ROBUST-011": "failure NOT RUN: the run was interrupted",
		"WS-ROBUST-002": "out NON-STRICT: close 1011",
		"WS-WIRE-009":   "out the target closes with 1008 after a rejected credential",
		"WS-WIRE-001":   "passed",
	} {
		c := junitCaseNamed(t, doc, id)
		got := "passed"
		switch {
		case c.Skipped != nil:
			got = "skipped " + c.Skipped.Message
		case c.Failure != nil:
			got = "failure " + c.Failure.Message
		case c.SystemOut != "":
			got = "out " + c.SystemOut
		}
		if got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
}

// A green run's junit.xml is what a CI page shows: a line per case, no
// transcript. The same run's conformance.json keeps every transcript.
func TestJUnitOfAGreenRunIsSmall(t *testing.T) {
	s := greenRun(t)
	out, doc := renderJUnit(t, s)
	if doc.Tests != 78 || doc.Failures != 0 {
		t.Fatalf("%d tests, %d failures", doc.Tests, doc.Failures)
	}
	for _, transcript := range []string{"Payment ", "needVoucher", "connected to", "Transcript"} {
		if strings.Contains(out, transcript) {
			t.Errorf("junit.xml of a green run carries transcripts (%q)", transcript)
		}
	}
	var js bytes.Buffer
	if err := s.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	t.Logf("green run of %d cases: junit.xml %d bytes, conformance.json %d bytes", len(s.Results), len(out), js.Len())
	if len(out) > 32<<10 {
		t.Errorf("junit.xml of a green run is %d bytes, want at most 32 KiB", len(out))
	}
	if !strings.Contains(js.String(), "Payment ") {
		t.Error("conformance.json lost the transcripts")
	}
}

// Whatever bytes a target sent, junit.xml stays XML.
func TestJUnitCarriesAnyBytes(t *testing.T) {
	s := &Summary{Results: []Result{{ID: "X-1", Area: "wire", Verdict: Failed, Actual: "bad",
		Transcript: []Entry{{Dir: Received, Text: "nul \x00, invalid \xff, end of CDATA ]]> here"}}}}}
	s.Tally()
	_, doc := renderJUnit(t, s)
	if body := doc.Suites[0].Cases[0].Failure.Body; !strings.Contains(body, "nul \uFFFD, invalid \uFFFD, end of CDATA ]]> here") {
		t.Errorf("body %q", body)
	}
}

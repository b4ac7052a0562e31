package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTallyCountsVerdictsAndProblems(t *testing.T) {
	s := &Summary{Problems: []string{"expect-fail file names unknown case WS-X-999"}, Results: []Result{
		{ID: "A", Verdict: OK}, {ID: "B", Verdict: Failed}, {ID: "C", Verdict: NowPassing},
		{ID: "D", Verdict: NotRun}, {ID: "E", Verdict: NotApplicable}, {ID: "F", Verdict: NonStrict},
	}}
	s.Tally()
	want := map[Verdict]int{OK: 1, Failed: 1, NowPassing: 1, NotRun: 1, NotApplicable: 1, NonStrict: 1}
	if !reflect.DeepEqual(s.Counts, want) {
		t.Errorf("counts %v, want %v", s.Counts, want)
	}
	wantProblems := []string{"B failed", "C now passes: remove it from the expect-fail file", "D did not run", "expect-fail file names unknown case WS-X-999"}
	if !slices.Equal(s.Problems, wantProblems) || s.Passed {
		t.Errorf("problems %q, passed %v; want %q, not passed", s.Problems, s.Passed, wantProblems)
	}
}

func TestTallyPassesOnlyARunThatRanSomething(t *testing.T) {
	s := &Summary{Results: []Result{{ID: "A", Verdict: OK}, {ID: "B", Verdict: Informational}, {ID: "C", Verdict: ExpectedFail}}}
	if s.Tally(); !s.Passed {
		t.Errorf("a run with no problem failed: %q", s.Problems)
	}
	s = &Summary{Results: []Result{{ID: "A", Verdict: NotApplicable}}}
	if s.Tally(); s.Passed {
		t.Error("a run where nothing applied passed")
	}
	s = &Summary{Results: []Result{{ID: "A", Verdict: OK}}, Load: &Load{Passed: false}}
	if s.Tally(); s.Passed {
		t.Error("a run whose load section found violations passed")
	}
}

func TestEntryStringIsTheSuiteTranscriptLine(t *testing.T) {
	e := Entry{At: 26 * time.Millisecond, Conn: "c1", Dir: Sent, Text: `{"type":"credential"}`}
	if got, want := e.String(0), `  +0.026s [c1] → {"type":"credential"}`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e = Entry{At: time.Second, Dir: Note, Text: strings.Repeat("é", 10)}
	if got, want := e.String(5), "  +1.000s • é\u00e9… (20 bytes)"; got != want {
		t.Errorf("clipped on a rune boundary: got %q, want %q", got, want)
	}
}

func TestFailureHeadCutsTheTranscript(t *testing.T) {
	head, lines := failureHead("[X] MUST: t\nActual:      close\nTranscript:\n  +0.001s ← a\n  +0.002s → b\n")
	if head != "[X] MUST: t\nActual:      close" || !slices.Equal(lines, []string{"  +0.001s ← a", "  +0.002s → b"}) {
		t.Errorf("head %q, lines %q", head, lines)
	}
	if head, lines := failureHead("plain\n"); head != "plain" || lines != nil {
		t.Errorf("head %q, lines %q", head, lines)
	}
}

// conformance.json keeps the names other tools read, and every transcript.
func TestWriteJSONKeepsFieldNamesAndTranscripts(t *testing.T) {
	s := mixedRun(t)
	var b bytes.Buffer
	if err := s.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Kind   string         `json:"kind"`
		Passed *bool          `json:"passed"`
		Counts map[string]int `json:"counts"`
		Cases  []map[string]json.RawMessage
	}
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Kind != KindServer || raw.Passed == nil || raw.Counts["FAILED"] != 2 || len(raw.Cases) != 78 {
		t.Fatalf("kind %q passed %v counts %v cases %d", raw.Kind, raw.Passed, raw.Counts, len(raw.Cases))
	}
	for _, key := range []string{"id", "verdict", "level", "area", "dialects", "durationNs", "transcript", "requirement", "source"} {
		if _, ok := raw.Cases[0][key]; !ok {
			t.Errorf("case lacks %q", key)
		}
	}
	var back Summary
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, s) {
		t.Error("conformance.json does not read back into the summary it was written from")
	}
}

func TestWriteTextIsTodaysSummary(t *testing.T) {
	s := mixedRun(t)
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"\nMPP WebSocket conformance: reference (embedded) (dialect A)\n",
		"  target ws://127.0.0.1:41897/session\n",
		"78 cases: 57 OK, 2 FAILED, 1 NON-STRICT, 7 INFO, 9 NOT APPLICABLE, 1 EXPECTED FAIL, 1 NOT RUN\n",
		"NOT CONFORMANT:\n  - WS-ROBUST-011 did not run\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, line := range []string{"WS-REPLAY-004", "WS-ROBUST-002"} {
		i := strings.Index(out, "  "+line)
		l, _, _ := strings.Cut(out[i:], "\n")
		if !strings.Contains(l, "known bug") && !strings.Contains(l, "NON-STRICT: close 1011") {
			t.Errorf("line of %s lacks its note: %q", line, l)
		}
	}
	if strings.Contains(out, "Payment ") {
		t.Error("summary.txt carries transcripts")
	}
}

func TestWriteFilesWritesEveryReport(t *testing.T) {
	dir := t.TempDir()
	if err := greenRun(t).WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{JSONFile, TextFile, HTMLFile, JUnitFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	err := greenRun(t).WriteFiles(filepath.Join(dir, "missing"))
	if err == nil || !strings.Contains(err.Error(), JSONFile) {
		t.Errorf("writing into a missing directory: %v", err)
	}
}

package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes conformance.json: the whole summary, every transcript.
func (s *Summary) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the summary: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the readable summary (summary.txt, and the end of a
// run on the terminal): one line per case, then the totals.
func (s *Summary) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	title := "MPP WebSocket conformance"
	if s.Kind == KindClient {
		title = "MPP WebSocket client conformance"
	}
	fmt.Fprintf(ew, "\n%s: %s (dialect %s)\n", title, s.Target, s.Dialect)
	for _, t := range s.Targets {
		fmt.Fprintf(ew, "  target %s\n", t)
	}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	for _, r := range s.Results {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.ID, r.Verdict, r.Level, r.Title, clipNote(r.note()))
	}
	tw.Flush()
	var parts []string
	for _, v := range Verdicts {
		if n := s.Counts[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
	}
	fmt.Fprintf(ew, "%d cases: %s\n", len(s.Results), strings.Join(parts, ", "))
	if s.Load != nil {
		fmt.Fprintf(ew, "load: %s\n", s.Load.Summary)
	}
	if s.Passed {
		fmt.Fprintln(ew, "CONFORMANT")
		return ew.err
	}
	fmt.Fprintln(ew, "NOT CONFORMANT:")
	for _, p := range s.Problems {
		fmt.Fprintln(ew, "  -", p)
	}
	return ew.err
}

// note is the one remark a summary line carries: why the case has its
// verdict, or what it last observed.
func (r Result) note() string {
	if r.Reason == "" && len(r.Observed) > 0 && (r.Verdict == Informational || r.Verdict == NonStrict) {
		return r.Observed[len(r.Observed)-1]
	}
	return r.Reason
}

func clipNote(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 100 {
		return s[:97] + "..."
	}
	return s
}

// errWriter keeps the first write error, so a writer of many small pieces
// checks once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

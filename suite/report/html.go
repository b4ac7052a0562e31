package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"class": verdictClass,
}).Parse(htmlSource))

// verdictClass is the CSS class that colours a verdict: "v-not-applicable".
func verdictClass(v Verdict) string {
	return "v-" + strings.ToLower(strings.ReplaceAll(string(v), " ", "-"))
}

// WriteHTML writes report.html: one self-contained page (inline style and
// script, nothing fetched) with the area × verdict matrix, filters, and
// every case with its transcript, frames indented and credentials decoded.
func (s *Summary) WriteHTML(w io.Writer) error {
	if err := htmlTemplate.Execute(w, newHTMLView(s)); err != nil {
		return fmt.Errorf("rendering report.html: %w", err)
	}
	return nil
}

type htmlView struct {
	*Summary
	Title    string
	Verdicts []Verdict
	Matrix   []matrixRow
	Totals   matrixRow
	Cases    []caseView
}

// matrixRow is one area's counts, a cell per verdict in Verdicts order.
type matrixRow struct {
	Area  Area
	Cells []matrixCell
	Total int
	Cases []Result // the area's cases, in result order, for the grid
}

type matrixCell struct {
	Area    Area
	Verdict Verdict
	Count   int
}

type caseView struct {
	Result
	Head   string   // the failure message without its transcript
	Lines  []string // the failure's own transcript, when Transcript is empty
	Open   bool     // show the transcript unfolded
	Frames []frameView
}

type frameView struct {
	Entry
	Time   string
	Pretty string
	Blocks []block
}

func newHTMLView(s *Summary) htmlView {
	v := htmlView{Summary: s, Title: "MPP WebSocket conformance", Verdicts: Verdicts}
	if s.Kind == KindClient {
		v.Title = "MPP WebSocket client conformance"
	}
	v.Totals.Cells = make([]matrixCell, len(Verdicts))
	for i, vd := range Verdicts {
		v.Totals.Cells[i] = matrixCell{Verdict: vd}
	}
	for _, a := range s.Areas() {
		row := matrixRow{Area: a, Cells: make([]matrixCell, len(Verdicts))}
		for i, vd := range Verdicts {
			row.Cells[i] = matrixCell{Area: a, Verdict: vd}
		}
		for _, r := range s.Results {
			if r.Area != a {
				continue
			}
			row.Cases = append(row.Cases, r)
			for i := range row.Cells {
				if row.Cells[i].Verdict == r.Verdict {
					row.Cells[i].Count++
					v.Totals.Cells[i].Count++
				}
			}
		}
		row.Total = len(row.Cases)
		v.Totals.Total += row.Total
		v.Matrix = append(v.Matrix, row)
	}
	for _, r := range s.Results {
		v.Cases = append(v.Cases, newCaseView(r))
	}
	return v
}

func newCaseView(r Result) caseView {
	c := caseView{Result: r, Open: r.Verdict == Failed || r.Verdict == NonStrict || r.Verdict == NowPassing}
	c.Head, c.Lines = failureHead(r.Failure)
	for _, e := range r.Transcript {
		c.Frames = append(c.Frames, frameView{
			Entry:  e,
			Time:   fmt.Sprintf("%+.3fs", e.At.Seconds()),
			Pretty: pretty(e.Text),
			Blocks: decodeFrame(e.Text),
		})
	}
	if len(c.Frames) > 0 {
		c.Lines = nil
	}
	return c
}

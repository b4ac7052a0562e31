package report

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func renderHTML(t *testing.T, s *Summary) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// countOf counts the cases of area a (all areas if empty) with verdict v.
func countOf(s *Summary, a Area, v Verdict) int {
	n := 0
	for _, r := range s.Results {
		if (a == "" || r.Area == a) && r.Verdict == v {
			n++
		}
	}
	return n
}

func TestHTMLMatrixCountsEveryAreaAndVerdict(t *testing.T) {
	s := mixedRun(t)
	page := renderHTML(t, s)
	for _, a := range s.Areas() {
		for _, v := range Verdicts {
			cell := fmt.Sprintf(`data-area="%s" data-verdict="%s" data-count="%d"`, a, v, countOf(s, a, v))
			if !strings.Contains(page, cell) {
				t.Errorf("matrix lacks %s", cell)
			}
		}
	}
	for _, v := range Verdicts {
		if total := fmt.Sprintf(`<td class="%s" data-verdict="%s" data-count="%d">`, map[bool]string{true: verdictClass(v), false: "zero"}[countOf(s, "", v) > 0], v, countOf(s, "", v)); !strings.Contains(page, total) {
			t.Errorf("totals lack %s", total)
		}
	}
	if !strings.Contains(page, `<td data-total="78">78</td>`) || !strings.Contains(page, `id="outcome">NOT CONFORMANT<`) {
		t.Error("grand total or outcome missing")
	}
}

func TestHTMLHasAnAnchorAndFiltersPerCase(t *testing.T) {
	s := mixedRun(t)
	page := renderHTML(t, s)
	for _, r := range s.Results {
		article := fmt.Sprintf(`<article class="case %s" id="%s" data-verdict="%s" data-area="%s">`, verdictClass(r.Verdict), r.ID, r.Verdict, r.Area)
		if strings.Count(page, article) != 1 || strings.Count(page, `id="`+r.ID+`"`) != 1 {
			t.Errorf("case %s: want one article with its anchor", r.ID)
		}
		if !strings.Contains(page, `<a class="chip `+verdictClass(r.Verdict)+`" href="#`+r.ID+`"`) {
			t.Errorf("grid lacks a link to %s", r.ID)
		}
	}
	for _, v := range Verdicts {
		if !strings.Contains(page, `<input type="checkbox" name="verdict" value="`+string(v)+`" checked>`) {
			t.Errorf("no filter for %s", v)
		}
	}
	for _, a := range s.Areas() {
		if !strings.Contains(page, `<option value="`+string(a)+`">`) {
			t.Errorf("no filter for area %s", a)
		}
	}
}

// caseHTML is the article of case id.
func caseHTML(t *testing.T, page, id string) string {
	t.Helper()
	i := strings.Index(page, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no case %s", id)
	}
	end := strings.Index(page[i:], "</article>")
	return page[i : i+end]
}

func TestHTMLShowsACaseWhole(t *testing.T) {
	s := mixedRun(t)
	page := renderHTML(t, s)

	failed := caseHTML(t, page, "WS-WIRE-003")
	for _, want := range []string{
		`<span class="badge v-failed">FAILED</span>`, "<dt>Requirement</dt>", "<dt>Source</dt><dd>protocol.md §6.5</dd>",
		"<th>Expected</th><th>Actual</th>", "<li>exactly 1 messages for the voucher of 2000, then a needVoucher</li>",
		`<td class="actual">message 2: message frame {&#34;type&#34;:&#34;message&#34;,&#34;data&#34;:&#34;unit-3&#34;}</td>`,
		`<details class="transcript" open><summary>Transcript (`,
		`<tr class="sent"><td class="mono">&#43;0.003s</td><td class="mono">c1</td><td class="dir">→</td>`,
		`<div class="label">challenge echo · request</div>`, `&#34;amount&#34;: &#34;1000&#34;`,
		`<div class="label">payload</div>`, `&#34;cumulativeAmount&#34;: &#34;1000&#34;`,
		`&#34;credential&#34;: &#34;Payment eyJ`, // the token beside its decoding
	} {
		if !strings.Contains(failed, want) {
			t.Errorf("failed case lacks %s", want)
		}
	}

	// A failure that carries its transcript as text shows it as text.
	legacy := caseHTML(t, page, "WS-VOUCHER-008")
	_, lines := failureHead(resultOf(t, s, "WS-VOUCHER-008").Failure)
	if !strings.Contains(legacy, `<pre class="failure">[WS-VOUCHER-008] MUST`) || !strings.Contains(legacy, fmt.Sprintf("Transcript (%d lines)", len(lines))) || strings.Contains(legacy, "\nTranscript:\n") {
		t.Errorf("legacy failure shows its transcript other than as %d lines of its own", len(lines))
	}

	na := caseHTML(t, page, "WS-WIRE-007")
	if !strings.Contains(na, `<dd class="reason">a dialect B case; the target speaks dialect A</dd>`) || strings.Contains(na, "<details") {
		t.Errorf("not-applicable case:\n%s", na)
	}
	if ok := caseHTML(t, page, "WS-WIRE-001"); !strings.Contains(ok, `<details class="transcript"><summary>`) {
		t.Error("a passing case's transcript is missing or unfolded")
	}
	if b := caseHTML(t, page, "WS-REPLAY-005"); !strings.Contains(b, `<div class="label">WWW-Authenticate · request</div>`) || !strings.Contains(b, `&#34;mpp&#34;: &#34;authorization&#34;`) {
		t.Error("dialect B case: probe or authorization not decoded")
	}
}

// The page loads nothing: no external script, style, font or image.
func TestHTMLIsSelfContained(t *testing.T) {
	s := mixedRun(t)
	// Every part of the page, a decoded credential and a load section
	// among them, in a page small enough to search quickly.
	s.Results = s.Results[:4]
	s.Load = &Load{Summary: "8 sessions", Figures: []Figure{{"sessions", "8"}}, Violations: []LoadViolation{{Kind: "stall", Transcript: []string{"x"}}}}
	page := renderHTML(t, s)
	if !strings.Contains(page, `<div class="label">payload</div>`) || !strings.Contains(page, `id="load"`) {
		t.Fatal("the page searched lacks a part")
	}
	external := regexp.MustCompile(`(?i)\s(src|href|action)=["']?[^"'#]|<link|@import|url\(`)
	if m := external.FindString(page); m != "" {
		t.Errorf("report.html refers outside itself: %q", m)
	}
	if !strings.Contains(page, "<style>") || !strings.Contains(page, "<script>") {
		t.Error("inline style or script missing")
	}
}

func TestHTMLEscapesWhatTheTargetSent(t *testing.T) {
	s := &Summary{Target: "<b>t</b>", Results: []Result{{ID: "X-1", Area: "wire", Verdict: Failed,
		Actual:     "<script>alert(1)</script>",
		Transcript: []Entry{{Dir: Received, Text: `{"type":"error","error":"</pre><script>alert(2)</script>"}`}}}}}
	s.Tally()
	page := renderHTML(t, s)
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<b>t</b>") {
		t.Error("target text reached the page unescaped")
	}
}

func TestHTMLLoadSectionOnlyWhenThereIsOne(t *testing.T) {
	s := greenRun(t)
	if strings.Contains(renderHTML(t, s), `id="load"`) {
		t.Error("load section without a load run")
	}
	s.Load = &Load{Target: "ws://127.0.0.1:1/", Summary: "8 sessions over 9 connections", Passed: false,
		Figures:    []Figure{{"messages per second", "412"}},
		Violations: []LoadViolation{{Kind: "over-delivery", Detail: "3 messages unpaid", Transcript: []string{"0.001s conn 1 < frame"}}}}
	page := renderHTML(t, s)
	for _, want := range []string{`id="load"`, "8 sessions over 9 connections", "<th>messages per second</th>", "VIOLATIONS", "over-delivery: 3 messages unpaid", "0.001s conn 1 &lt; frame"} {
		if !strings.Contains(page, want) {
			t.Errorf("load section lacks %q", want)
		}
	}
}

func TestHTMLClientRunIsTitledSo(t *testing.T) {
	s := greenRun(t)
	s.Kind = KindClient
	if page := renderHTML(t, s); !strings.Contains(page, "<h1>MPP WebSocket client conformance</h1>") || !strings.Contains(page, "<dt>Run</dt><dd>client</dd>") {
		t.Error("client run not titled as one")
	}
}

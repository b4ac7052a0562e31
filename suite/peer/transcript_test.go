package peer

import (
	"strings"
	"testing"
	"time"

	"github.com/mppws/conformance/suite/report"
)

// A failure message shows frames clipped, as it always has; the report
// gets them whole, so it can decode a credential.
func TestTranscriptClipsLinesButKeepsEntries(t *testing.T) {
	tr := NewTranscript()
	credential := `{"type":"credential","credential":"Payment ` + strings.Repeat("e", 2000) + `"}`
	c1 := tr.named("c1")
	c1.add(26*time.Millisecond, report.Sent, credential)
	tr.add(27*time.Millisecond, report.Note, "probe")
	c1.add(28*time.Millisecond, report.Received, strings.Repeat("x", keptBytes+1))

	lines := strings.Split(tr.String(), "\n")
	if len(lines) != 3 || lines[0] != `  +0.026s [c1] → `+credential[:shownBytes]+`… (2045 bytes)` || lines[1] != "  +0.027s • probe" {
		t.Errorf("lines %q", lines)
	}
	e := tr.Entries()
	want := []report.Entry{
		{At: 26 * time.Millisecond, Conn: "c1", Dir: report.Sent, Text: credential},
		{At: 27 * time.Millisecond, Dir: report.Note, Text: "probe"},
	}
	if len(e) != 3 || e[0] != want[0] || e[1] != want[1] || !strings.HasSuffix(e[2].Text, "… (65537 bytes)") || len(e[2].Text) > keptBytes+32 {
		t.Errorf("entries %+v", e[:2])
	}
}

package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake time that moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestProgressInALogPrintsALinePerCase(t *testing.T) {
	var b bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	p := newProgress(&b, 3, false, c.now)
	p.Start("WS-WIRE-001")
	p.Start("WS-WIRE-002")
	c.advance(1400 * time.Millisecond)
	p.End("WS-WIRE-002", Failed)
	c.advance(65 * time.Second)
	p.End("WS-WIRE-001", OK)
	p.Start("WS-WIRE-003")
	p.End("WS-WIRE-003", NotApplicable)
	p.Finish()
	want := "[1/3] 1s WS-WIRE-002 FAILED, 1 failure\n" +
		"[2/3] 1m6s WS-WIRE-001 OK, 1 failure\n" +
		"[3/3] 1m6s WS-WIRE-003 NOT APPLICABLE, 1 failure\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// screen replays what a terminal shows: \r returns to the start of the
// line and ESC[K erases the rest of it.
func screen(out string) []string {
	var lines []string
	cur := ""
	for len(out) > 0 {
		switch {
		case strings.HasPrefix(out, "\r"):
			cur, out = "", out[1:]
		case strings.HasPrefix(out, "\x1b[K"):
			out = out[3:]
		case strings.HasPrefix(out, "\n"):
			lines, cur, out = append(lines, cur), "", out[1:]
		default:
			cur, out = cur+out[:1], out[1:]
		}
	}
	return append(lines, cur)
}

func TestProgressOnATerminalRedrawsOneLine(t *testing.T) {
	var b bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	p := newProgress(&b, 78, true, c.now)
	p.Start("WS-WIRE-001")
	if got := screen(b.String()); len(got) != 1 || got[0] != "[0/78] 0s, 0 failures, running WS-WIRE-001" {
		t.Errorf("after a start the screen shows %q", got)
	}
	p.Start("WS-WIRE-002")
	p.Start("WS-WIRE-003")
	c.advance(3 * time.Second)
	p.End("WS-WIRE-001", OK)
	if got := screen(b.String()); len(got) != 1 || got[0] != "[1/78] 3s, 0 failures, running WS-WIRE-002 +1" {
		t.Errorf("after an end the screen shows %q", got)
	}
	p.End("WS-WIRE-003", Failed)
	p.End("WS-WIRE-002", OK)
	p.Finish()
	want := []string{"WS-WIRE-003 FAILED", "[3/78] 3s, 1 failure", ""}
	if got := screen(b.String()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("screen %q, want %q", got, want)
	}
	if n := strings.Count(b.String(), "\n"); n != 2 {
		t.Errorf("%d newlines, want the failure's and the last", n)
	}
}

func TestProgressFromManyGoroutines(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, 50, false)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			id := fmt.Sprintf("C-%02d", i)
			p.Start(id)
			p.End(id, map[bool]Verdict{true: Failed, false: OK}[i%10 == 0])
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 50 || !strings.HasPrefix(lines[49], "[50/50] ") || !strings.HasSuffix(lines[49], ", 5 failures") {
		t.Errorf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestIsTerminalSaysNoToAFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file taken for a terminal")
	}
}

package report

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"
)

// Progress tells how far a run is: cases done of all, time since the run
// began, failures so far. On a terminal it redraws one line; elsewhere (a
// CI log) it prints a plain line per finished case. Cases may start and end
// from several goroutines.
type Progress struct {
	w        io.Writer
	terminal bool
	total    int
	now      func() time.Time

	mu      sync.Mutex
	began   time.Time
	done    int
	failed  int
	running []string
	drawn   bool // a progress line is on the terminal
}

// NewProgress reports on w for a run of total cases; terminal selects the
// redrawn line (see IsTerminal).
func NewProgress(w io.Writer, total int, terminal bool) *Progress {
	return newProgress(w, total, terminal, time.Now)
}

func newProgress(w io.Writer, total int, terminal bool, now func() time.Time) *Progress {
	return &Progress{w: w, terminal: terminal, total: total, now: now, began: now()}
}

// IsTerminal reports whether f is a character device, such as a terminal:
// the redrawn line would be noise in a file or a pipe.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Start records that case id began.
func (p *Progress) Start(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = append(p.running, id)
	if p.terminal {
		p.draw()
	}
}

// End records that case id ended with verdict v.
func (p *Progress) End(id string, v Verdict) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.running, id); i >= 0 {
		p.running = slices.Delete(p.running, i, i+1)
	}
	p.done++
	if v.Fails() {
		p.failed++
	}
	if !p.terminal {
		fmt.Fprintf(p.w, "[%d/%d] %s %s %s, %s\n", p.done, p.total, p.elapsed(), id, v, p.failures())
		return
	}
	if v.Fails() {
		// A failure stays on the screen above the progress line.
		p.clear()
		fmt.Fprintf(p.w, "%s %s\n", id, v)
	}
	p.draw()
}

// Finish ends the progress line, so what is printed next starts on a
// line of its own.
func (p *Progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// draw rewrites the terminal line: carriage return, the line, then erase
// whatever a longer earlier line left.
func (p *Progress) draw() {
	line := fmt.Sprintf("[%d/%d] %s, %s", p.done, p.total, p.elapsed(), p.failures())
	if len(p.running) > 0 {
		line += ", running " + p.running[0]
		if more := len(p.running) - 1; more > 0 {
			line += fmt.Sprintf(" +%d", more)
		}
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	p.drawn = true
}

func (p *Progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func (p *Progress) elapsed() string { return p.now().Sub(p.began).Round(time.Second).String() }

func (p *Progress) failures() string {
	if p.failed == 1 {
		return "1 failure"
	}
	return fmt.Sprintf("%d failures", p.failed)
}

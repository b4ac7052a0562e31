package clients

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// launch runs the client command once for a case, its output going into
// the case's transcript, and reports how it ended. limit is how long it
// may run; past it the suite kills its whole process group and calls it
// hung. An error means the command could not be started at all.
func launch(ctx context.Context, tmpl string, vars map[string]string, rec *Record, limit time.Duration, run int) (Exit, error) {
	line := expand(tmpl, vars)
	rec.Note("run %d: sh -c %s", run, line)
	cmd := exec.Command("/bin/sh", "-c", line)
	// A group of its own, so a wrapper shell's children die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, stderr := &output{rec: rec, who: "stdout"}, &output{rec: rec, who: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A grandchild holding the output pipes must not hold the case.
	cmd.WaitDelay = time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Exit{}, fmt.Errorf("start the client command %q: %w", line, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	killed := false
	select {
	case <-done:
	case <-timer.C:
		killed = true
	case <-ctx.Done():
		killed = true
	}
	if killed {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	stdout.flush()
	stderr.flush()
	ex := Exit{Duration: time.Since(start), Killed: killed}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		ex.Code, ex.Signal = -1, ws.Signal().String()
	} else {
		ex.Code = cmd.ProcessState.ExitCode()
	}
	if !killed {
		ex.Crashed = crashed(ex, stdout.text()+stderr.text())
	}
	rec.Note("run %d: %s", run, ex)
	return ex, nil
}

// crashSignals end a process that crashed rather than chose to exit.
var crashSignals = map[syscall.Signal]bool{
	syscall.SIGSEGV: true, syscall.SIGABRT: true, syscall.SIGBUS: true, syscall.SIGILL: true, syscall.SIGFPE: true, syscall.SIGKILL: true,
}

// crashMarkers are what runtimes print when a program dies of an
// unhandled failure: Go panics and fatal errors, Node's uncaught
// exceptions (followed by its version line), Rust panics, Python
// tracebacks.
var crashMarkers = []string{
	"panic: ", "fatal error: ", "goroutine 1 [",
	"\nNode.js v", "UnhandledPromiseRejection", "Maximum call stack size exceeded",
	"panicked at", "Traceback (most recent call last)",
}

// crashed says why an exit is a crash, or "" for an orderly exit: a crash
// signal (directly, or as the shell's 128+n), or a runtime's crash report
// in the output.
func crashed(ex Exit, out string) string {
	for sig := range crashSignals {
		if ex.Signal == sig.String() || ex.Code == 128+int(sig) {
			return "ended by " + sig.String()
		}
	}
	for _, m := range crashMarkers {
		if strings.Contains(out, m) {
			return fmt.Sprintf("its output reports an unhandled failure (%q)", strings.TrimSpace(m))
		}
	}
	return ""
}

// expand substitutes {url}, {case}, {dialect}, {timeout} and {state},
// shell-quoting any value that needs it.
func expand(tmpl string, vars map[string]string) string {
	pairs := make([]string, 0, 2*len(vars))
	for k, v := range vars {
		pairs = append(pairs, "{"+k+"}", shellQuote(v))
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}

func shellQuote(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/:._-", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// output copies a client stream into the transcript line by line, and
// keeps its text (up to a bound) for crash detection.
type output struct {
	rec *Record
	who string

	mu      sync.Mutex
	partial []byte
	kept    bytes.Buffer
}

const keepOutput = 256 << 10

func (w *output) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := keepOutput - w.kept.Len(); room > 0 {
		w.kept.Write(p[:min(len(p), room)])
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.rec.line(w.who, note, string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *output) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.rec.line(w.who, note, string(w.partial))
		w.partial = nil
	}
}

func (w *output) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.kept.String()
}

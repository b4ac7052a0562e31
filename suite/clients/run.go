// Package clients is the client conformance suite: Autobahn's
// fuzzingserver for MPP over WebSocket. For each case a scripted server
// plays one session on a URL of its own, honest or cheating or hostile, in
// dialect A or B; the client under test is launched on that URL (--exec)
// or connects to it (--listen); the case then grades the wire record (what
// the client sent and signed, each credential verified for real) and, when
// the suite launched it, how the client process ended.
package clients

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/suite/connect"
)

// ErrUsage marks a configuration or selection error (exit 2).
var ErrUsage = errors.New("invalid configuration")

// ErrSetup marks a run that could not start: the address cannot be bound,
// or the client command cannot be started at all (exit 3).
var ErrSetup = errors.New("setup failed")

// Config is a client suite run.
type Config struct {
	// Exec is the command that runs the client once; {url}, {case},
	// {dialect}, {timeout} (seconds) and {state} (a file that lives as
	// long as the case) are substituted. Exactly one of Exec and Listen.
	Exec string
	// Listen is the address whose per-case URLs a client connects to.
	Listen string
	// Dialect is "a" or "b".
	Dialect string
	// Channels are the fixture channels the scripted server offers (and
	// the client holds). Default fixtures.Default().
	Channels []fixtures.Channel
	// Select lists case IDs and areas; empty runs everything.
	Select []string
	// Strict counts SHOULD cases.
	Strict bool
	// TimeoutScale multiplies every timeout. Default 1.
	TimeoutScale float64
	// ReportDir receives conformance.json, summary.txt, report.html and
	// junit.xml.
	ReportDir string
	// ExpectFail maps case IDs to the reason they are expected to fail.
	ExpectFail map[string]string
	// Parallel is how many cases run at once with --exec. Default 4.
	Parallel int
	// MaxPrepay is the prepay window: how many units beyond those
	// delivered (and the next one) a client may sign. Default 100.
	MaxPrepay int
	// Agent names the client in reports.
	Agent string
	// Wait is how long --listen waits for a client to connect to a case.
	// Default 2 minutes (scaled).
	Wait time.Duration
	// Out receives progress, the listen URLs and the summary.
	Out io.Writer
	// TLS, when set, serves the case URLs over TLS: wss:// URLs, and
	// dialect B's probes over https://. With Exec the URLs' host is
	// 127.0.0.1, which the certificate must cover.
	TLS *tls.Config
	// Subprotocols are the WebSocket subprotocols the scripted server
	// accepts, in order of preference: it selects the first of them the
	// client offers, and serves a client that offers none without one.
	Subprotocols []string
}

// Timing of a case, before --timeout-scale.
const (
	// clientTimeout is the client's own timeout, given as {timeout}: every
	// case but the stalls ends well within it.
	clientTimeout = 5 * time.Second
	// grace is how long past its timeout a client may take to exit before
	// the suite calls it hung and kills it.
	grace = 10 * time.Second
	// settle is how long the scripted server's connections may take to
	// end once the client process has.
	settle = 2 * time.Second
)

// options are what scripts and checks read of a run.
type options struct {
	dialect  frame.Dialect
	channels []fixtures.Channel
	scale    float64
	window   int
	// subprotocols the scripted server accepts, in order of preference.
	subprotocols []string
}

func (o *options) b() bool { return o.dialect.Name() == frame.B.Name() }

func (o *options) scaled(d time.Duration) time.Duration {
	return time.Duration(math.Round(float64(d) * o.scale))
}

func (cfg *Config) validate() error {
	switch {
	case (cfg.Exec == "") == (cfg.Listen == ""):
		return errors.New("give exactly one of --exec and --listen")
	case cfg.Exec != "" && !strings.Contains(cfg.Exec, "{url}"):
		return errors.New("--exec must contain {url}")
	}
	switch strings.ToLower(cfg.Dialect) {
	case "", "a":
		cfg.Dialect = "a"
	case "b":
		cfg.Dialect = "b"
	default:
		return fmt.Errorf("dialect %q: want a or b", cfg.Dialect)
	}
	if cfg.TimeoutScale == 0 {
		cfg.TimeoutScale = 1
	}
	if cfg.TimeoutScale < 0.1 || cfg.TimeoutScale > 100 {
		return fmt.Errorf("timeout scale %g: want between 0.1 and 100", cfg.TimeoutScale)
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 4
	}
	if cfg.Parallel < 1 || cfg.Parallel > 64 {
		return fmt.Errorf("parallel %d: want between 1 and 64", cfg.Parallel)
	}
	if cfg.MaxPrepay == 0 {
		cfg.MaxPrepay = 100
	}
	if cfg.MaxPrepay < 1 {
		return fmt.Errorf("max prepay %d: want at least one unit", cfg.MaxPrepay)
	}
	for _, p := range cfg.Subprotocols {
		if err := connect.CheckSubprotocol(p); err != nil {
			return err
		}
	}
	if cfg.Channels == nil {
		cfg.Channels = fixtures.Default()
	}
	if cfg.Wait == 0 {
		cfg.Wait = 2 * time.Minute
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	return nil
}

// Select resolves case IDs and areas to cases, in catalogue order.
func Select(args []string) ([]*Case, error) {
	all := Catalogue()
	if len(args) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, a := range args {
		if c, ok := lookup(strings.ToUpper(a)); ok {
			want[c.ID] = true
			continue
		}
		if !slices.Contains(Areas, strings.ToLower(a)) {
			return nil, fmt.Errorf("%q is neither a client case ID nor an area (areas: %s; `conformance clients --list` shows the IDs)", a, strings.Join(Areas, ", "))
		}
		for _, c := range all {
			if c.Area == strings.ToLower(a) {
				want[c.ID] = true
			}
		}
	}
	var out []*Case
	for _, c := range all {
		if want[c.ID] {
			out = append(out, c)
		}
	}
	return out, nil
}

// outcome is how a case ended, before the verdict.
type outcome struct {
	duration      time.Duration
	failure       string
	expected      []string
	actual        string
	transcript    []Entry
	notApplicable string
	notRun        string
	observed      []string
}

// runner holds a run's HTTP server and the case URLs it routes.
type runner struct {
	cfg    Config
	o      *options
	addr   string
	scheme string // of the case URLs: ws, or wss over TLS

	mu    sync.Mutex
	cases map[string]*caseRun // by URL path
	outMu sync.Mutex          // cases end side by side: one progress line at a time
}

// progress prints one line to Out.
func (r *runner) progress(format string, args ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.cfg.Out, format, args...)
}

func (r *runner) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	cr := r.cases[req.URL.Path]
	r.mu.Unlock()
	if cr == nil {
		http.Error(w, "no case is running at "+req.URL.Path, http.StatusNotFound)
		return
	}
	cr.touch()
	cr.ServeHTTP(w, req)
}

func (r *runner) route(path string, cr *caseRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cr == nil {
		delete(r.cases, path)
		return
	}
	r.cases[path] = cr
}

// Run runs the selected cases against the client and returns their
// verdicts; it writes the reports even when cases fail.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if err := validate(); err != nil {
		return nil, err
	}
	chosen, err := Select(cfg.Select)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	o := &options{dialect: frame.A, channels: cfg.Channels, scale: cfg.TimeoutScale, window: cfg.MaxPrepay, subprotocols: cfg.Subprotocols}
	if cfg.Dialect == "b" {
		o.dialect = frame.B
	}
	if cfg.ReportDir != "" {
		if err := os.MkdirAll(cfg.ReportDir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: report dir: %v", ErrUsage, err)
		}
	}
	addr := cfg.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: listen: %v", ErrSetup, err)
	}
	r := &runner{cfg: cfg, o: o, addr: ln.Addr().String(), scheme: "ws", cases: map[string]*caseRun{}}
	if cfg.TLS != nil {
		// One listener serves upgrades and dialect B's probes: both go
		// over TLS.
		ln, r.scheme = tls.NewListener(ln, cfg.TLS), "wss"
	}
	hs := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()

	var results []Result
	if cfg.Listen != "" {
		results, err = r.listen(ctx, chosen)
	} else {
		results, err = r.execAll(ctx, chosen)
	}
	if err != nil {
		return nil, err
	}
	target := cfg.Agent
	if target == "" {
		target = cfg.Exec
		if target == "" {
			target = "client at " + r.addr
		}
	}
	s := summarize(target, strings.ToUpper(cfg.Dialect), cfg.Strict, results)
	if cfg.ReportDir != "" {
		if err := writeReports(s, cfg.ReportDir); err != nil {
			return s, fmt.Errorf("writing reports: %w", err)
		}
	}
	if err := printSummary(cfg.Out, s); err != nil {
		return s, fmt.Errorf("writing the summary: %w", err)
	}
	return s, nil
}

// execAll runs the cases Parallel at a time, launching the client for each.
func (r *runner) execAll(ctx context.Context, chosen []*Case) ([]Result, error) {
	results := make([]Result, len(chosen))
	sem := make(chan struct{}, r.cfg.Parallel)
	var wg sync.WaitGroup
	var setupErr error
	var once sync.Once
	for i, c := range chosen {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			o, err := r.execCase(ctx, c)
			if err != nil {
				once.Do(func() { setupErr = err })
				o = outcome{notRun: err.Error()}
			}
			results[i] = verdict(c, o, r.cfg.Strict, r.cfg.ExpectFail)
			r.progress("%-14s %-15s %s\n", c.ID, results[i].Verdict, c.Title)
		})
	}
	wg.Wait()
	if setupErr != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, setupErr)
	}
	return results, ctx.Err()
}

// execCase runs one case: the scripted server on a fresh URL, the client
// launched on it once per run, then the grading. An error means the client
// command could not be started at all.
func (r *runner) execCase(ctx context.Context, c *Case) (outcome, error) {
	start := time.Now()
	if why := c.notApplicable(r.o); why != "" {
		return outcome{notApplicable: why}, nil
	}
	perRun := r.o.scaled(clientTimeout + grace)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.runs())*perRun+r.o.scaled(settle))
	defer cancel()
	cr := newCaseRun(ctx, c, r.o, c.offerOf(r.o))
	path := "/case/" + c.ID + "/" + token()
	r.route(path, cr)
	defer r.route(path, nil)
	state, err := os.MkdirTemp("", "mppws-client-state-")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(state)
	vars := map[string]string{
		"url": r.scheme + "://" + r.addr + path, "case": c.ID, "dialect": r.cfg.Dialect,
		"timeout": fmt.Sprint(int(math.Ceil(r.o.scaled(clientTimeout).Seconds()))),
		"state":   state + "/state.json",
	}
	for run := 1; run <= c.runs(); run++ {
		ex, err := launch(ctx, r.cfg.Exec, vars, cr.rec, perRun, run)
		if err != nil {
			return outcome{}, err
		}
		cr.rec.mu.Lock()
		cr.rec.exits = append(cr.rec.exits, ex)
		cr.rec.mu.Unlock()
	}
	cr.quiesce(r.o.scaled(settle))
	cancel()
	cr.wg.Wait()
	o := grade(&judge{c: c, rec: cr.rec, o: r.o, exec: true})
	o.duration = time.Since(start)
	return o, nil
}

// token is a random URL path element, so no two case runs share a URL.
func token() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// grade judges a finished case: its checks over the record, then how the
// client process ended.
func grade(j *judge) outcome {
	var expected, problems []string
	for _, ch := range j.c.Checks {
		expected = append(expected, ch.Want)
		for _, p := range ch.Eval(j) {
			problems = append(problems, ch.Want+": "+p)
		}
	}
	notes := j.rec.observed()
	if j.exec {
		expected = append(expected, "the client neither crashes nor outlives its own timeout", "the client ends with "+j.c.Exit.String())
		problems = append(problems, exitProblems(j)...)
	} else {
		if _, open := j.rec.openAtEnd(); open > 0 {
			problems = append(problems, fmt.Sprintf("the client kept %d connection(s) open until the case deadline", open))
		}
		if j.c.Exit != ExitAny {
			notes = append(notes, "exit status not graded: the client was not launched by the suite (--listen)")
		}
	}
	o := outcome{observed: notes}
	if len(problems) > 0 {
		o.failure = failure(j, expected, problems)
		o.expected, o.actual, o.transcript = expected, strings.Join(problems, "; "), j.rec.entries()
	}
	return o
}

// exitProblems judges how each run of the client ended.
func exitProblems(j *judge) []string {
	j.rec.mu.Lock()
	exits := append([]Exit(nil), j.rec.exits...)
	j.rec.mu.Unlock()
	var out []string
	for i, e := range exits {
		switch {
		case e.Killed:
			out = append(out, fmt.Sprintf("run %d hung: %s", i+1, e))
		case e.Crashed != "":
			out = append(out, fmt.Sprintf("run %d crashed: %s (%s)", i+1, e.Crashed, e))
		}
	}
	if len(exits) == 0 {
		return append(out, "the client never ran")
	}
	last := exits[len(exits)-1]
	if last.Killed || last.Crashed != "" {
		return out
	}
	switch {
	case j.c.Exit == ExitZero && last.Code != 0:
		out = append(out, fmt.Sprintf("the client failed an honest session: %s", last))
	case j.c.Exit == ExitError && last.Code == 0:
		out = append(out, fmt.Sprintf("the client reported success: %s", last))
	}
	return out
}

// failure is the server suite's failure anatomy: requirement, what the
// server did, expected outcomes, actual outcome and the transcript.
func failure(j *judge, expected, problems []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s: %s\n", j.c.ID, j.c.Level, j.c.Title)
	fmt.Fprintf(&b, "Requirement: %s\n", j.c.Requirement)
	fmt.Fprintf(&b, "Source:      %s\n", j.c.Source)
	fmt.Fprintf(&b, "Server:      %s\n", j.c.Does)
	fmt.Fprintf(&b, "Expected:    %s\n", strings.Join(expected, " | "))
	fmt.Fprintf(&b, "Actual:      %s\n", strings.Join(problems, "\n             "))
	fmt.Fprintf(&b, "Transcript:\n%s\n", j.rec.Transcript())
	return b.String()
}

// touch notes the first sign of the client: a probe or a connection.
func (cr *caseRun) touch() { cr.touchOnce.Do(func() { close(cr.touched) }) }

// quiesce waits up to d for the case's connections to end.
func (cr *caseRun) quiesce(d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if _, open := cr.conns(); open == 0 {
			return
		}
		select {
		case <-cr.idle:
		case <-deadline.C:
			cr.rec.Note("connections still open %s after the client ended", d)
			return
		}
	}
}

// openAtEnd reports the connections served and those the client left open.
func (r *Record) openAtEnd() (served, open int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns), r.leftOpen
}

package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mppws/conformance/suite/connect"
)

// ErrUsage marks a configuration or selection error (exit 2).
var ErrUsage = errors.New("invalid configuration")

// ErrSetup marks a target that cannot be reached or understood (exit 3).
var ErrSetup = errors.New("setup failed")

// Run is the state of one Run: the configuration, the targets and the
// suite's memory of every channel. Every case reaches it through its *C;
// nothing of a Run lives in package variables.
type Run struct {
	cfg     Config
	t       Timeouts
	targets []*Target
	dialect string
	wallet  *wallet
	dialer  *connect.Dialer
	// closing counts close handshakes still waiting on a target that did
	// not answer in time; Close waits for them.
	closing sync.WaitGroup

	mu       sync.Mutex
	setupErr error // set by a case that found the target unusable (exit 3)
	// slowest is the longest the target has taken to deliver a message it
	// owed: from the voucher that bought it, or from the message before.
	slowest time.Duration
}

// served records how long the target took to deliver a message it owed.
func (r *Run) served(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slowest = max(r.slowest, d)
}

// pace is the slowest the target has been to deliver a message it owed.
func (r *Run) pace() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.slowest
}

// due is when a frame the target owes since from is late: within the reply
// timeout plus paces times its pace, and never after stop (the bound of the
// whole stream).
func (r *Run) due(from time.Time, paces int, stop time.Time) time.Time {
	d := from.Add(r.t.Reply + time.Duration(paces)*r.pace())
	if stop.Before(d) {
		return stop
	}
	return d
}

// NoData is how long a case watches for data that an input must not buy:
// the quiet window, plus four times the target's pace in this run, at most
// half the reply timeout (all of it before the first measurement). Data
// bought by mistake comes as fast as data bought by right, so on a fast
// target the window is short.
func (c *C) NoData() time.Duration {
	grace := c.r.t.Reply / 2
	if pace := c.r.pace(); pace > 0 {
		grace = min(grace, 4*pace)
	}
	return c.r.t.Quiet + grace
}

// NewRun checks cfg and discovers its targets: what each sells and in
// which dialect. It returns errors wrapping ErrUsage or ErrSetup.
func NewRun(ctx context.Context, cfg Config) (*Run, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	d, err := connect.New(cfg.Connect)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	r := &Run{cfg: cfg, t: baseTimeouts.scale(cfg.TimeoutScale), wallet: newWallet(), dialer: d}
	for _, u := range cfg.Targets {
		tg, err := discover(ctx, d, u, cfg.Dialect, cfg.Channels, r.t.Connect)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("%w: %v", ErrSetup, connect.Explain(err))
		}
		if r.dialect != "" && r.dialect != tg.Dialect.Name() {
			d.Close()
			return nil, fmt.Errorf("%w: %s speaks dialect %s, the other targets %s: run them separately", ErrUsage, u, tg.Dialect.Name(), r.dialect)
		}
		r.targets = append(r.targets, tg)
		r.dialect = tg.Dialect.Name()
	}
	return r, nil
}

// Close releases the run's idle probe connections.
func (r *Run) Close() {
	r.closing.Wait()
	r.dialer.Close()
}

// Config is the run's configuration, with its defaults applied.
func (r *Run) Config() Config { return r.cfg }

// Dialect is the targets' dialect: "A" or "B".
func (r *Run) Dialect() string { return r.dialect }

// Targets are what the run learned of each target URL.
func (r *Run) Targets() []*Target { return r.targets }

// abort records a setup error found while cases run: the target cannot be
// tested as it is (for example its channel state went backwards). The run
// stops starting cases and exits 3.
func (r *Run) abort(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.setupErr == nil {
		r.setupErr = err
	}
}

func (r *Run) Aborted() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.setupErr
}

// Payable reports whether the suite can pay t: a charge with the test
// method, or a session with a matching fixture channel.
func Payable(t *Target) bool {
	return (t.Intent == "charge" && t.Method == "test") || (t.Intent == "session" && len(t.Channels) > 0)
}

// target picks the target that serves need, or says why none does.
func (r *Run) target(need Needs) (*Target, string) {
	var charge, session *Target
	for _, t := range r.targets {
		if t.Intent == "charge" && t.Method == "test" && charge == nil {
			charge = t
		}
		if t.Intent == "session" && len(t.Channels) > 0 && session == nil {
			session = t
		}
	}
	switch need {
	case NeedsCharge:
		if charge == nil {
			return nil, "no target sells the charge intent with the test method (the suite cannot pay real charges); add a charge target URL"
		}
		return charge, ""
	case NeedsSession:
		if session == nil {
			for _, t := range r.targets {
				if t.Intent == "session" {
					return nil, t.NoChannel
				}
			}
			return nil, "no target sells a tempo session; add a session target URL"
		}
		return session, ""
	case NeedsShortTTL:
		for _, t := range []*Target{charge, session} {
			if t != nil && t.TTL <= r.t.Expiry {
				return t, ""
			}
		}
		for _, t := range r.targets {
			if Payable(t) && t.TTL <= r.t.Expiry {
				return t, ""
			}
		}
		return nil, fmt.Sprintf("the targets' challenges live longer than %s; add a target URL whose challenges expire sooner (the reference: serve --challenge-ttl 3s)", r.t.Expiry)
	case NeedsSecret:
		if r.cfg.Secret == "" {
			return nil, "the target's HMAC secret is unknown; pass --secret"
		}
	}
	if charge != nil {
		return charge, ""
	}
	if session != nil {
		return session, ""
	}
	return nil, "no target the suite can pay (a charge with the test method, or a session matching a fixture channel)"
}

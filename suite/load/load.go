// Package load drives many paid sessions at once against a target and
// checks, live, per channel and across all connections, that it never
// delivers more than the vouchers pay for, that its need-voucher and
// receipt numbers agree with the vouchers and what arrived, and that no
// stream stalls after a voucher. It measures throughput and the pause
// from a need-voucher to the resumed stream.
//
// Sessions share the fixture channels that can pay the target's offer.
// Vouchers are cumulative per channel, so each channel has one signer
// whose amounts strictly increase over all its sessions, and one voucher
// in flight at a time (see account). The target must start fresh: load
// signs from zero on every channel.
package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/suite/connect"
)

// Config configures a load run.
type Config struct {
	// URL is the target's ws:// or wss:// URL.
	URL string
	// Dialect is the target's framing; nil detects it.
	Dialect frame.Dialect
	// Sessions is how many paid sessions run at once.
	Sessions int
	// Duration is how long each session pays, from its start; Messages
	// how many messages it takes. Zero is no limit; one must be set.
	Duration time.Duration
	Messages int
	// Rate is how many sessions start per second; 0 starts them all at
	// once.
	Rate float64
	// VoucherUnits is how many ticks each voucher adds. Default 100.
	VoucherUnits int
	// StallBound is how long a stream may stay silent after a voucher.
	// Default 5s.
	StallBound time.Duration
	// Timeout bounds the whole run. Default: the ramp and Duration plus
	// 30s, or 10 minutes with Messages alone.
	Timeout time.Duration
	// Channels are the fixture channels to pay from. Default
	// fixtures.Default().
	Channels []fixtures.Channel
	// Dialer reaches the target (TLS, headers, subprotocols, origin).
	// Default: plain settings.
	Dialer *connect.Dialer
}

// SetupError is a target that could not be reached or used: nothing that
// counts was measured.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return "setup failed: " + e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

func (c *Config) validate() error {
	var errs []error
	if !strings.HasPrefix(c.URL, "ws://") && !strings.HasPrefix(c.URL, "wss://") {
		errs = append(errs, fmt.Errorf("url %q: want ws:// or wss://", c.URL))
	}
	if c.Sessions < 1 {
		errs = append(errs, fmt.Errorf("sessions %d: want at least 1", c.Sessions))
	}
	if c.Duration < 0 || c.Messages < 0 || c.Duration == 0 && c.Messages == 0 {
		errs = append(errs, errors.New("give each session a positive duration, a positive message count, or both"))
	}
	if c.Rate < 0 || c.VoucherUnits < 0 || c.StallBound < 0 || c.Timeout < 0 {
		errs = append(errs, errors.New("rate, voucher units, stall bound and timeout must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() error {
	if c.VoucherUnits == 0 {
		c.VoucherUnits = 100
	}
	if c.StallBound == 0 {
		c.StallBound = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
		if c.Duration > 0 {
			c.Timeout = c.ramp() + c.Duration + 30*time.Second
		}
	}
	if c.Channels == nil {
		c.Channels = fixtures.Default()
	}
	if c.Dialer == nil {
		d, err := connect.New(connect.Options{})
		if err != nil {
			return err
		}
		c.Dialer = d
	}
	return nil
}

// ramp is how long starting every session takes.
func (c *Config) ramp() time.Duration {
	if c.Rate == 0 {
		return 0
	}
	return time.Duration(float64(c.Sessions-1) / c.Rate * float64(time.Second))
}

// runner is one load run.
type runner struct {
	cfg     Config
	dialect frame.Dialect
	b       bool // dialect B
	// messagePrefix starts the compact message frame of the dialect.
	messagePrefix string
	probeURL      string
	http          *http.Client
	rec           *recorder
	resume        histogram
	began         time.Time

	messages, needVouchers, connections atomic.Uint64
	open, peak                          atomic.Int64
}

func (r *runner) opened() {
	r.connections.Add(1)
	n := r.open.Add(1)
	for p := r.peak.Load(); n > p && !r.peak.CompareAndSwap(p, n); p = r.peak.Load() {
	}
}

func (r *runner) closed() { r.open.Add(-1) }

// Run drives the sessions and returns what they measured. The error is a
// bad Config, or a *SetupError when the target could not be reached or
// used; violations are in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer cfg.Dialer.Close()
	r := &runner{cfg: cfg, rec: &recorder{}, http: cfg.Dialer.HTTPClient()}
	var err error
	if r.probeURL, err = connect.ProbeURL(cfg.URL); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	o, err := r.discover(ctx)
	if err != nil {
		return nil, &SetupError{err}
	}
	r.dialect, r.b = o.dialect, o.dialect.Name() == frame.B.Name()
	r.messagePrefix = fmt.Sprintf(`{%q:"message","data":"`, o.dialect.TagKey())
	accounts := make([]*account, len(o.channels))
	for i, ch := range o.channels {
		accounts[i] = newAccount(ch, o.tick, cfg.VoucherUnits)
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r.began = time.Now()
	var wg sync.WaitGroup
	for i := range cfg.Sessions {
		if cfg.Rate > 0 && i > 0 {
			t := time.NewTimer(time.Until(r.began.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			break
		}
		a := accounts[i%len(accounts)]
		a.sessions++
		s := &session{r: r, id: i + 1, acct: a}
		if cfg.Duration > 0 {
			s.until = time.Now().Add(cfg.Duration)
		}
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
	elapsed := time.Since(r.began)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.rec.error("run timeout", fmt.Sprintf("sessions still running after %s", cfg.Timeout))
	}

	res := &Result{
		Target: cfg.URL, Dialect: r.dialect.Name(), Sessions: cfg.Sessions, Messages: cfg.Messages,
		Started: r.began, Elapsed: elapsed.Seconds(),
		Delivered: r.messages.Load(), Connections: r.connections.Load(), PeakConnections: r.peak.Load(),
		NeedVouchers: r.needVouchers.Load(),
		Resume:       r.resume.latency(),
	}
	if cfg.Duration > 0 {
		res.Duration = cfg.Duration.String()
	}
	res.Throughput = float64(res.Delivered) / elapsed.Seconds()
	for _, a := range accounts {
		c := a.result()
		res.Vouchers += c.Vouchers
		res.Channels = append(res.Channels, c)
	}
	r.rec.fill(res)
	res.Passed = len(res.ViolationCount) == 0
	if res.Delivered == 0 && res.Passed {
		return res, &SetupError{fmt.Errorf("no session got a paid stream: %s", res.firstFailure())}
	}
	return res, nil
}

// firstFailure names the most frequent error or limit, for a run where
// nothing got through.
func (r *Result) firstFailure() string {
	kind, n, sample := "", uint64(0), ""
	for _, m := range []struct {
		counts  map[string]uint64
		samples map[string]string
	}{{r.Errors, r.ErrorSamples}, {r.Limits, r.LimitSamples}} {
		for k, c := range m.counts {
			if c > n || c == n && k < kind {
				kind, n, sample = k, c, m.samples[k]
			}
		}
	}
	if kind == "" {
		return "no error either: the target answered no voucher within the run"
	}
	return fmt.Sprintf("%s ×%d: %s", kind, n, sample)
}

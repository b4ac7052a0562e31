package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/suite/connect"
	"github.com/mppws/conformance/suite/load"
	"github.com/mppws/conformance/suite/report"
)

const loadUsage = `conformance load [flags] <ws-url>

Runs --sessions paid sessions at once against the target, spread over the
fixture channels that can pay its offer, each for --duration or --messages,
and checks live, per channel and across all connections, that no message
arrives beyond the vouchers, that need-voucher and receipt numbers agree,
and that no stream stalls after a voucher. Prints the result as JSON on
stdout. The target must start fresh: load signs vouchers from zero.

Exit codes: 0 no violation, 1 an invariant was violated, 2 usage error,
3 target unreachable or setup failed.`

func loadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("load", stderr, loadUsage)
	var co connect.Options
	co.Register(fs)
	sessions := fs.Int("sessions", 100, "paid sessions at once")
	duration := fs.Duration("duration", 10*time.Second, "how long each session pays (0: until --messages)")
	messages := fs.Int("messages", 0, "messages each session takes (0: until --duration)")
	rate := fs.Float64("rate", 200, "sessions started per second (0: all at once)")
	units := fs.Int("voucher-units", 100, "ticks each voucher adds")
	stall := fs.Duration("stall-bound", 5*time.Second, "longest a stream may stay silent after a voucher")
	timeout := fs.Duration("timeout", 0, "limit for the whole run (default: the ramp and --duration plus 30s, or 10m)")
	dialectName := fs.String("dialect", "auto", "target dialect: auto (detect), a (mpp-rs) or b (mppx)")
	channels := fs.String("channels", "", "fixture channels JSON file to pay from (default: the embedded fixtures/channels.json)")
	reportDir := fs.String("report-dir", "", "also write report.html (with the load section), conformance.json, junit.xml and summary.txt here")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("load takes exactly one ws:// or wss:// URL")
	}
	cfg := load.Config{
		URL: fs.Arg(0), Sessions: *sessions, Duration: *duration, Messages: *messages, Rate: *rate,
		VoucherUnits: *units, StallBound: *stall, Timeout: *timeout,
	}
	if err := checkURL(cfg.URL); err != nil {
		return err
	}
	if *dialectName != "auto" {
		d, err := parseDialect(*dialectName)
		if err != nil {
			return err
		}
		cfg.Dialect = d
	}
	if *channels != "" {
		chs, err := fixtures.Load(*channels)
		if err != nil {
			return usageError{err}
		}
		cfg.Channels = chs
	}
	d, err := connect.New(co)
	if err != nil {
		return usageError{err}
	}
	cfg.Dialer = d

	res, err := load.Run(ctx, cfg)
	var se *load.SetupError
	switch {
	case errors.As(err, &se):
		return setupError{err}
	case err != nil: // the settings
		return usageError{err}
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("load result: %w", err)
	}
	fmt.Fprintln(stdout, string(b))
	fmt.Fprintln(stderr, "load:", res.Summary())
	if *reportDir != "" {
		// A load run has no cases: the summary is its load section.
		s := report.Summary{Kind: "load", Target: cfg.URL, Dialect: res.Dialect, Load: res.Report(), Passed: res.Passed}
		if err := os.MkdirAll(*reportDir, 0o755); err != nil {
			return usageError{fmt.Errorf("report dir: %w", err)}
		}
		if err := s.WriteFiles(*reportDir); err != nil {
			return fmt.Errorf("writing reports: %w", err)
		}
	}
	if res.Passed {
		return nil
	}
	v := res.Violations[0]
	return failedError{msg: fmt.Sprintf("load: invariant violated: %s on channel %s, session %d, connection %d: %s\ntranscript:\n  %s",
		v.Kind, v.Channel, v.Session, v.Connection, v.Detail, strings.Join(v.Transcript, "\n  "))}
}

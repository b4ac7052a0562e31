package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/suite"
	"github.com/mppws/conformance/suite/connect"
)

const suiteUsage = `conformance [flags] [target-url ...] [ID or area ...]

Runs the MPP WebSocket conformance suite against the targets (ws:// or
wss:// URLs), or against the embedded reference implementation when no URL
is given. Select cases by ID (WS-REPLAY-003) or area (wire, replay, voucher,
robust); the default is every case.

Exit codes: 0 conformant, 1 a counted case failed, 2 usage or configuration
error, 3 target unreachable or setup failed.

Ginkgo's own flags stay available with the ginkgo. prefix (-ginkgo.v).`

// runSuite runs the conformance suite.
func runSuite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Ginkgo binds its flags to flag.CommandLine; sharing their values keeps
	// -ginkgo.v and friends working on this command line.
	flag.CommandLine.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "ginkgo.") {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n\nflags:\n", suiteUsage)
		fs.VisitAll(func(f *flag.Flag) {
			if strings.HasPrefix(f.Name, "ginkgo.") {
				return
			}
			fmt.Fprintf(stderr, "  -%s\n    \t%s", f.Name, f.Usage)
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(stderr, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(stderr)
		})
	}
	list := fs.Bool("list", false, "print the case catalogue (ID, level, dialects, area, title) and exit")
	reportDir := fs.String("report-dir", "", "write report.html, conformance.json, junit.xml, summary.txt and ginkgo.json here, even when the run fails")
	expectFail := fs.String("expect-fail", "", "file of case IDs expected to fail (one per line, # comments); a listed case that passes fails the run")
	strict := fs.Bool("strict", false, "count SHOULD cases: their failures fail the run")
	scale := fs.Float64("timeout-scale", 1, "multiply every timeout, for slow targets")
	var co connect.Options
	co.Register(fs)
	parallel := fs.Int("parallel", 8, "cases that may run at once, each on its own connections and fixture channels (1: one at a time)")
	secret := fs.String("secret", "", "the target's challenge HMAC secret, to check challenge ids (WS-WIRE-005)")
	channels := fs.String("channels", "", "fixture channels JSON file the suite pays from (default: the embedded fixtures/channels.json)")
	dialect := fs.String("dialect", "auto", "target dialect: auto (detect), a (mpp-rs) or b (mppx); with no target, b runs the embedded reference in dialect B")
	mutant := fs.String("mutant", "", "with no target: run the embedded reference with this known defect, to watch the suite fail ("+faultNames()+")")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *parallel < 1 {
		return usagef("--parallel %d: want at least 1", *parallel)
	}
	if *list {
		printCatalogue(stdout)
		return nil
	}
	var targets, sel []string
	for _, a := range fs.Args() {
		if strings.Contains(a, "://") {
			if err := checkURL(a); err != nil {
				return err
			}
			targets = append(targets, a)
		} else {
			sel = append(sel, a)
		}
	}
	cfg := suite.Config{
		Targets: targets, Dialect: *dialect, Secret: *secret, TimeoutScale: *scale,
		Strict: *strict, Select: sel, ReportDir: *reportDir, Out: stdout, Parallel: *parallel, Progress: stderr, Connect: co,
		TargetLabel: strings.Join(targets, " "), NoColor: !isTerminal(os.Stdout),
	}
	if *channels != "" {
		chs, err := fixtures.Load(*channels)
		if err != nil {
			return usageError{err}
		}
		cfg.Channels = chs
	}
	if *expectFail != "" {
		m, err := suite.ReadExpectFail(*expectFail)
		if err != nil {
			return usageError{err}
		}
		cfg.ExpectFail = m
	}
	if *mutant != "" && len(targets) > 0 {
		return usagef("--mutant applies to the embedded reference only; drop the target URL")
	}
	if len(targets) == 0 {
		fault := server.Fault(*mutant)
		if fault != server.FaultNone && !fault.Valid() {
			return usagef("--mutant %q: unknown; known: %s", *mutant, faultNames())
		}
		ref, err := suite.StartReference(suite.ReferenceOptions{Fault: fault, Channels: cfg.Channels, Dialect: strings.TrimPrefix(*dialect, "auto")})
		if err != nil {
			return setupError{err}
		}
		defer ref.Close()
		cfg.Targets, cfg.Secret = ref.URLs, ref.Secret
		cfg.TargetLabel = "embedded reference"
		if fault != server.FaultNone {
			cfg.TargetLabel += " with mutant " + string(fault)
		}
	}
	s, err := suite.Run(ctx, cfg, nil)
	switch {
	case errors.Is(err, suite.ErrUsage):
		return usageError{err}
	case errors.Is(err, suite.ErrSetup):
		return setupError{err}
	case err != nil:
		return err
	case !s.Passed:
		return failedError{}
	}
	return nil
}

// isTerminal reports whether f is a character device, where colours help.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func faultNames() string {
	var out []string
	for _, f := range server.Faults {
		out = append(out, string(f))
	}
	return strings.Join(out, ", ")
}

func printCatalogue(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLEVEL\tDIALECTS\tAREA\tTITLE")
	for _, m := range suite.Catalogue() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.ID, m.Level, strings.Join(m.Dialects, ","), m.Area, m.Title)
	}
	tw.Flush()
}

// checkURL accepts ws:// and wss:// URLs with a host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return usagef("target %q: %v", s, err)
	}
	if (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return usagef("target %q: want a ws:// or wss:// URL with a host", s)
	}
	return nil
}

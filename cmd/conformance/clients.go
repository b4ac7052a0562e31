package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/suite/clients"
)

const clientsUsage = `conformance clients [flags] [ID or area ...]

Grades an MPP WebSocket client, case by case: for each case a scripted
server plays one session (honest, cheating or hostile) on a URL of its own.

  --exec 'CMD ... {url} ...'  launch the client once per case; {url}, {case},
                              {dialect}, {timeout} (seconds) and {state} (a
                              file that lives as long as the case) are
                              substituted; the wire and the exit status are
                              graded
  --listen ADDR               print one URL per case and grade whatever
                              connects (the wire only)
  --tls-cert FILE --tls-key FILE
                              serve the case URLs over TLS: {url} is wss://
                              (host 127.0.0.1 with --exec), dialect B's
                              probe https://
  --subprotocol NAME          a WebSocket subprotocol to accept (repeatable,
                              in order of preference): the scripted server
                              selects the first the client offers

Select cases by ID (WS-CLIENT-022) or area (wire, metering, cheat,
lifecycle, hostile); the default is every case.

Exit codes: 0 conformant, 1 a counted case failed, 2 usage or configuration
error, 3 the client command cannot start or the address cannot be bound.`

// clientsCmd runs the client conformance suite.
func clientsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("clients", stderr, clientsUsage)
	execCmd := fs.String("exec", "", "command that runs the client once against {url}")
	listen := fs.String("listen", "", "address to serve the case URLs on, for clients the suite cannot launch")
	dialect := fs.String("dialect", "a", "the client's dialect: a (mpp-rs) or b (mppx)")
	channels := fs.String("channels", "", "fixture channels JSON file: the channels the scripted server offers and the client holds (default: the embedded fixtures/channels.json); each case starts from fresh channel state")
	list := fs.Bool("list", false, "print the client case catalogue and exit")
	strict := fs.Bool("strict", false, "count SHOULD cases: their failures fail the run")
	scale := fs.Float64("timeout-scale", 1, "multiply every timeout, for slow clients")
	reportDir := fs.String("report-dir", "", "write conformance.json, summary.txt, report.html and junit.xml here, even when the run fails")
	expectFail := fs.String("expect-fail", "", "file of client case IDs expected to fail (one per line, # reason); a listed case that passes fails the run")
	parallel := fs.Int("parallel", 4, "cases run at once with --exec")
	maxPrepay := fs.Int("max-prepay", 100, "the prepay window: units a client may sign beyond those delivered and the next one")
	agent := fs.String("agent", "", "the client's name in reports")
	wait := fs.Duration("wait", 2*time.Minute, "--listen: how long each case waits for the client to arrive")
	tlsCert := fs.String("tls-cert", "", "serve the case URLs over TLS (wss://) with this PEM certificate (chain first); needs --tls-key")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	var subprotocols []string
	fs.Func("subprotocol", "WebSocket subprotocol to accept (repeatable, in order of preference): the scripted server selects the first the client offers", func(p string) error {
		subprotocols = append(subprotocols, p)
		return nil
	})
	if err := parse(fs, args); err != nil {
		return err
	}
	if *list {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tLEVEL\tDIALECTS\tAREA\tTITLE")
		for _, c := range clients.Catalogue() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Level, strings.Join(c.Dialects, ","), c.Area, c.Title)
		}
		return tw.Flush()
	}
	tlsCfg, err := tlsConfig(*tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	cfg := clients.Config{
		Exec: *execCmd, Listen: *listen, Dialect: *dialect, Select: fs.Args(), Strict: *strict,
		TimeoutScale: *scale, ReportDir: *reportDir, Parallel: *parallel, MaxPrepay: *maxPrepay,
		Agent: *agent, Wait: *wait, Out: stdout, TLS: tlsCfg, Subprotocols: subprotocols,
	}
	if *channels != "" {
		chs, err := fixtures.Load(*channels)
		if err != nil {
			return usageError{err}
		}
		cfg.Channels = chs
	}
	if *expectFail != "" {
		m, err := clients.ReadExpectFail(*expectFail)
		if err != nil {
			return usageError{err}
		}
		cfg.ExpectFail = m
	}
	s, err := clients.Run(ctx, cfg)
	switch {
	case errors.Is(err, clients.ErrUsage):
		return usageError{err}
	case errors.Is(err, clients.ErrSetup):
		return setupError{err}
	case err != nil:
		return err
	case !s.Passed:
		return failedError{}
	}
	return nil
}

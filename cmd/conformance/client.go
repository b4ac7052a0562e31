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
	refclient "github.com/mppws/conformance/reference/client"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/suite/connect"
)

func client(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("client", stderr, "conformance client [flags] <ws-url>")
	var co connect.Options
	co.Register(fs)
	channels := fs.String("channels", "", "fixture channels JSON file (default: the embedded fixtures/channels.json)")
	name := fs.String("channel", "", "pay from this fixture channel (default: the first that matches the challenge)")
	ledgerPath := fs.String("ledger", "", "file remembering what was signed per channel, read before and written after the run (default: none; vouchers start from zero)")
	units := fs.Int("voucher-units", 100, "units paid by each voucher")
	prepay := fs.Int("prepay", 0, "voucher steps to keep paid ahead of what has arrived, instead of waiting for needVoucher (0: pay when asked)")
	timeout := fs.Duration("timeout", 60*time.Second, "limit for the whole run")
	dialectName := fs.String("dialect", "a", "the server's dialect: a (mpp-rs, in-band challenge) or b (mppx, HTTP 402 probe and signed close)")
	messages := fs.Int("messages", 0, "dialect b: close the session after this many messages (0: consume the whole stream)")
	fault := fs.String("fault", "", "run the reference client with this known defect, to watch the client suite catch it ("+clientFaultNames()+")")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("client takes exactly one ws:// or wss:// URL")
	}
	url := fs.Arg(0)
	if err := checkURL(url); err != nil {
		return err
	}
	if *units <= 0 || *timeout <= 0 {
		return usagef("--voucher-units and --timeout must be positive")
	}
	dialect, err := parseDialect(*dialectName)
	if err != nil {
		return err
	}
	switch {
	case *messages < 0:
		return usagef("--messages %d: must not be negative", *messages)
	case *messages > 0 && dialect != frame.B:
		return usagef("--messages applies to --dialect b: dialect a has no close request")
	}
	if f := refclient.Fault(*fault); f != refclient.FaultNone && !f.Valid() {
		return usagef("--fault %q: unknown; known: %s", *fault, clientFaultNames())
	}
	d, err := connect.New(co)
	if err != nil {
		return usageError{err}
	}
	defer d.Close()
	cfg := refclient.Config{
		Channel: *name, VoucherUnits: *units, Prepay: *prepay, Timeout: *timeout, Ledger: refclient.NewLedger(),
		Dialect: dialect, Messages: *messages, Fault: refclient.Fault(*fault),
		Dial: d.DialOptions(), HTTP: d.HTTPClient(),
	}
	if *channels != "" {
		chs, err := fixtures.Load(*channels)
		if err != nil {
			return usageError{err}
		}
		cfg.Channels = chs
	}
	if *ledgerPath != "" {
		b, err := os.ReadFile(*ledgerPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return usageError{fmt.Errorf("ledger: %w", err)}
		default:
			if err := json.Unmarshal(b, cfg.Ledger); err != nil {
				return usageError{fmt.Errorf("%s: %w", *ledgerPath, err)}
			}
		}
	}
	res, err := refclient.Run(ctx, url, cfg)
	if *ledgerPath != "" {
		// Save even after a failure: what was signed stays signed.
		if b, merr := json.Marshal(cfg.Ledger); merr == nil {
			if werr := os.WriteFile(*ledgerPath, b, 0o600); werr != nil {
				fmt.Fprintln(stderr, "conformance: writing ledger:", werr)
			}
		}
	}
	if err != nil {
		var ce *refclient.Error
		if errors.As(err, &ce) && ce.Step == "connect" {
			return setupError{connect.Explain(err)}
		}
		return failedError{msg: "client: " + err.Error()}
	}
	// One line of JSON: the result, with the message count for the messages.
	summary := struct {
		refclient.Result
		Messages int `json:"messages"`
	}{res, len(res.Messages)}
	b, err := json.Marshal(summary)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(b))
	return nil
}

func clientFaultNames() string {
	var out []string
	for _, f := range refclient.Faults {
		out = append(out, string(f))
	}
	return strings.Join(out, ", ")
}

// parseDialect reads a --dialect value: a or b.
func parseDialect(s string) (frame.Dialect, error) {
	switch s {
	case "a", "A":
		return frame.A, nil
	case "b", "B":
		return frame.B, nil
	}
	return nil, usagef("--dialect %q: want a or b", s)
}

// Command conformance runs the MPP WebSocket conformance suite, and serves
// and drives the reference implementation.
//
//	conformance [flags] [target-url] [ID or area ...]   run the suite
//	conformance serve [flags]                            start the reference server
//	conformance client [flags] <url>                     run the reference client once
//	conformance load [flags] <url>                       drive many paid sessions at once
//	conformance clients [flags] [ID or area ...]         grade a client (--exec or --listen)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, shared by every subcommand.
const (
	exitOK     = 0
	exitFailed = 1 // a counted case failed, or the client saw a deviation
	exitUsage  = 2 // bad flags, arguments or configuration
	exitSetup  = 3 // target unreachable or setup failed
)

// usageError marks errors that are the caller's: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// setupError marks a target that could not be reached or prepared: exit 3.
type setupError struct{ err error }

func (e setupError) Error() string { return e.err.Error() }
func (e setupError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "client":
		err = client(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "load":
		err = loadCmd(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "clients":
		err = clientsCmd(ctx, args[1:], stdout, stderr)
	default:
		err = runSuite(ctx, args, stdout, stderr)
	}
	var ue usageError
	var se setupError
	var fe failedError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "conformance:", err)
		return exitUsage
	case errors.As(err, &se):
		fmt.Fprintln(stderr, "conformance:", err)
		return exitSetup
	case errors.As(err, &fe):
		if fe.msg != "" {
			fmt.Fprintln(stderr, "conformance:", fe.msg)
		}
		return exitFailed
	default:
		fmt.Fprintln(stderr, "conformance:", err)
		return exitFailed
	}
}

// failedError is a run that worked but found non-conformance: exit 1.
type failedError struct{ msg string }

func (e failedError) Error() string { return e.msg }

// newFlags makes a flag set whose parse errors are usage errors.
func newFlags(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n\nflags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and turns a parse failure into a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

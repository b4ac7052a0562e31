package harness

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/suite/connect"
)

// Config is a run's configuration.
type Config struct {
	// Targets are the ws:// URLs under test. Cases pick the target that has
	// what they need (charge, session, short TTL); a case no target serves
	// is NOT APPLICABLE.
	Targets []string
	// Dialect is "auto" (detect: a challenge frame on connect means A, else
	// a 402 from an HTTP probe of the URL means B), "a" or "b".
	Dialect string
	// Channels are the fixture channels the suite pays from.
	Channels []fixtures.Channel
	// Secret is the target's challenge-id HMAC secret, if known.
	Secret string
	// TimeoutScale multiplies every named timeout, for slow targets.
	TimeoutScale float64
	// Strict counts SHOULD cases.
	Strict bool
	// Select lists case IDs and areas to run; empty runs everything.
	Select []string
	// ExpectFail maps case IDs to the reason they are expected to fail.
	ExpectFail map[string]string
	// ReportDir receives JUnit XML, Ginkgo JSON, conformance.json and
	// summary.txt; empty writes none.
	ReportDir string
	// Out receives the summary. Ginkgo's own progress goes to stdout.
	Out io.Writer
	// Progress, if set, receives case n/N, elapsed time and failures so
	// far: one redrawn line on a terminal, a line per case otherwise.
	Progress io.Writer
	// TargetLabel describes the target in reports ("embedded reference").
	TargetLabel string
	// NoColor turns off Ginkgo's colours, for output that is not a terminal.
	NoColor bool
	// Connect are the connection options for targets behind TLS, gateways
	// that want headers, subprotocols or an Origin.
	Connect connect.Options
	// Parallel is how many cases may run at once, each on its own
	// connections and fixture channels. Default 8; 1 runs one at a time.
	Parallel int
}

// Timeouts are the named waits of the suite, before scaling.
type Timeouts struct {
	// Connect bounds a dial and the first frame.
	Connect time.Duration
	// Reply bounds the wait for a reaction to one frame.
	Reply time.Duration
	// Quiet is how long "nothing happens" must hold.
	Quiet time.Duration
	// Stream bounds a whole paid stream.
	Stream time.Duration
	// Expiry is the longest challenge lifetime the suite will wait out for
	// the expired-challenge case.
	Expiry time.Duration
	// Withhold is how long a client keeps a voucher back while the stream
	// must stay silent: long enough for a timer-driven leak to show.
	Withhold time.Duration
	// Case bounds one case.
	Case time.Duration
}

var baseTimeouts = Timeouts{
	Connect:  5 * time.Second,
	Reply:    2 * time.Second,
	Quiet:    300 * time.Millisecond,
	Stream:   10 * time.Second,
	Expiry:   10 * time.Second,
	Withhold: 3 * time.Second,
	Case:     60 * time.Second,
}

func (t Timeouts) scale(f float64) Timeouts {
	s := func(d time.Duration) time.Duration { return time.Duration(math.Round(float64(d) * f)) }
	return Timeouts{s(t.Connect), s(t.Reply), s(t.Quiet), s(t.Stream), s(t.Expiry), s(t.Withhold), s(t.Case)}
}

func (c *Config) validate() error {
	if len(c.Targets) == 0 {
		return fmt.Errorf("no target URL")
	}
	if c.Dialect == "" {
		c.Dialect = "auto"
	}
	if c.Dialect != "auto" && c.Dialect != "a" && c.Dialect != "b" {
		return fmt.Errorf("dialect %q: want auto, a or b", c.Dialect)
	}
	if c.TimeoutScale == 0 {
		c.TimeoutScale = 1
	}
	if c.TimeoutScale < 0.1 || c.TimeoutScale > 100 {
		return fmt.Errorf("timeout scale %g: want between 0.1 and 100", c.TimeoutScale)
	}
	if c.Channels == nil {
		c.Channels = fixtures.Default()
	}
	if c.Parallel == 0 {
		c.Parallel = 8
	}
	if c.Parallel < 1 || c.Parallel > 64 {
		return fmt.Errorf("parallel %d: want between 1 and 64", c.Parallel)
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return nil
}

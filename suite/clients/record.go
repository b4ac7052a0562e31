package clients

import (
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// Record is everything a case saw of the client: a timed transcript of the
// wire (frames both ways, HTTP probes) interleaved with the client process's
// output, every credential it sent with what verifying it found, the
// server's marks (when it cheated), and how the process ended.
type Record struct {
	start time.Time

	mu     sync.Mutex
	lines  []Entry
	creds  []*Cred
	marks  map[string]time.Duration
	probes []Probe
	notes  []string        // observations for the report
	broken []string        // frames the client sent that its dialect does not define
	conns  []time.Duration // when each connection opened
	frames []clientFrame   // what the client sent, in order
	exits  []Exit          // how each launched run ended (none in --listen)
	// leftOpen counts connections still open at the case deadline
	// (--listen, where no process exit ends them).
	leftOpen int
}

// clientFrame is one frame the client sent: its connection and its kind
// ("credential", "close-request", "message", "binary", "undecodable").
type clientFrame struct {
	conn int
	at   time.Duration
	kind string
}

func newRecord() *Record { return &Record{start: time.Now(), marks: map[string]time.Duration{}} }

func (r *Record) since() time.Duration { return time.Since(r.start) }

// line adds one transcript line: who (a connection name, "http", "stdout",
// "stderr" or "suite"), a direction and the text.
func (r *Record) line(who string, dir direction, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, entry(r.since(), who, dir, clipFrame(text)))
}

// entries returns the transcript.
func (r *Record) entries() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Entry(nil), r.lines...)
}

// Note adds a suite remark to the transcript.
func (r *Record) Note(format string, args ...any) {
	r.line("suite", note, fmt.Sprintf(format, args...))
}

// Observe records a fact for the report, and in the transcript.
func (r *Record) Observe(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.notes = append(r.notes, s)
	r.mu.Unlock()
	r.Note("observed: %s", s)
}

// Mark records the moment the scripted server did something a check
// refers to ("cheat": what came after it must not be signed).
func (r *Record) Mark(name string) {
	r.mu.Lock()
	r.marks[name] = r.since()
	r.mu.Unlock()
	r.Note("mark %s", name)
}

func (r *Record) mark(name string) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.marks[name]
	return at, ok
}

// Transcript renders the record, one line per event.
func (r *Record) Transcript() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lines) == 0 {
		return "(nothing happened)"
	}
	const max = 400
	var out []string
	for i, e := range r.lines {
		if len(r.lines) > max && i == max/2 {
			out = append(out, fmt.Sprintf("          … %d lines left out …", len(r.lines)-max))
		}
		if len(r.lines) <= max || i < max/2 || i >= len(r.lines)-max/2 {
			out = append(out, e.String(600))
		}
	}
	return strings.Join(out, "\n")
}

// Creds returns the credentials in arrival order.
func (r *Record) Creds() []*Cred {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Cred(nil), r.creds...)
}

// Probes returns the dialect B HTTP probes in arrival order.
func (r *Record) Probes() []Probe {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Probe(nil), r.probes...)
}

func (r *Record) addCred(c *Cred) {
	r.mu.Lock()
	r.creds = append(r.creds, c)
	r.mu.Unlock()
}

func (r *Record) addFrame(f clientFrame) {
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

func (r *Record) addBroken(s string) {
	r.mu.Lock()
	r.broken = append(r.broken, s)
	r.mu.Unlock()
}

func (r *Record) observed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.notes...)
}

// Exit is how a launched client process ended.
type Exit struct {
	Code     int    // exit status; -1 when killed by a signal
	Signal   string // the signal that ended it, if any
	Killed   bool   // the suite killed it at the case deadline: it hung
	Crashed  string // why the suite calls it a crash, if it does
	Duration time.Duration
}

func (e Exit) String() string {
	switch {
	case e.Killed:
		return fmt.Sprintf("still running after %s: killed", e.Duration.Round(time.Millisecond))
	case e.Signal != "":
		return fmt.Sprintf("ended by signal %s after %s", e.Signal, e.Duration.Round(time.Millisecond))
	default:
		return fmt.Sprintf("exit %d after %s", e.Code, e.Duration.Round(time.Millisecond))
	}
}

// Probe is one HTTP GET of a dialect B case's URL.
type Probe struct {
	At      time.Duration
	Session string // its Payment-Session hint
	Issued  string // the id of the challenge it was answered with
}

// Cred is one credential the client sent, with what verifying it found.
// The scripted server verifies every credential for real and records the
// findings; which findings fail a case is the case's choice.
type Cred struct {
	Conn   int // 1-based connection number within the case
	At     time.Duration
	Seq    int // index among the case's credentials
	Raw    string
	Parsed mpp.Credential
	// ParseErr: the credential is not a Payment credential at all.
	ParseErr error
	// Issued is the challenge the server issued under the echoed id (nil:
	// no such challenge); EchoErr says how the echo differs from it, or
	// that the id's HMAC does not verify.
	Issued  *mpp.Challenge
	EchoErr error
	// Expired: the echoed challenge had expired when the credential came.
	Expired bool
	// Newest: the echo is the newest challenge this connection was offered
	// (dialect A's challenge frames; dialect B's newest probe).
	Newest bool
	// Payload is the session payload; PayloadErr says why it is not one.
	Payload    tempo.VoucherPayload
	PayloadErr error
	// Channel is the fixture channel the payload names (nil: none known).
	Channel *fixtures.Channel
	Amount  *big.Int // the payload's cumulativeAmount, when it parses
	// SigErr: the signature is not the channel signer's over (channelId,
	// amount) in the channel's EIP-712 domain (checked on its low-s form).
	SigErr error
	HighS  bool // s is in the upper half: a malleable encoding
	// DescErr: a v2 payload without the channel's descriptor.
	DescErr error
	// SourceErr: the source is not the payer's (or signer's) did:pkh.
	SourceErr error
	// Delivered is how many units of the channel the server had delivered
	// in this case when the credential came; Signed the highest voucher
	// amount the client had sent on the channel before it.
	Delivered uint64
	Signed    *big.Int
	// Required is the requiredCumulative of the newest need-voucher on the
	// connection (nil: none asked yet).
	Required *big.Int
}

// IsVoucher reports whether c is a well-formed voucher action.
func (c *Cred) IsVoucher() bool {
	return c.ParseErr == nil && c.PayloadErr == nil && c.Payload.Action == "voucher" && c.Amount != nil
}

// IsClose reports whether c is a well-formed close action.
func (c *Cred) IsClose() bool {
	return c.ParseErr == nil && c.PayloadErr == nil && c.Payload.Action == "close" && c.Amount != nil
}

// Signs reports whether c carries a signed amount: a voucher or a close.
func (c *Cred) Signs() bool { return c.IsVoucher() || c.IsClose() }

func (c *Cred) String() string {
	switch {
	case c.ParseErr != nil:
		return fmt.Sprintf("credential #%d on c%d at %+.3fs (unparsable: %v)", c.Seq+1, c.Conn, c.At.Seconds(), c.ParseErr)
	case c.PayloadErr != nil:
		return fmt.Sprintf("credential #%d on c%d at %+.3fs (payload: %v)", c.Seq+1, c.Conn, c.At.Seconds(), c.PayloadErr)
	default:
		return fmt.Sprintf("%s of %s on c%d at %+.3fs", c.Payload.Action, c.Amount, c.Conn, c.At.Seconds())
	}
}

// findings summarizes what verifying c found, for the transcript.
func (c *Cred) findings() string {
	var bad []string
	for _, f := range []struct {
		what string
		err  error
	}{{"echo", c.EchoErr}, {"payload", c.PayloadErr}, {"signature", c.SigErr}, {"descriptor", c.DescErr}, {"source", c.SourceErr}} {
		if f.err != nil {
			bad = append(bad, f.what+": "+f.err.Error())
		}
	}
	if c.HighS {
		bad = append(bad, "high-s signature")
	}
	if c.Expired {
		bad = append(bad, "echoes an expired challenge")
	}
	s := c.String()
	if c.Channel != nil {
		s += " (channel " + c.Channel.Name + ")"
	}
	if c.ParseErr != nil {
		return s
	}
	if len(bad) == 0 {
		return s + ": echo, signature, descriptor and source all check"
	}
	return s + ": " + strings.Join(bad, "; ")
}

// clipFrame keeps transcripts readable: long frames show head and size.
func clipFrame(s string) string {
	const max = 600
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:max], len(s))
}

package harness

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/onsi/gomega"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/suite/peer"
)

// Case is one conformance case: its catalogue entry and its body, declared
// together in its area's file.
type Case struct {
	Meta
	Run func(*C)
}

// C is one running case: its metadata, its run, its transcript, its
// connections and the channels it leased.
type C struct {
	Meta
	// Timeouts are the run's waits, scaled.
	Timeouts Timeouts
	r        *Run
	Ctx      context.Context
	T        *peer.Transcript
	soft     bool // INFO, or SHOULD without --strict: failures are recorded, not raised
	mu       sync.Mutex
	conns    []*Conn
	lease    *lease
	obs      []string
	g        gomega.Gomega // the case's own, failing the case
}

// Outcomes of a case body, carried by panics from wherever the body is.
type (
	caseFailure struct {
		msg      string
		expected []string
		actual   string
	}
	notApplicable struct{ reason string }
	setupFailure  struct{ err error }
)

// exec runs the body and turns its end into a result.
func (c *C) exec(body func(*C)) (res Result) {
	defer func() {
		switch f := recover().(type) {
		case nil:
			res = Result{Kind: Passed}
		case caseFailure:
			res = c.failure(f.msg)
			res.Expected, res.Actual = f.expected, f.actual
		case notApplicable:
			res = Result{Kind: NotApplicable, Reason: f.reason}
		case setupFailure:
			c.r.abort(f.err)
			res = Result{Kind: NotRun, Reason: f.err.Error()}
		default:
			res = c.failure(fmt.Sprintf("[%s] the case crashed: %v\n%s\nTranscript:\n%s", c.ID, f, debug.Stack(), c.T.String()))
		}
		c.mu.Lock()
		res.Observed = append(res.Observed, c.obs...)
		c.mu.Unlock()
	}()
	c.checkApplicable()
	body(c)
	return res
}

// failure classifies a failure by the case's level: it counts for MUST
// cases (and SHOULD ones with --strict), and is recorded otherwise.
func (c *C) failure(msg string) Result {
	switch {
	case c.Level == INFO:
		c.Observe("could not observe: %s", firstLine(msg))
		return Result{Kind: Passed}
	case c.soft:
		c.Observe("NON-STRICT: %s", firstLine(msg))
		return Result{Kind: NonStrict, Failure: msg}
	}
	return Result{Kind: Failed, Failure: msg}
}

// close ends the case's connections and returns its leased channels.
func (c *C) close() {
	c.mu.Lock()
	conns, l := c.conns, c.lease
	c.lease = nil
	c.mu.Unlock()
	// A close handshake, not a drop: the target learns at once that the
	// connection is over. It answers the close before its own reader has
	// ended the stream, so the channels wait a moment more before the next
	// case pays on them: a stream that outlived its case could otherwise
	// wake on that case's voucher and charge a unit to a dead socket.
	var wg sync.WaitGroup
	for _, cn := range conns {
		wg.Go(cn.CloseNormally)
	}
	wg.Wait()
	for _, cn := range conns {
		c.r.closing.Go(func() { <-cn.Closed() })
	}
	if l != nil {
		time.Sleep(c.r.t.Quiet / 3)
		l.release()
	}
}

// DialOptions are the run's options for dialing a target.
func (c *C) DialOptions() *websocket.DialOptions { return c.r.dialer.DialOptions() }

// HTTPClient is the run's client for HTTP requests to a target.
func (c *C) HTTPClient() *http.Client { return c.r.dialer.HTTPClient() }

// TLSConfig is the run's TLS configuration, for clients that speak
// WebSocket by hand.
func (c *C) TLSConfig() *tls.Config { return c.r.dialer.TLSConfig() }

// Targets are the run's targets.
func (c *C) Targets() []*Target { return c.r.targets }

// Secret is the targets' challenge HMAC secret, if known.
func (c *C) Secret() string { return c.r.cfg.Secret }

// FixtureChannels are the channels the suite pays from.
func (c *C) FixtureChannels() []fixtures.Channel { return c.r.cfg.Channels }

// Observe records what the target did, for the report.
func (c *C) Observe(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.obs = append(c.obs, fmt.Sprintf(format, args...))
}

// Failf fails the case with the suite's failure anatomy: requirement,
// expected outcomes, actual outcome and the transcript.
func (c *C) Failf(expected []string, actualFormat string, args ...any) {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s: %s\n", c.ID, c.Level, c.Title)
	fmt.Fprintf(&b, "Requirement: %s\n", c.Requirement)
	fmt.Fprintf(&b, "Source:      %s\n", c.Source)
	actual := fmt.Sprintf(actualFormat, args...)
	fmt.Fprintf(&b, "Expected:    %s\n", strings.Join(expected, " | "))
	fmt.Fprintf(&b, "Actual:      %s\n", actual)
	fmt.Fprintf(&b, "Transcript:\n%s\n", c.T.String())
	panic(caseFailure{b.String(), expected, actual})
}

// Check fails the case unless ok.
func (c *C) Check(ok bool, expected string, actualFormat string, args ...any) {
	if !ok {
		c.Failf([]string{expected}, actualFormat, args...)
	}
}

// NotApplicable ends the case with a reason the report shows.
func (c *C) NotApplicable(format string, args ...any) {
	panic(notApplicable{fmt.Sprintf(format, args...)})
}

// SetupFailed stops the run: the target cannot be tested as it is (exit 3).
func (c *C) SetupFailed(format string, args ...any) {
	panic(setupFailure{fmt.Errorf("%w: %s", ErrSetup, fmt.Sprintf(format, args...))})
}

// checkApplicable ends a case the targets cannot serve.
func (c *C) checkApplicable() {
	if !c.appliesTo(c.r.dialect) {
		c.NotApplicable("a dialect %s case; the target speaks dialect %s", strings.Join(c.Dialects, "/"), c.r.dialect)
	}
	if _, why := c.r.target(c.Needs); why != "" {
		c.NotApplicable("%s", why)
	}
}

// Target returns the target that serves what the case needs.
func (c *C) Target() *Target {
	return c.TargetFor(c.Needs)
}

// TargetFor returns a target serving need, or ends the case as not
// applicable.
func (c *C) TargetFor(need Needs) *Target {
	t, why := c.r.target(need)
	if t == nil {
		c.NotApplicable("%s", why)
	}
	return t
}

// Conn is one connection of a case, with the challenge it was issued.
type Conn struct {
	*peer.Peer
	C         *C
	Target    *Target
	Name      string
	Challenge mpp.Challenge // newest challenge seen on the connection
	// Seen counts frames by kind, for observations.
	Seen map[frame.Kind]int
}

// Dial connects to t and takes its challenge: dialect A's first frame, or
// for dialect B an HTTP probe of the URL before the upgrade.
func (c *C) Dial(t *Target) *Conn {
	c.mu.Lock()
	name, leased := fmt.Sprintf("c%d", len(c.conns)+1), c.lease != nil
	c.mu.Unlock()
	if !leased && c.leaseBeforeDial(t) {
		c.Channel(t, AnyChannel)
	}
	ctx, cancel := context.WithTimeout(c.Ctx, c.r.t.Connect)
	defer cancel()
	var probed mpp.Challenge
	if t.Dialect.probes() {
		probed = c.Probe(t, nil)
	}
	p, err := peer.Dial(ctx, t.URL, t.Dialect, c.T, name, c.r.dialer.DialOptions())
	if err != nil {
		c.Failf([]string{"a WebSocket upgrade"}, "%v", err)
	}
	// A close is answered at once by a target that reads; one that does
	// not costs the case no more than this.
	p.CloseWait = c.r.t.Reply / 2
	cn := &Conn{Peer: p, C: c, Target: t, Name: name, Seen: map[frame.Kind]int{}, Challenge: probed}
	c.mu.Lock()
	c.conns = append(c.conns, cn)
	c.mu.Unlock()
	if t.Dialect.probes() {
		return cn
	}
	// The target speaks first: its challenge is a reply to the upgrade,
	// due within the reply timeout, not the connect one.
	e, ok := cn.Next(c.r.t.Reply)
	if !ok {
		c.Failf([]string{"a challenge frame within " + c.r.t.Reply.String() + " of the upgrade"}, "nothing")
	}
	if !e.IsFrame(frame.KindChallenge) {
		c.Failf([]string{"a challenge frame first"}, "%s", e)
	}
	return cn
}

// leaseBeforeDial tells whether a case must hold its channel before it
// dials t: a dialect A challenge that may expire within a case is issued
// only once the case holds a channel, since waiting for one held by another
// case could outlast it and it cannot be renewed on its connection (see
// Echo). Otherwise a case dials first, so that a target that sends no
// challenge fails it without holding a channel other cases wait for.
func (c *C) leaseBeforeDial(t *Target) bool {
	return t.Intent == "session" && t.TTL <= c.r.t.Case && !t.Dialect.probes()
}

// Probe fetches a fresh challenge from a dialect B target's HTTP twin.
func (c *C) Probe(t *Target, header http.Header) mpp.Challenge {
	ctx, cancel := context.WithTimeout(c.Ctx, c.r.t.Connect)
	defer cancel()
	ch, resp, err := probe(ctx, c.r.dialer, t.URL, header)
	if resp != nil {
		c.T.Note("probe GET %s: HTTP %d, WWW-Authenticate: %s", HTTPURL(t.URL), resp.StatusCode, strings.Join(resp.Header.Values("WWW-Authenticate"), " | "))
	}
	if err != nil {
		c.Failf([]string{"HTTP 402 with a Payment challenge from the probe"}, "%v", err)
	}
	return ch
}

// Unconnected is a connection of the case without a socket: it builds
// credentials for a client that talks to the target by other means.
func (c *C) Unconnected(t *Target) *Conn { return &Conn{C: c, Target: t} }

// B reports whether the target speaks dialect B, for the cases only it has.
func (t *Target) B() bool { return t.Dialect == DialectB }

// TagKey is the dialect's discriminator field: "type" or "mpp".
func (cn *Conn) TagKey() string { return cn.Target.Dialect.TagKey() }

// CredentialTag is the tag, and the field, of the credential frame:
// "credential" in dialect A, "authorization" in dialect B.
func (cn *Conn) CredentialTag() string { return cn.Target.Dialect.credentialTag() }

// Frame writes a hand-made frame in the target's dialect: $tag becomes the
// discriminator key and $cred the credential frame's tag and field, so
// `{"$tag":"$cred","$cred":42}` is a mistyped credential in either dialect.
func (cn *Conn) Frame(template string) string {
	return strings.NewReplacer("$tag", cn.TagKey(), "$cred", cn.CredentialTag()).Replace(template)
}

// IsEnd reports whether e ends a paid stream: dialect A's receipt, dialect
// B's close-ready.
func (cn *Conn) IsEnd(e peer.Event) bool { return cn.Target.Dialect.isEnd(e) }

// End is the outcome "the paid stream ended" in the target's dialect.
func (cn *Conn) End() Outcome { return Outcome{"end of the stream", cn.IsEnd} }

// IsAck reports whether e acknowledges an authorization: dialect B's
// payment-receipt. Dialect A acknowledges nothing.
func (cn *Conn) IsAck(e peer.Event) bool { return cn.Target.Dialect.isAck(e) }

// Next returns the next event within d, noting challenges and counting
// frames. ok is false on timeout.
func (cn *Conn) Next(d time.Duration) (peer.Event, bool) {
	e, ok := cn.Peer.Next(d)
	if !ok {
		return e, false
	}
	if !e.Closed && e.DecodeErr == nil && !e.Binary {
		cn.Seen[e.Frame.Kind]++
		if e.Frame.Kind == frame.KindChallenge && e.Frame.ChallengeError == "" {
			var ch mpp.Challenge
			if json.Unmarshal(e.Frame.Challenge, &ch) == nil {
				cn.Challenge = ch
			}
		}
	}
	return e, true
}

// Echo is the challenge a valid credential on cn echoes: the newest one,
// or in a dialect that probes for challenges (B), a fresh one once the
// newest expires within the reply timeout, as mppx's client re-probes
// (ws-dialects.md §5 scenario 24).
func (cn *Conn) Echo() mpp.Challenge {
	if !cn.Target.Dialect.probes() {
		return cn.Challenge
	}
	if at, err := cn.Challenge.ExpiresAt(); err == nil && time.Until(at) < cn.C.r.t.Reply {
		cn.Challenge = cn.C.Probe(cn.Target, nil)
		cn.T.Note("the challenge expires at %s: renewed by a probe", at.Format(time.RFC3339Nano))
	}
	return cn.Challenge
}

// Authorization builds a credential string echoing echo. A payload for a
// fixture channel carries the payer as source, as both SDK clients send it
// and mppx requires it for vouchers (protocol.md §3.2).
func (cn *Conn) Authorization(echo mpp.Challenge, payload any) string {
	raw, err := json.Marshal(payload)
	if err != nil {
		cn.C.Failf([]string{"a payload the suite can encode"}, "%v", err)
	}
	auth, err := mpp.FormatAuthorization(mpp.Credential{Challenge: echo, Source: cn.C.SourceOf(raw), Payload: raw})
	if err != nil {
		cn.C.Failf([]string{"a credential the suite can encode"}, "%v", err)
	}
	return auth
}

// SourceOf is the payer DID of the fixture channel a payload names, or "".
func (c *C) SourceOf(payload json.RawMessage) string {
	var p struct{ ChannelID string }
	if json.Unmarshal(payload, &p) != nil || p.ChannelID == "" {
		return ""
	}
	for _, ch := range c.r.cfg.Channels {
		if strings.EqualFold(ch.ID.String(), p.ChannelID) {
			return fmt.Sprintf("did:pkh:eip155:%d:%s", ch.ChainID, ch.Payer)
		}
	}
	return ""
}

// SendCredential sends auth in the dialect's credential frame.
func (cn *Conn) SendCredential(auth string) {
	cn.Send(frame.Frame{Kind: frame.KindCredential, Credential: auth})
}

// Send writes a frame, failing the case if the connection is gone.
func (cn *Conn) Send(f frame.Frame) {
	if err := cn.Peer.Send(cn.C.Ctx, f); err != nil {
		cn.C.Failf([]string{"the connection open for the next frame"}, "%v", err)
	}
}

// SendText writes raw text, failing the case if the connection is gone.
func (cn *Conn) SendText(s string) {
	if err := cn.Peer.SendText(cn.C.Ctx, []byte(s)); err != nil {
		cn.C.Failf([]string{"the connection open for the next frame"}, "%v", err)
	}
}

// Outcome names a class of events a case accepts.
type Outcome struct {
	Name  string
	Match func(peer.Event) bool
}

var (
	ErrorFrame     = Outcome{"error frame", func(e peer.Event) bool { return e.IsFrame(frame.KindError) }}
	ChallengeError = Outcome{"challenge frame with error", func(e peer.Event) bool {
		return e.IsFrame(frame.KindChallenge) && e.Frame.ChallengeError != ""
	}}
	Closed       = Outcome{"close", func(e peer.Event) bool { return e.Closed }}
	DataFrame    = Outcome{"message frame", func(e peer.Event) bool { return e.IsFrame(frame.KindMessage) }}
	ReceiptFrame = Outcome{"receipt frame", func(e peer.Event) bool { return e.IsFrame(frame.KindReceipt) }}
	NeedVoucher  = Outcome{"needVoucher frame", func(e peer.Event) bool { return e.IsFrame(frame.KindNeedVoucher) }}
	CloseReady   = Outcome{"payment-close-ready frame", func(e peer.Event) bool { return e.IsFrame(frame.KindCloseReady) }}
	Undecodable  = Outcome{"frame the dialect does not define", func(e peer.Event) bool {
		return !e.Closed && (e.Binary || e.DecodeErr != nil)
	}}
	// Paid is what must never follow a rejected payment.
	Paid = []Outcome{DataFrame, ReceiptFrame}
	// Rejection is how dialect A reports a refused credential.
	Rejection = []Outcome{ErrorFrame, ChallengeError, Closed}
)

func names(os []Outcome) []string {
	var out []string
	for _, o := range os {
		out = append(out, o.Name)
	}
	return out
}

func matches(e peer.Event, os []Outcome) (Outcome, bool) {
	for _, o := range os {
		if o.Match(e) {
			return o, true
		}
	}
	return Outcome{}, false
}

// Expect waits up to d for an event matching one of want. Events matching
// forbid fail the case at once; others are skipped. It returns the event
// and the outcome it matched.
func (cn *Conn) Expect(d time.Duration, want, forbid []Outcome) (peer.Event, Outcome) {
	m := Receive(want...).Within(d).Forbidding(forbid...)
	cn.C.Expect(cn).To(m)
	return m.Event()
}

// Quiet asserts that nothing matching forbid arrives within d; it returns
// the events that did arrive.
func (cn *Conn) Quiet(d time.Duration, forbid []Outcome) []peer.Event {
	m := Deliver(forbid...)
	cn.C.Consistently(cn, d, 10*time.Millisecond).ShouldNot(m)
	return m.Seen()
}

// ExpectRejected expects a dialect-A rejection of a credential and no paid
// frame after it. It records which rejection it saw.
func (cn *Conn) ExpectRejected(what string) peer.Event {
	e, o := cn.Expect(cn.C.r.t.Reply, Rejection, Paid)
	if !e.Closed {
		cn.Quiet(cn.C.r.t.Quiet, Paid)
	}
	cn.C.Observe("%s: %s (%s)", what, o.Name, e)
	return e
}

// ExpectOpen asserts that the connection is still open: the target answers
// a ping.
func (cn *Conn) ExpectOpen(why string) {
	ctx, cancel := context.WithTimeout(cn.C.Ctx, cn.C.r.t.Reply)
	defer cancel()
	if err := cn.Ping(ctx); err != nil {
		cn.C.Failf([]string{"the connection open " + why}, "ping failed: %v", err)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

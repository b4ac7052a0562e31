package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

const (
	// backoff is the pause after a failed connection before the next.
	backoff = 250 * time.Millisecond
	// reprobeMargin: a dialect B challenge expiring within it is replaced
	// by a fresh probe before the next voucher, as the mppx client does.
	reprobeMargin = 5 * time.Second
	// transcriptLen is how many recent frames and events a session keeps
	// for a violation report.
	transcriptLen = 48
)

// session is one of the concurrent paid sessions: connections one after
// the other on its channel until its time or its messages run out.
type session struct {
	r     *runner
	id    int
	acct  *account
	until time.Time // zero: no time limit
	got   int       // messages delivered to this session
	conns int
	tr    transcript
	// challenge is dialect B's, from the probe: it is bound to the route,
	// not to a connection, so it serves until it nears expiry.
	challenge mpp.Challenge
}

func (s *session) done() bool {
	return (s.r.cfg.Messages > 0 && s.got >= s.r.cfg.Messages) ||
		(!s.until.IsZero() && !time.Now().Before(s.until))
}

func (s *session) run(ctx context.Context) {
	for !s.done() && ctx.Err() == nil {
		if s.connect(ctx) {
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// connect runs one connection to its end. It reports false after a
// failure, recorded, that calls for a pause before the next.
func (s *session) connect(ctx context.Context) bool {
	r := s.r
	s.conns++
	st := &stream{s: s, n: s.conns, frames: make(chan in, 16)}
	if r.b {
		if err := s.refresh(ctx); err != nil {
			return st.dialFailed(ctx, "probe", err)
		}
		st.challenge = s.challenge
		st.want = true // the client speaks first
	}
	ws, err := r.dial(ctx)
	if err != nil {
		return st.dialFailed(ctx, "connect", err)
	}
	st.ws = ws
	r.opened()
	defer r.closed()
	st.event("#", "connected")
	done := make(chan struct{})
	go st.read(ctx, done)
	ok, polite := st.loop(ctx)
	// Whatever this connection sent has landed or never will.
	s.acct.release(st.lastSent)
	close(done)
	if polite {
		ws.Close(websocket.StatusNormalClosure, "load: session done")
	} else {
		ws.CloseNow()
	}
	return ok
}

// refresh probes for a dialect B challenge when there is none yet or it
// nears expiry.
func (s *session) refresh(ctx context.Context) error {
	if exp, err := s.challenge.ExpiresAt(); err == nil && time.Until(exp) > reprobeMargin {
		return nil
	}
	c, err := s.r.probe(ctx)
	if err != nil {
		return err
	}
	s.challenge = c
	return nil
}

// in is one frame read from the target, or the error that ended reading.
type in struct {
	f   frame.Frame
	raw string // clipped, for the transcript
	at  time.Time
	err error
	bad bool // err is why the frame did not decode
}

// stream is one connection of a session. Its loop is the only goroutine
// that touches it; read feeds it the frames.
type stream struct {
	s         *session
	n         int // connection number within the session
	ws        *websocket.Conn
	frames    chan in
	challenge mpp.Challenge // the challenge vouchers echo

	want     bool     // a voucher is wanted: to open, or for a need-voucher
	required *big.Int // what the need-voucher asked (nil: to open)
	pending  *big.Int // dialect B: the voucher awaiting its payment-receipt
	lastSent *big.Int // the last voucher sent on this connection
	opening  *big.Int // the first
	started  bool     // the target accepted the opening voucher
	pausedAt time.Time
	got      int  // messages on this connection
	closing  bool // dialect B: close request sent

	stallFor *big.Int    // the voucher whose effect is awaited
	stall    *time.Timer // fires when it is overdue
	closeBy  *time.Timer // dialect B: fires when close-ready is overdue
}

func (st *stream) read(ctx context.Context, done <-chan struct{}) {
	for {
		_, b, err := st.ws.Read(ctx)
		x := in{at: time.Now(), err: err}
		if err == nil {
			x.raw = clip(b)
			if !plainMessage(b, st.s.r.messagePrefix) {
				x.f, x.err = st.s.r.dialect.Decode(b, frame.FromServer)
				x.bad = x.err != nil
			} else {
				x.f.Kind = frame.KindMessage
			}
		}
		select {
		case st.frames <- x:
		case <-done:
			return
		}
		if err != nil {
			return
		}
	}
}

// loop runs the connection until its stream ends (ok), the session's
// budget is spent (ok) or it fails (recorded). polite asks for a close
// handshake rather than dropping the socket.
func (st *stream) loop(ctx context.Context) (ok, polite bool) {
	s := st.s
	var deadline <-chan time.Time
	if !s.until.IsZero() {
		t := time.NewTimer(time.Until(s.until))
		defer t.Stop()
		deadline = t.C
	}
	st.stall = time.NewTimer(time.Hour)
	st.stall.Stop()
	defer st.stall.Stop()
	st.closeBy = time.NewTimer(time.Hour)
	st.closeBy.Stop()
	defer st.closeBy.Stop()
	for {
		var end bool
		// Frames first: one may end the want, or the stream.
		select {
		case x := <-st.frames:
			if end, ok, polite = st.handle(ctx, x); end {
				return ok, polite
			}
			continue
		default:
		}
		var slot chan<- struct{}
		if st.want && st.pending == nil {
			slot = s.acct.slot
		}
		select {
		case x := <-st.frames:
			end, ok, polite = st.handle(ctx, x)
		case slot <- struct{}{}:
			end, ok, polite = st.pay(ctx)
		case <-st.stall.C:
			st.violation(Stall, fmt.Sprintf("no message, need-voucher or end of stream within %s of the voucher for %s", s.r.cfg.StallBound, st.stallFor))
			return false, false
		case <-st.closeBy.C:
			return st.fail("no close-ready", fmt.Errorf("no payment-close-ready within %s of the close request", s.r.cfg.StallBound)), false
		case <-deadline:
			deadline = nil
			end, ok, polite = st.finish(ctx)
		case <-ctx.Done():
			return false, false
		}
		if end {
			return ok, polite
		}
	}
}

// handle takes one frame from the target.
func (st *stream) handle(ctx context.Context, x in) (end, ok, polite bool) {
	if x.err != nil && !x.bad {
		return true, st.closed(ctx, x.err), false
	}
	st.event("<", x.raw)
	if x.bad {
		return true, st.fail("bad frame", x.err), false
	}
	f := x.f
	switch f.Kind {
	case frame.KindChallenge:
		c, err := parseChallenge(f.Challenge)
		if err != nil {
			return true, st.fail("bad frame", err), false
		}
		st.challenge = c
		if st.opening == nil {
			st.want = true
		}
	case frame.KindMessage:
		return st.message(ctx, x.at)
	case frame.KindNeedVoucher:
		if err := st.needVoucher(f.NeedVoucher, x.at); err != nil {
			return true, st.fail("bad frame", err), false
		}
	case frame.KindReceipt:
		if st.s.r.b {
			if err := st.receiptB(f.Receipt); err != nil {
				return true, st.fail("unexpected frame", err), false
			}
			return false, false, false
		}
		if err := st.final(f.Receipt, "receipt"); err != nil {
			return true, st.fail("bad frame", err), false
		}
		return true, true, true
	case frame.KindCloseReady:
		if err := st.final(f.Receipt, "payment-close-ready"); err != nil {
			return true, st.fail("bad frame", err), false
		}
		// The channel is shared by other sessions: leave it open, as
		// alloy's disconnect() does, rather than settle it.
		return true, true, true
	case frame.KindError:
		return st.errorFrame(f)
	}
	return false, false, false
}

// pay signs and sends the next voucher; the caller has taken the
// channel's slot.
func (st *stream) pay(ctx context.Context) (end, ok, polite bool) {
	r, a := st.s.r, st.s.acct
	if r.b {
		if err := st.s.refresh(ctx); err != nil {
			a.abort()
			return true, st.dialFailed(ctx, "probe", err), false
		}
		st.challenge = st.s.challenge
	}
	amount, err := a.next(st.required)
	if err != nil {
		return true, st.fail("channel exhausted", err), false
	}
	st.lastSent = amount
	if st.opening == nil {
		st.opening = amount
	}
	b, err := st.credential(amount)
	if err != nil {
		return true, st.fail("sign", err), false
	}
	if err := st.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return st.writeFailed(ctx, err)
	}
	st.event(">", clip(b))
	st.want, st.required = false, nil
	st.stallFor = amount
	if r.b {
		st.pending = amount
	}
	st.stall.Reset(r.cfg.StallBound)
	return false, false, false
}

// credential is the frame carrying the signed voucher for amount.
func (st *stream) credential(amount *big.Int) ([]byte, error) {
	a := st.s.acct
	payload, err := a.payload(amount)
	if err != nil {
		return nil, err
	}
	auth, err := mpp.FormatAuthorization(mpp.Credential{Challenge: st.challenge, Source: a.source, Payload: payload})
	if err != nil {
		return nil, err
	}
	return st.s.r.dialect.Encode(frame.Frame{Kind: frame.KindCredential, Credential: auth})
}

// writeFailed: a write fails once the target has closed, and what it sent
// before says how the stream ended.
func (st *stream) writeFailed(ctx context.Context, err error) (end, ok, polite bool) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case x := <-st.frames:
			if end, ok, polite = st.handle(ctx, x); end {
				return true, ok, polite
			}
		case <-t.C:
			return true, st.closed(ctx, err), false
		}
	}
}

// progress records that the stream moved after the awaited voucher.
func (st *stream) progress() {
	st.stallFor = nil
	st.stall.Stop()
}

func (st *stream) message(ctx context.Context, at time.Time) (end, ok, polite bool) {
	s, r, a := st.s, st.s.r, st.s.acct
	st.started = true
	st.got++
	s.got++
	r.messages.Add(1)
	if n, paid, over := a.deliver(); over {
		st.violation(OverDelivery, fmt.Sprintf("message %d on channel %s (over all its connections) arrived, but the vouchers signed on it pay for %d", n, a.ch.Name, paid))
	}
	if st.got == 1 {
		// A stream starts only once its opening voucher is accepted.
		a.release(st.opening)
	}
	st.progress()
	if !st.pausedAt.IsZero() {
		r.resume.record(at.Sub(st.pausedAt))
		st.pausedAt = time.Time{}
	}
	// Funds from elsewhere ended the shortage; the next one will be asked.
	st.want, st.required = false, nil
	if r.cfg.Messages > 0 && s.got >= r.cfg.Messages {
		return st.finish(ctx)
	}
	return false, false, false
}

// needVoucher checks a need-voucher's numbers and answers it with a
// voucher, unless one is in flight.
func (st *stream) needVoucher(nv frame.NeedVoucher, at time.Time) error {
	r, a := st.s.r, st.s.acct
	r.needVouchers.Add(1)
	p := a.ch.Protocol
	required, err1 := tempo.ParseAmount(nv.RequiredCumulative, p)
	accepted, err2 := tempo.ParseAmount(nv.AcceptedCumulative, p)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("need-voucher amounts: %w", err)
	}
	var why []string
	if !strings.EqualFold(nv.ChannelID, a.ch.ID.String()) {
		why = append(why, fmt.Sprintf("need-voucher for channel %s on a connection paying %s", nv.ChannelID, a.ch.ID))
	}
	gap := new(big.Int).Sub(required, accepted)
	switch {
	case gap.Sign() <= 0:
		why = append(why, fmt.Sprintf("requiredCumulative %s does not exceed acceptedCumulative %s: the voucher asked for adds nothing", required, accepted))
	case gap.Cmp(a.tick) > 0:
		why = append(why, fmt.Sprintf("requiredCumulative %s is more than one tick (%s) above acceptedCumulative %s: the target has spent %s, beyond the accepted vouchers", required, a.tick, accepted, new(big.Int).Sub(required, a.tick)))
	}
	if err := a.observe(accepted); err != nil {
		why = append(why, err.Error())
	}
	if len(why) > 0 {
		st.violation(NeedVoucherNumbers, strings.Join(why, "; "))
	}
	if st.stallFor != nil && accepted.Cmp(st.stallFor) >= 0 {
		st.progress()
	}
	if st.pausedAt.IsZero() {
		st.pausedAt = at
	}
	// A need-voucher sent before the pending voucher landed is answered by
	// it; one that shows it accepted is a new shortage, to pay once its
	// receipt is in (it may overtake the receipt).
	if !st.closing && (st.pending == nil || accepted.Cmp(st.pending) >= 0) {
		st.want, st.required = true, required
	}
	return nil
}

// receiptB checks the payment-receipt that answers the pending voucher.
func (st *stream) receiptB(raw json.RawMessage) error {
	if st.pending == nil {
		return fmt.Errorf("payment-receipt with no voucher awaiting one")
	}
	rc, accepted, spent, err := st.receipt(raw)
	if err != nil {
		return err
	}
	var why []string
	if accepted.Cmp(st.pending) < 0 {
		why = append(why, fmt.Sprintf("acceptedCumulative %s is below the voucher it answers, %s", accepted, st.pending))
	}
	why = append(why, st.receiptNumbers(rc, accepted, spent)...)
	if len(why) > 0 {
		st.violation(ReceiptNumbers, "payment-receipt: "+strings.Join(why, "; "))
	}
	st.started = true
	st.pending = nil
	return nil
}

// final checks the receipt that ends a stream: dialect A's receipt or
// dialect B's close-ready. The stream has ended, so every message of this
// connection has been charged.
func (st *stream) final(raw json.RawMessage, what string) error {
	rc, accepted, spent, err := st.receipt(raw)
	if err != nil {
		return err
	}
	why := st.receiptNumbers(rc, accepted, spent)
	if own := new(big.Int).Mul(st.s.acct.tick, big.NewInt(int64(st.got))); spent.Cmp(own) < 0 {
		why = append(why, fmt.Sprintf("spent %s is below the %d messages of this connection alone (%s)", spent, st.got, own))
	}
	if len(why) > 0 {
		st.violation(ReceiptNumbers, what+": "+strings.Join(why, "; "))
	}
	st.progress()
	return nil
}

func (st *stream) receipt(raw json.RawMessage) (rc mpp.SessionReceipt, accepted, spent *big.Int, err error) {
	if err := json.Unmarshal(raw, &rc); err != nil {
		return rc, nil, nil, fmt.Errorf("session receipt: %w", err)
	}
	p := st.s.acct.ch.Protocol
	accepted, err1 := tempo.ParseAmount(rc.AcceptedCumulative, p)
	spent, err2 := tempo.ParseAmount(rc.Spent, p)
	if err := errors.Join(err1, err2); err != nil {
		return rc, nil, nil, fmt.Errorf("session receipt amounts: %w", err)
	}
	return rc, accepted, spent, nil
}

// receiptNumbers lists what contradicts the channel in a receipt's
// totals. The target started fresh, so spent is units × tick.
func (st *stream) receiptNumbers(rc mpp.SessionReceipt, accepted, spent *big.Int) []string {
	a := st.s.acct
	var why []string
	if !strings.EqualFold(rc.ChannelID, a.ch.ID.String()) {
		why = append(why, fmt.Sprintf("channelId %s, paying %s", rc.ChannelID, a.ch.ID))
	}
	if spent.Cmp(accepted) > 0 {
		why = append(why, fmt.Sprintf("spent %s exceeds acceptedCumulative %s", spent, accepted))
	}
	if rc.Units != nil {
		if u := new(big.Int).Mul(a.tick, new(big.Int).SetUint64(*rc.Units)); u.Cmp(spent) != 0 {
			why = append(why, fmt.Sprintf("spent %s is not units %d × tick %s", spent, *rc.Units, a.tick))
		}
	}
	if err := a.observe(accepted); err != nil {
		why = append(why, err.Error())
	}
	return why
}

// errorFrame takes a rejection, which ends the connection: dialect B
// closes after it, and in dialect A it refuses a voucher that was valid.
func (st *stream) errorFrame(f frame.Frame) (end, ok, polite bool) {
	if !st.s.r.b {
		return true, st.fail("error frame", errors.New(f.Error)), false
	}
	if f.Status == http.StatusTooManyRequests {
		st.s.r.rec.limit("payment-error 429", f.Error)
		st.event("#", "limit: payment-error 429")
		return true, false, false
	}
	return true, st.fail(fmt.Sprintf("payment-error %d", f.Status), errors.New(f.Error)), false
}

// finish ends the session's last connection once its budget is spent:
// dialect B asks to close and waits for close-ready.
func (st *stream) finish(ctx context.Context) (end, ok, polite bool) {
	if !st.s.r.b || !st.started {
		return true, true, true
	}
	if st.closing {
		return false, false, false
	}
	b, err := st.s.r.dialect.Encode(frame.Frame{Kind: frame.KindCloseRequest})
	if err == nil {
		err = st.ws.Write(ctx, websocket.MessageText, b)
	}
	if err != nil {
		return st.writeFailed(ctx, err)
	}
	st.event(">", string(b))
	st.closing, st.want = true, false
	st.closeBy.Reset(st.s.r.cfg.StallBound)
	return false, false, false
}

// closed records how the connection ended before its stream did.
func (st *stream) closed(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		kind := fmt.Sprintf("close %d", ce.Code)
		st.event("#", fmt.Sprintf("%s %q", kind, ce.Reason))
		switch ce.Code {
		case websocket.StatusPolicyViolation, websocket.StatusTryAgainLater:
			st.s.r.rec.limit(kind, ce.Reason)
		default:
			st.s.r.rec.error(kind, fmt.Sprintf("closed before the stream ended: %q", ce.Reason))
		}
		return false
	}
	return st.fail("connection lost", err)
}

// dialFailed records a failed probe or upgrade; 429 and 503 are limits.
func (st *stream) dialFailed(ctx context.Context, step string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var he httpStatusError
	if errors.As(err, &he) {
		kind := fmt.Sprintf("http %d", he.status)
		if he.status == http.StatusTooManyRequests || he.status == http.StatusServiceUnavailable {
			st.s.r.rec.limit(kind, step+": "+err.Error())
			return false
		}
		return st.fail(kind, err)
	}
	return st.fail(step, err)
}

func (st *stream) fail(kind string, err error) bool {
	st.event("#", kind+": "+err.Error())
	st.s.r.rec.error(kind, err.Error())
	return false
}

func (st *stream) violation(kind, detail string) {
	st.event("#", "VIOLATION "+kind+": "+detail)
	st.s.r.rec.violation(Violation{
		Kind: kind, Session: st.s.id, Connection: st.n, Channel: st.s.acct.ch.Name,
		Detail: detail, Transcript: st.s.tr.lines(),
	})
}

func (st *stream) event(dir, text string) {
	st.s.tr.add(entry{at: time.Since(st.s.r.began), conn: st.n, dir: dir, text: text})
}

// entry is one line of a transcript.
type entry struct {
	at   time.Duration // since the run began
	conn int
	dir  string // "<" from the target, ">" to it, "#" an event
	text string
}

// transcript keeps a session's last frames and events.
type transcript struct {
	ring [transcriptLen]entry
	n    int
}

func (t *transcript) add(e entry) {
	t.ring[t.n%transcriptLen] = e
	t.n++
}

// lines renders the transcript, oldest first.
func (t *transcript) lines() []string {
	first := max(0, t.n-transcriptLen)
	out := make([]string, 0, t.n-first)
	for i := first; i < t.n; i++ {
		e := t.ring[i%transcriptLen]
		out = append(out, fmt.Sprintf("%9.3fs conn %d %s %s", e.at.Seconds(), e.conn, e.dir, e.text))
	}
	return out
}

// plainMessage recognizes the compact message frame most targets send,
// {"type":"message","data":"…"} or {"mpp":"message","data":"…"} with
// plain string data, without a JSON decoder: the hot path of every
// stream. Any other form of a message takes the decoder.
func plainMessage(b []byte, prefix string) bool {
	rest, ok := bytes.CutPrefix(b, []byte(prefix))
	if !ok {
		return false
	}
	data, ok := bytes.CutSuffix(rest, []byte(`"}`))
	if !ok || !utf8.Valid(data) {
		return false
	}
	for _, c := range data {
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// clip shortens a frame for a transcript: credentials run to kilobytes.
func clip(b []byte) string {
	const keep = 200
	if len(b) <= keep {
		return string(b)
	}
	return fmt.Sprintf("%s… (%d bytes)", b[:keep], len(b))
}

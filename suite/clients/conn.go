package clients

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// Conn is the scripted server's side of one connection of a case. A case
// script calls its steps in order; each step records what it sends, and
// every frame the client sends is recorded and every credential verified
// as it is read. Steps never assert: the case's checks judge the record
// once the client has ended.
type Conn struct {
	cr   *caseRun
	ws   *websocket.Conn
	n    int
	name string
	d    frame.Dialect
	in   chan event
	done chan struct{} // the reader has ended

	issued      []mpp.Challenge // dialect A challenge frames sent, oldest first
	st          *chanState      // the metered channel, once opened
	tick        *big.Int
	openID      string   // the opening credential's challenge: dialect A's receipt answers for it
	challengeID string   // the newest acknowledged credential's challenge
	required    *big.Int // the newest requiredCumulative asked for
	closeReq    bool     // dialect B: the client asked to close
	gone        bool     // the connection has ended
	stopOnce    sync.Once

	// NeedBurst is how many more need-voucher frames follow each one at
	// once; NeedRepeat more follow NeedEvery apart (mpp-rs re-sends every
	// poll interval while the voucher is in flight).
	NeedBurst  int
	NeedRepeat int
	NeedEvery  time.Duration
	// Tamper, when set, may change a receipt before it is sent. kind is
	// "receipt" (dialect A's final receipt), "ack" (dialect B's
	// payment-receipt for a voucher), "close-ready" or "settlement".
	Tamper func(kind string, rc *mpp.SessionReceipt)
	// Unpaid, when set, runs before the session is paid: in dialect A
	// before the challenge frame, in dialect B between the opening
	// authorization and its payment-receipt.
	Unpaid func()
}

// event is one thing read from the client.
type event struct {
	closed bool
	binary bool
	raw    []byte
	f      frame.Frame
	err    error // why raw does not decode in the dialect
}

func newConn(cr *caseRun, ws *websocket.Conn, n int) *Conn {
	c := &Conn{cr: cr, ws: ws, n: n, name: fmt.Sprintf("c%d", n), d: cr.o.dialect, tick: cr.offer.Tick,
		in: make(chan event, 4096), done: make(chan struct{})}
	cr.rec.mu.Lock()
	cr.rec.conns = append(cr.rec.conns, cr.rec.since())
	cr.rec.mu.Unlock()
	go c.read()
	return c
}

// read is the only reader: it records every frame and forwards it.
func (c *Conn) read() {
	defer close(c.done)
	defer close(c.in)
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			desc := fmt.Sprintf("connection ended (%v)", err)
			if code := websocket.CloseStatus(err); code >= 0 {
				desc = fmt.Sprintf("close %d", code)
			}
			c.cr.rec.line(c.name, received, desc)
			c.in <- event{closed: true}
			return
		}
		e := event{binary: typ == websocket.MessageBinary, raw: b}
		kind := "binary"
		if e.binary {
			c.cr.rec.line(c.name, received, fmt.Sprintf("binary frame of %d bytes: %s", len(b), clipFrame(string(b))))
			c.cr.rec.addBroken(fmt.Sprintf("a binary frame of %d bytes on %s", len(b), c.name))
		} else {
			c.cr.rec.line(c.name, received, string(b))
			if e.f, e.err = c.d.Decode(b, frame.FromClient); e.err != nil {
				kind = "undecodable"
				c.cr.rec.addBroken(fmt.Sprintf("%s: %v: %s", c.name, e.err, clipFrame(string(b))))
			} else {
				kind = string(e.f.Kind)
			}
		}
		c.cr.rec.addFrame(clientFrame{conn: c.n, at: c.cr.rec.since(), kind: kind})
		select {
		case c.in <- e:
		default:
			c.cr.rec.Note("%s: client flood, the server stops reading", c.name)
			c.ws.CloseNow()
		}
	}
}

// stop ends the connection without a handshake.
func (c *Conn) stop() { c.stopOnce.Do(func() { c.ws.CloseNow() }) }

func (c *Conn) b() bool { return c.cr.o.b() }

// next waits up to d for the next event; ok is false on timeout, at the
// case's end and once the connection has ended.
func (c *Conn) next(d time.Duration) (event, bool) {
	if c.gone {
		return event{}, false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case e, ok := <-c.in:
		if !ok || e.closed {
			c.gone = true
			return event{}, false
		}
		return e, true
	case <-t.C:
	case <-c.cr.ctx.Done():
	}
	return event{}, false
}

// handle processes one event: a credential is verified and recorded, a
// voucher for the metered channel credited and, in dialect B,
// acknowledged. It returns the credential, if the event was one.
func (c *Conn) handle(e event) *Cred {
	if e.binary || e.err != nil {
		return nil
	}
	switch e.f.Kind {
	case frame.KindCloseRequest:
		c.closeReq = true
	case frame.KindCredential:
		cred := c.cr.verify(c, e.f.Credential)
		if cred.IsVoucher() && c.st != nil && cred.Channel.ID == c.st.ch.ID {
			c.credit(cred)
			if c.b() {
				c.ack(cred)
			}
		}
		return cred
	}
	return nil
}

// poll handles whatever the client has sent, without waiting.
func (c *Conn) poll() {
	for !c.gone {
		select {
		case e, ok := <-c.in:
			if !ok || e.closed {
				c.gone = true
				return
			}
			c.handle(e)
		default:
			return
		}
	}
}

// awaitCred waits up to d for the next credential. It returns nil when the
// connection ends, the wait times out or (dialect B) the client asks to
// close.
func (c *Conn) awaitCred(d time.Duration) *Cred {
	deadline := time.Now().Add(d)
	for {
		e, ok := c.next(time.Until(deadline))
		if !ok {
			return nil
		}
		if cred := c.handle(e); cred != nil {
			return cred
		}
		if c.closeReq {
			return nil
		}
	}
}

// forever bounds a wait by the case deadline alone.
const forever = time.Hour

// Await lets the client react for up to d (scaled): whatever it sends is
// recorded. It returns early when the connection ends.
func (c *Conn) Await(d time.Duration) {
	deadline := time.Now().Add(c.cr.o.scaled(d))
	for {
		e, ok := c.next(time.Until(deadline))
		if !ok {
			return
		}
		c.handle(e)
	}
}

// drain records what the client sends until the connection ends.
func (c *Conn) drain() {
	for {
		e, ok := c.next(forever)
		if !ok {
			return
		}
		c.handle(e)
	}
}

// Gone reports whether the connection has ended.
func (c *Conn) Gone() bool { return c.gone }

// N is the connection's number within the case, from 1.
func (c *Conn) N() int { return c.n }

// Send writes a frame in the dialect.
func (c *Conn) Send(f frame.Frame) { c.SendText(mustEncode(c.d, f)) }

// SendText writes raw bytes as a text frame.
func (c *Conn) SendText(b []byte) {
	c.cr.rec.line(c.name, sent, string(b))
	c.write(websocket.MessageText, b)
}

// SendBinary writes raw bytes as a binary frame.
func (c *Conn) SendBinary(b []byte) {
	c.cr.rec.line(c.name, sent, fmt.Sprintf("binary frame of %d bytes: %s", len(b), clipFrame(string(b))))
	c.write(websocket.MessageBinary, b)
}

func (c *Conn) write(typ websocket.MessageType, b []byte) {
	if c.gone {
		return
	}
	ctx, cancel := context.WithTimeout(c.cr.ctx, c.cr.o.scaled(10*time.Second))
	defer cancel()
	if err := c.ws.Write(ctx, typ, b); err != nil {
		c.cr.rec.line(c.name, note, "write failed: "+err.Error())
		c.gone = true
	}
}

// Close closes the connection with a handshake.
func (c *Conn) Close(code websocket.StatusCode, reason string) {
	c.cr.rec.line(c.name, sent, fmt.Sprintf("close %d %q", code, reason))
	_ = c.ws.Close(code, reason)
	c.gone = true
}

// Drop ends the connection without a close frame.
func (c *Conn) Drop() {
	c.cr.rec.line(c.name, sent, "connection dropped without a close frame")
	c.stop()
	c.gone = true
}

// PingFlood sends n pings at once and returns how many were answered
// within the reply time.
func (c *Conn) PingFlood(n int) int {
	c.cr.rec.line(c.name, sent, fmt.Sprintf("%d pings at once", n))
	ctx, cancel := context.WithTimeout(c.cr.ctx, c.cr.o.scaled(reply))
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for range n {
		wg.Go(func() {
			if c.ws.Ping(ctx) == nil {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	c.cr.rec.line(c.name, received, fmt.Sprintf("%d pongs", answered))
	return answered
}

// Challenge sends a dialect A challenge frame with a fresh challenge; ttl 0
// is the SDK default.
func (c *Conn) Challenge(ttl time.Duration) {
	ch, err := c.cr.issue(c.cr.o.scaled(ttl))
	if err != nil {
		panic(err.Error())
	}
	raw, err := json.Marshal(ch)
	if err != nil {
		panic(err.Error())
	}
	c.issued = append(c.issued, ch)
	c.Send(frame.Frame{Kind: frame.KindChallenge, Challenge: raw})
}

// Open takes the opening credential and starts the session: dialect A
// first sends a challenge frame (living ttl), dialect B waits for the
// authorization its probe's challenge allows, and acknowledges it. A
// credential that cannot open a session (not a voucher, or for no channel
// of the offer) is rejected as a real server would. It reports whether the
// session opened.
func (c *Conn) Open(ttl time.Duration) bool {
	if !c.b() {
		if c.Unpaid != nil {
			c.Unpaid()
		}
		c.Challenge(ttl)
	}
	cred := c.awaitCred(forever)
	if cred == nil {
		return false
	}
	if !cred.IsVoucher() || !c.cr.offer.matches(*cred.Channel) {
		c.Reject("the opening credential is not a voucher on a channel of this offer")
		return false
	}
	c.st = c.cr.channel(*cred.Channel)
	c.openID = cred.Parsed.Challenge.ID
	c.credit(cred)
	if c.b() {
		if c.Unpaid != nil {
			c.Unpaid()
		}
		c.ack(cred)
	}
	return !c.gone
}

// Reject refuses a credential: dialect A's error frame (the connection
// stays open), dialect B's payment-error 402 and close 1008.
func (c *Conn) Reject(why string) {
	if c.b() {
		c.Send(frame.Frame{Kind: frame.KindError, Status: 402, Error: why})
		c.Close(websocket.StatusPolicyViolation, "payment rejected")
		return
	}
	c.Send(frame.Frame{Kind: frame.KindError, Error: why})
}

// credit takes a voucher for the metered channel.
func (c *Conn) credit(cred *Cred) {
	c.cr.mu.Lock()
	defer c.cr.mu.Unlock()
	if cred.Amount.Cmp(c.st.accepted) > 0 {
		c.st.accepted.Set(cred.Amount)
	}
	c.challengeID = cred.Parsed.Challenge.ID
}

// ack sends dialect B's payment-receipt for a credential.
func (c *Conn) ack(cred *Cred) {
	c.Send(frame.Frame{Kind: frame.KindReceipt, Receipt: c.receipt("ack", cred.Parsed.Challenge.ID, "")})
}

// available is what the metered channel has paid and not spent.
func (c *Conn) available() *big.Int {
	c.cr.mu.Lock()
	defer c.cr.mu.Unlock()
	return new(big.Int).Sub(c.st.accepted, c.st.spent)
}

// Spent returns the metered channel's spent amount and units.
func (c *Conn) Spent() (*big.Int, uint64) {
	c.cr.mu.Lock()
	defer c.cr.mu.Unlock()
	return new(big.Int).Set(c.st.spent), c.st.units
}

// Deposit is the metered channel's deposit.
func (c *Conn) Deposit() *big.Int { return c.st.ch.Deposit }

// Tick is the price of one unit.
func (c *Conn) Tick() *big.Int { return c.tick }

// Units is n units' worth.
func (c *Conn) Units(n int64) *big.Int { return new(big.Int).Mul(c.tick, big.NewInt(n)) }

// deliver charges one unit and sends it.
func (c *Conn) deliver() {
	c.cr.mu.Lock()
	c.st.spent.Add(c.st.spent, c.tick)
	c.st.units++
	k := c.st.units
	c.cr.mu.Unlock()
	c.Send(frame.Frame{Kind: frame.KindMessage, Data: frame.StringData(fmt.Sprintf("unit-%d", k))})
}

// DeliverUnpaid charges and sends one unit whether or not it was paid:
// the metered channel is known from the opening credential, or, before it,
// the first fixture channel of the offer.
func (c *Conn) DeliverUnpaid() {
	if c.st == nil {
		for _, ch := range c.cr.o.channels {
			if c.cr.offer.matches(ch) {
				c.st = c.cr.channel(ch)
				break
			}
		}
	}
	c.deliver()
}

// DeliverPaid delivers units while the balance covers them and returns
// how many it delivered; it stops at the first shortage.
func (c *Conn) DeliverPaid(limit int) int {
	n := 0
	for n < limit && !c.gone && !c.closeReq && c.available().Cmp(c.tick) >= 0 {
		c.deliver()
		n++
		c.poll()
	}
	return n
}

// Deliver delivers n units, asking for a voucher at every shortage as an
// honest server does. It reports false when the stream stopped early: the
// connection ended or (dialect B) the client asked to close.
func (c *Conn) Deliver(n int) bool {
	for i := 0; i < n; i++ {
		c.poll()
		if c.gone || c.closeReq || !c.fund() {
			return false
		}
		c.deliver()
	}
	return !c.gone
}

// fund waits until one more unit is paid, asking for it as often as a
// voucher falls short.
func (c *Conn) fund() bool {
	for c.available().Cmp(c.tick) < 0 {
		spent, _ := c.Spent()
		c.AskVoucher(c.needVoucher(new(big.Int).Add(spent, c.tick)))
		for {
			cred := c.awaitCred(forever)
			if cred == nil {
				return false
			}
			if cred.IsVoucher() {
				break
			}
		}
	}
	return true
}

// needVoucher is the honest need-voucher for required.
func (c *Conn) needVoucher(required *big.Int) frame.NeedVoucher {
	c.cr.mu.Lock()
	defer c.cr.mu.Unlock()
	return frame.NeedVoucher{
		ChannelID:          c.st.ch.ID.String(),
		RequiredCumulative: required.String(),
		AcceptedCumulative: c.st.accepted.String(),
		Deposit:            c.st.ch.Deposit.String(),
	}
}

// NeedVoucher is the honest need-voucher for required, for scripts that
// then change a field.
func (c *Conn) NeedVoucher(required *big.Int) frame.NeedVoucher { return c.needVoucher(required) }

// AskVoucher sends a need-voucher frame, with the burst and repeats the
// script set.
func (c *Conn) AskVoucher(nv frame.NeedVoucher) {
	if r, ok := new(big.Int).SetString(nv.RequiredCumulative, 10); ok {
		c.required = r
	}
	f := frame.Frame{Kind: frame.KindNeedVoucher, NeedVoucher: nv}
	for i := 0; i <= c.NeedBurst; i++ {
		c.Send(f)
	}
	for i := 0; i < c.NeedRepeat && !c.gone; i++ {
		c.sleep(c.NeedEvery)
		c.Send(f)
	}
}

// sleep waits d (scaled) or until the case ends.
func (c *Conn) sleep(d time.Duration) {
	t := time.NewTimer(c.cr.o.scaled(d))
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.cr.ctx.Done():
	}
}

// SleepUntil waits until t or the case's end.
func (c *Conn) SleepUntil(t time.Time) {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-c.cr.ctx.Done():
	}
}

// End ends the session honestly: dialect A's final receipt, dialect B's
// close handshake (Settle).
func (c *Conn) End() {
	if c.gone {
		return
	}
	if c.b() {
		c.Settle()
		return
	}
	c.Send(frame.Frame{Kind: frame.KindReceipt, Receipt: c.receipt("receipt", c.openID, "")})
}

// Settle runs dialect B's close: payment-close-ready with what was spent,
// then the close credential, its settlement receipt and close 1000.
func (c *Conn) Settle() {
	c.Send(frame.Frame{Kind: frame.KindCloseReady, Receipt: c.receipt("close-ready", c.challengeID, "")})
	for !c.gone {
		cred := c.awaitCred(forever)
		if cred == nil {
			if c.closeReq && !c.gone {
				c.closeReq = false // a close request after close-ready: the client reuses it
				continue
			}
			return
		}
		if !cred.IsClose() {
			continue
		}
		tx := tempo.Keccak256([]byte(cred.Payload.Signature))
		rc := c.receipt("settlement", cred.Parsed.Challenge.ID, tx.String())
		c.Send(frame.Frame{Kind: frame.KindReceipt, Receipt: rc})
		c.Close(websocket.StatusNormalClosure, "payment session closed")
		return
	}
}

// receipt is the session receipt of the metered channel's totals, as the
// SDK servers fill it, after the script's Tamper.
func (c *Conn) receipt(kind, challengeID, txHash string) json.RawMessage {
	c.cr.mu.Lock()
	units := c.st.units
	rc := mpp.SessionReceipt{
		Method: "tempo", Intent: "session", Status: "success",
		Timestamp:          mpp.FormatExpires(time.Now()),
		Reference:          c.st.ch.ID.String(),
		ChallengeID:        challengeID,
		ChannelID:          c.st.ch.ID.String(),
		AcceptedCumulative: c.st.accepted.String(),
		Spent:              c.st.spent.String(),
		Units:              &units,
		TxHash:             txHash,
	}
	c.cr.mu.Unlock()
	if kind == "settlement" {
		rc.AcceptedCumulative = rc.Spent
	}
	if c.Tamper != nil {
		c.Tamper(kind, &rc)
	}
	raw, err := json.Marshal(rc)
	if err != nil {
		panic(err.Error())
	}
	return raw
}

// honest is the default script: open, stream the case's messages paying
// as asked, end.
func honest(c *Conn) {
	if c.Open(0) && c.Deliver(c.cr.c.messages()) {
		c.End()
	} else if c.closeReq {
		c.End()
	}
}

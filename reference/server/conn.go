package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// maxIssued bounds the challenges remembered per connection: the first one
// plus re-challenges issued when a long stream outlives its challenge.
const maxIssued = 4

// conn is one paid WebSocket connection. Three goroutines share it: run
// (handshake, then the metered stream), readLoop (the only reader) and
// verifyLoop (credential verification, so vouchers are taken while the
// stream waits). Writes may come from any of them: websocket.Conn allows
// concurrent writers.
//
// The two dialects share everything but the edges: dialect A sends the
// challenge in-band, answers a bad credential with an error frame and stays
// open, and ends with a receipt; dialect B (mppx) was probed over HTTP,
// acknowledges every authorization with a receipt, closes on a rejection,
// and ends with a close handshake.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	dialect frame.Dialect
	b       bool // dialect B
	cancel  context.CancelFunc

	creds chan string   // credential frames waiting for verification
	paid  chan struct{} // the first accepted credential
	free  chan struct{} // FaultNonIncreasing / FaultWrongChannel grants
	close sync.Once     // the first close wins
	// ack is held while a voucher is verified and until its receipt has
	// gone out; a stream woken from a shortage waits for it, so the receipt
	// comes before the next message (dialect B, as mppx).
	ack sync.RWMutex

	// writeMu serializes writes so one watchdog timer can bound them all:
	// a per-write context would cost an allocation and a timer per frame.
	writeMu  sync.Mutex
	watchdog *time.Timer
	timedOut atomic.Bool // the watchdog fired: the cause of a failed write

	mu      sync.Mutex // guards the fields below
	state   connState
	outcome string // for the log: the first cause of the connection's end
}

type connState struct {
	issued      []mpp.Challenge
	challengeID string     // of the credential receipts answer for
	bound       bool       // a session channel is metered
	channelID   tempo.Hash // the metered channel
	rejected    int        // rejected frames so far
	freeUnits   int        // units granted by a fault, not by funds
	paid        bool
	funded      int // vouchers of this connection accepted so far
	// Dialect B's close handshake.
	streamCancel context.CancelFunc // aborts the stream on a close request
	streamDone   chan struct{}      // closed when the stream has ended
	closeReady   bool               // payment-close-ready was sent
	failed       bool               // the connection was rejected: no close-ready
}

func newConn(s *Server, ws *websocket.Conn) *conn {
	c := &conn{
		s:       s,
		ws:      ws,
		dialect: s.cfg.Fault.wrap(s.cfg.Dialect),
		b:       s.cfg.Dialect.Name() == frame.B.Name(),
		creds:   make(chan string, s.cfg.Limits.MaxPendingCredentials),
		paid:    make(chan struct{}, 1),
		free:    make(chan struct{}, 1),
	}
	// A write that outlasts WriteTimeout means the peer stopped reading:
	// drop the connection, which fails the blocked write.
	c.watchdog = time.AfterFunc(time.Hour, func() {
		c.timedOut.Store(true)
		c.setOutcome(fmt.Sprintf("write timeout after %s: peer stopped reading", s.cfg.Limits.WriteTimeout))
		c.ws.CloseNow()
	})
	c.watchdog.Stop()
	return c
}

func (c *conn) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	c.cancel = cancel
	defer cancel()
	defer func() {
		// A failing close may still be in its handshake, draining what
		// the peer sent: dropping the socket under it would reset the
		// connection with input unread, and the peer could lose the error
		// and close frames already sent (once.Do waits for it).
		c.close.Do(func() {})
		c.ws.CloseNow()
	}()
	defer c.watchdog.Stop()

	if c.b && c.s.cfg.Fault == FaultGreeting {
		c.sendError(ctx, http.StatusPaymentRequired, "payment required: send an authorization")
	}
	if !c.b && c.s.challenges() { // dialect B clients took their challenge from the HTTP probe
		if err := c.challenge(ctx); err != nil {
			c.setOutcome(err.Error())
			return
		}
	}
	// Counted in the server's WaitGroup, so Close waits for them too.
	c.s.wg.Add(2)
	go func() {
		defer c.s.wg.Done()
		c.readLoop(ctx)
	}()
	go func() {
		defer c.s.wg.Done()
		c.verifyLoop(ctx)
	}()

	timeout := time.NewTimer(c.s.cfg.Limits.HandshakeTimeout)
	defer timeout.Stop()
	select {
	case <-c.paid:
	case <-timeout.C:
		c.fail(ctx, websocket.StatusPolicyViolation, http.StatusPaymentRequired, fmt.Sprintf("payment timeout: no valid credential within %s", c.s.cfg.Limits.HandshakeTimeout))
		return
	case <-ctx.Done():
		return
	}
	timeout.Stop()
	if c.s.cfg.Fault == FaultSerialStreams {
		c.s.fault.serial.Lock()
		defer c.s.fault.serial.Unlock()
		defer func() { <-ctx.Done() }() // the connection ends when the client leaves (finish)
	}
	if c.s.cfg.Fault == FaultGlobalWriteLock && !c.b {
		defer func() { <-ctx.Done() }() // open after the receipt (finish) until the client leaves
	}

	if c.s.cfg.Intent == IntentCharge {
		c.streamCharge(ctx)
		return
	}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.mu.Lock()
	c.state.streamCancel, c.state.streamDone = scancel, done
	c.mu.Unlock()
	c.streamSession(ctx, sctx)
	scancel()
	close(done)
	c.mu.Lock()
	failed := c.state.failed
	c.mu.Unlock()
	if c.b && !failed {
		c.awaitClose(ctx)
	}
}

// challenge issues a new challenge on this connection and sends it.
func (c *conn) challenge(ctx context.Context) error {
	ch, err := c.s.issue()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.state.issued = append(c.state.issued, ch)
	if len(c.state.issued) > maxIssued {
		c.state.issued = c.state.issued[1:]
	}
	c.mu.Unlock()
	raw, err := json.Marshal(ch)
	if err != nil {
		return fmt.Errorf("encode challenge: %w", err)
	}
	return c.send(ctx, frame.Frame{Kind: frame.KindChallenge, Challenge: raw})
}

// current is the newest challenge issued on this connection.
func (c *conn) current() mpp.Challenge {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.issued[len(c.state.issued)-1]
}

// send writes one frame within the write timeout. A failed write has closed
// the connection (websocket.Conn closes on every error); the stream ends.
func (c *conn) send(ctx context.Context, f frame.Frame) error {
	b, err := c.dialect.Encode(f)
	if err != nil {
		return fmt.Errorf("encode %s frame: %w", f.Kind, err)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write %s frame: %w", f.Kind, err)
	}
	c.watchdog.Reset(c.s.cfg.Limits.WriteTimeout)
	err = c.ws.Write(context.Background(), websocket.MessageText, b)
	c.watchdog.Stop()
	if err != nil {
		if c.timedOut.Load() {
			err = fmt.Errorf("write timeout after %s: %w", c.s.cfg.Limits.WriteTimeout, err)
		}
		c.setOutcome(fmt.Sprintf("write %s: %v", f.Kind, err))
		c.cancel()
		return fmt.Errorf("write %s frame: %w", f.Kind, err)
	}
	return nil
}

// sendError reports a rejection to the peer: dialect A's error frame, or
// dialect B's payment-error with an HTTP-like status.
func (c *conn) sendError(ctx context.Context, status int, msg string) {
	_ = c.send(ctx, frame.Frame{Kind: frame.KindError, Error: msg, Status: status})
}

// fail reports why and closes with code. Only the first close counts.
func (c *conn) fail(ctx context.Context, code websocket.StatusCode, status int, reason string) {
	c.failWith(ctx, code, status, reason, reason)
}

// failWith is fail with a message that differs from the close reason:
// dialect B carries the problem JSON in payment-error and a short reason
// in the close frame.
func (c *conn) failWith(ctx context.Context, code websocket.StatusCode, status int, message, reason string) {
	c.close.Do(func() {
		c.setOutcome(fmt.Sprintf("closed %d: %s", code, reason))
		// Stop the stream first: a rejected connection must not take a unit
		// that a voucher paid elsewhere while its close goes out.
		c.mu.Lock()
		stop := c.state.streamCancel
		c.state.failed = true
		c.mu.Unlock()
		if stop != nil {
			stop()
		}
		c.sendError(ctx, status, message)
		if c.s.cfg.Fault == FaultLongCloseReason {
			reason = message // mppx bug B1: a reason over 123 bytes; the close fails
		} else {
			reason = closeReason(reason)
		}
		if err := c.ws.Close(code, reason); err != nil && c.s.cfg.Fault == FaultLongCloseReason {
			return // the socket stays open, as with mppx
		}
		c.cancel()
	})
}

// failProblem ends a dialect B connection for a rejected authorization.
func (c *conn) failProblem(ctx context.Context, err error) {
	if c.s.cfg.Fault == FaultCrashOnReject {
		c.s.crash()
		return
	}
	p := asProblem(err)
	body, _ := json.Marshal(p)
	c.failWith(ctx, websocket.StatusPolicyViolation, p.Status, string(body), p.Slug()+": "+p.Detail)
}

// finish closes normally after the receipt.
func (c *conn) finish(reason string) {
	if (c.s.cfg.Fault == FaultSerialStreams || c.s.cfg.Fault == FaultGlobalWriteLock) && !c.b {
		return // as mpp-rs, the socket stays open after the receipt
	}
	c.close.Do(func() {
		c.setOutcome("complete")
		_ = c.ws.Close(websocket.StatusNormalClosure, reason)
		c.cancel()
	})
}

// closeReason fits RFC 6455's 123-byte limit on close reasons, the limit
// whose violation leaves mppx sockets open (ws-dialects.md §6, B1).
func closeReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	s = s[:120]
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// setOutcome records why the connection ends. The first cause wins: a
// write failed by the watchdog or a read failed by our own close must not
// hide what made us close.
func (c *conn) setOutcome(s string) {
	c.mu.Lock()
	if c.outcome == "" {
		c.outcome = s
	}
	c.mu.Unlock()
}

func (c *conn) getOutcome() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outcome == "" {
		return "ended by the server"
	}
	return c.outcome
}

// readLoop is the only reader. It answers bad frames, queues credentials
// and ends the connection on read errors (peer close, oversize frame).
func (c *conn) readLoop(ctx context.Context) {
	defer c.cancel()
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrMessageTooBig):
				c.setOutcome(fmt.Sprintf("closed 1009: frame over the %d-byte read limit", c.s.cfg.Limits.MaxFrameBytes))
			case websocket.CloseStatus(err) != -1:
				var ce websocket.CloseError
				errors.As(err, &ce)
				c.setOutcome(fmt.Sprintf("peer closed %d %q", ce.Code, ce.Reason))
			case ctx.Err() == nil:
				c.setOutcome(fmt.Sprintf("read: %v", err))
			}
			return
		}
		if c.s.cfg.Fault == FaultCrashOnOversize && int64(len(b)) > c.s.cfg.Limits.MaxFrameBytes {
			c.s.crash()
			return
		}
		if typ == websocket.MessageBinary && !c.b && c.s.cfg.Fault != FaultBinaryAsText {
			c.fail(ctx, websocket.StatusUnsupportedData, http.StatusBadRequest, "binary frames are not supported; send JSON text frames")
			return
		}
		if typ == websocket.MessageText && !utf8.Valid(b) {
			// RFC 6455 §8.1: a text frame that is not UTF-8 fails the
			// connection with 1007, before any JSON is looked at.
			c.fail(ctx, websocket.StatusInvalidFramePayloadData, http.StatusBadRequest, "text frame is not valid UTF-8")
			return
		}
		// Dialect B reads a binary frame as the UTF-8 text it carries, as
		// mppx does.
		f, err := c.dialect.Decode(b, frame.FromClient)
		if err != nil {
			if c.s.cfg.Fault == FaultDropNonJSON && !json.Valid(b) {
				c.ws.CloseNow()
				return
			}
			if c.s.cfg.Fault == FaultWedge {
				<-ctx.Done() // blocked on the report nobody reads
				return
			}
			c.reject(ctx, "malformed frame: "+err.Error())
			continue
		}
		switch f.Kind {
		case frame.KindCredential:
			select {
			case c.creds <- f.Credential:
			default:
				if c.b {
					c.fail(ctx, websocket.StatusPolicyViolation, http.StatusTooManyRequests, "too many queued payment messages")
				} else {
					c.fail(ctx, websocket.StatusPolicyViolation, http.StatusTooManyRequests, fmt.Sprintf("too many pending credentials (limit %d)", c.s.cfg.Limits.MaxPendingCredentials))
				}
				return
			}
		case frame.KindCloseRequest:
			c.requestClose()
		case frame.KindMessage:
			// Client data is not used by this server; ignoring it is what
			// both dialects' servers do.
			if c.s.cfg.Fault == FaultEchoMessages {
				_ = c.send(ctx, f)
			}
		}
	}
}

// reject answers one bad frame (dialect B ignores it silently, as mppx
// does) and closes once a peer has sent too many.
func (c *conn) reject(ctx context.Context, msg string) {
	if c.s.cfg.Fault == FaultCrashOnReject {
		c.s.crash()
		return
	}
	c.mu.Lock()
	c.state.rejected++
	over := c.state.rejected > c.s.cfg.Limits.MaxRejected
	c.mu.Unlock()
	if over {
		c.fail(ctx, websocket.StatusPolicyViolation, http.StatusBadRequest, fmt.Sprintf("too many rejected frames (limit %d)", c.s.cfg.Limits.MaxRejected))
		return
	}
	if !c.b {
		c.sendError(ctx, 0, msg)
	}
}

func (c *conn) verifyLoop(ctx context.Context) {
	for {
		select {
		case cred := <-c.creds:
			// A credential queued behind a rejection that ended the
			// connection is dropped: applied, its funds would buy a unit
			// for another connection streaming on the channel.
			if ctx.Err() != nil {
				return
			}
			if c.s.ignored(cred) {
				continue
			}
			if c.b {
				c.authorization(ctx, cred)
			} else if err := c.credential(ctx, cred); err != nil {
				c.reject(ctx, problemText(err))
			}
		case <-ctx.Done():
			return
		}
	}
}

// credential verifies one dialect A credential and applies it.
func (c *conn) credential(ctx context.Context, raw string) error {
	cred, err := c.s.parseCredential(raw)
	if err != nil {
		return err
	}
	if err := c.checkChallenge(cred.Challenge); err != nil {
		return err
	}
	if c.s.cfg.Intent == IntentCharge {
		return c.charge(cred)
	}
	first, err := c.voucher(ctx, cred)
	if first {
		c.markPaid(cred.Challenge.ID)
	}
	return err
}

// markPaid records the credential a stream starts on and starts it.
func (c *conn) markPaid(challengeID string) {
	c.mu.Lock()
	c.state.challengeID = challengeID
	c.mu.Unlock()
	c.paid <- struct{}{}
}

// checkChallenge accepts an echoed challenge only if its id verifies by HMAC
// over the echoed fields, it was issued on this connection, every echoed
// field equals the issued one, and it has not expired.
func (c *conn) checkChallenge(echo mpp.Challenge) error {
	fault := c.s.cfg.Fault
	issued, found := c.issuedByID(echo.ID)
	switch fault {
	case FaultSkipEcho:
		// The defect: trust the id alone and never look at what was echoed.
		if !found {
			return mpp.NewProblem(mpp.SlugInvalidChallenge, "challenge was not issued on this connection")
		}
		echo = issued
	case FaultForgedID:
	default:
		if !c.s.verifyID(echo) {
			return mpp.NewProblem(mpp.SlugInvalidChallenge, "challenge id does not verify: not issued by this server")
		}
		if !found && fault != FaultOtherConnection {
			return mpp.NewProblem(mpp.SlugInvalidChallenge, "challenge was not issued on this connection")
		}
		if found && echo != issued {
			return mpp.NewProblem(mpp.SlugInvalidChallenge, "echoed challenge differs from the one issued")
		}
	}
	if fault == FaultExpired {
		return nil
	}
	exp, err := echo.ExpiresAt()
	if err != nil {
		return mpp.NewProblem(mpp.SlugInvalidChallenge, fmt.Sprintf("challenge expires: %v", err))
	}
	if now := c.s.cfg.Now(); now.After(exp) {
		return mpp.NewProblem(mpp.SlugPaymentExpired, fmt.Sprintf("challenge expired at %s", echo.Expires))
	}
	return nil
}

// issuedByID finds a challenge issued on this connection, comparing ids in
// constant time.
func (c *conn) issuedByID(id string) (mpp.Challenge, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var hit mpp.Challenge
	found := false
	for _, ch := range c.state.issued {
		if subtle.ConstantTimeCompare([]byte(ch.ID), []byte(id)) == 1 {
			hit, found = ch, true
		}
	}
	return hit, found
}

// charge accepts a test-method credential: its payload is a JSON object
// (ParseAuthorization checks that) and its challenge verified.
func (c *conn) charge(cred mpp.Credential) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.paid {
		return mpp.NewProblem(mpp.SlugInvalidPayload, "this connection is already paid")
	}
	c.state.paid = true
	c.state.challengeID = cred.Challenge.ID
	c.paid <- struct{}{}
	return nil
}

// streamCharge delivers the paid messages, then the receipt.
func (c *conn) streamCharge(ctx context.Context) {
	challengeID := c.challengeID()
	for i := 1; i <= c.s.cfg.Messages; i++ {
		if c.send(ctx, c.s.message(i)) != nil {
			return
		}
	}
	reference := challengeID
	if c.s.cfg.DigitData {
		reference = new(big.Int).SetBytes([]byte(challengeID)).String()
	}
	receipt, _ := json.Marshal(mpp.Receipt{Status: "success", Method: TestMethod, Timestamp: c.s.timestamp(), Reference: reference})
	if c.send(ctx, frame.Frame{Kind: frame.KindReceipt, Receipt: receipt}) == nil {
		c.finish("payment complete")
	}
}

// message is the i-th application message of a stream.
func (s *Server) message(i int) frame.Frame {
	if s.cfg.DigitData {
		return frame.Frame{Kind: frame.KindMessage, Data: frame.StringData(strconv.Itoa(i))}
	}
	if s.cfg.Fault == FaultNumericData {
		return frame.Frame{Kind: frame.KindMessage, Data: json.RawMessage(strconv.Itoa(i))}
	}
	return frame.Frame{Kind: frame.KindMessage, Data: frame.StringData(fmt.Sprintf("unit-%d", i))}
}

// problemText renders a rejection for an error frame: the problem slug
// first, so a peer can match on it, then the detail.
func problemText(err error) string {
	p := asProblem(err)
	return p.Slug() + ": " + p.Detail
}

// asProblem returns err as a problem, wrapping any other error as
// verification-failed.
func asProblem(err error) *mpp.Problem {
	var p *mpp.Problem
	if errors.As(err, &p) {
		return p
	}
	return mpp.NewProblem(mpp.SlugVerificationFailed, err.Error())
}

func (c *conn) challengeID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.challengeID
}

// grantFree is the fault path that pays for a unit without funds.
func (c *conn) grantFree() {
	c.mu.Lock()
	c.state.freeUnits++
	c.mu.Unlock()
	select {
	case c.free <- struct{}{}:
	default:
	}
}

func (c *conn) takeFree() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.freeUnits == 0 {
		return false
	}
	c.state.freeUnits--
	return true
}

package robust

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/suite/harness"
	"github.com/mppws/conformance/suite/peer"
)

// robustReaction is what a target did after one hostile input.
type robustReaction struct {
	events []peer.Event
	closed bool
}

// String summarises a reaction for observations: "silence", the error
// frames, other frames, and the close.
func (r robustReaction) String() string {
	var parts []string
	errs, first := 0, ""
	for _, e := range r.events {
		switch {
		case e.IsFrame(frame.KindError):
			if errs == 0 {
				first = e.Frame.Error
			}
			errs++
		default:
			parts = append(parts, e.String())
		}
	}
	switch {
	case errs == 1:
		parts = append([]string{fmt.Sprintf("error frame %q", robustClip(first))}, parts...)
	case errs > 1:
		parts = append([]string{fmt.Sprintf("%d error frames (first %q)", errs, robustClip(first))}, parts...)
	}
	if len(parts) == 0 {
		return "silence"
	}
	return strings.Join(parts, ", then ")
}

func robustClip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// robustAfter collects what the target does within d after a hostile input.
// A message or receipt frame fails the case at once: unpaid input never buys
// data. The end of the connection fails it too unless mayClose. Error
// frames, challenge frames and silence are the allowed reactions.
func robustAfter(cn *harness.Conn, d time.Duration, mayClose bool) robustReaction {
	r := robustReaction{events: cn.Quiet(d, harness.Paid)}
	if n := len(r.events); n > 0 && r.events[n-1].Closed {
		e := r.events[n-1]
		if !mayClose {
			cn.C.Failf([]string{"an error frame", "silence (ignored), the connection left open"}, "%s at %+.3fs", e, e.At.Seconds())
		}
		r.closed = true
	}
	return r
}

// robustServes dials t afresh, pays and expects the paid flow: the target
// is still up and serving. It returns the number of messages.
func robustServes(c *harness.C, t *harness.Target) int {
	cn := c.Dial(t)
	s := c.PayValid(cn)
	return c.ExpectServed(cn, s)
}

// robustTimedServes is robustServes timed from the dial to the end of the
// stream. It closes the connection after: a session stream left waiting on
// the channel would take units paid for a later flow.
func robustTimedServes(c *harness.C, t *harness.Target) (int, time.Duration) {
	start := time.Now()
	cn := c.Dial(t)
	n := c.ExpectServed(cn, c.PayValid(cn))
	took := time.Since(start)
	cn.CloseNormally()
	return n, took
}

// robustUsable expects cn to be open and then to serve a valid credential.
// It returns the number of messages and the session paid from, if any.
func robustUsable(c *harness.C, cn *harness.Conn, why string) (int, *harness.Session) {
	cn.ExpectOpen(why)
	s := c.PayValid(cn)
	return c.ExpectServed(cn, s), s
}

// robustServesBeside is robustServes while busy, a connection served from
// session channel s, stays open: a fresh payment on s's channel would wake
// both streams to compete for its units, so the fresh connection pays from
// another channel (or, with one channel, busy is closed first).
func robustServesBeside(c *harness.C, t *harness.Target, busy *harness.Conn, s *harness.Session) int {
	if s == nil {
		return robustServes(c, t)
	}
	for _, ch := range c.Leased() {
		if ch.ID != s.Ch.ID {
			return c.OpenSession(harness.Only(ch)).Delivered
		}
	}
	busy.CloseNormally()
	time.Sleep(c.Timeouts.Quiet)
	return robustServes(c, t)
}

// robustValidAuth is a valid credential string for cn's challenge, with the
// session it pays from (nil for a charge).
func robustValidAuth(c *harness.C, cn *harness.Conn) (string, *harness.Session) {
	p, s := c.ValidPayload(cn)
	return cn.Authorization(cn.Echo(), p), s
}

// robustFlow is the outcome of one charge flow run off the spec goroutine.
type robustFlow struct {
	n   int
	err error
	tr  *peer.Transcript
}

// robustChargeFlow dials t with its own transcript, reads the challenge,
// signals ready and waits for start, pays and reads the stream to its
// receipt. It never fails the case: it runs off the spec goroutine.
func robustChargeFlow(ctx context.Context, tm harness.Timeouts, opts *websocket.DialOptions, t *harness.Target, name string, ready func(), start <-chan struct{}) (r robustFlow) {
	r.tr = peer.NewTranscript()
	readied := false
	defer func() {
		if !readied {
			ready()
		}
	}()
	dctx, cancel := context.WithTimeout(ctx, tm.Connect)
	p, err := peer.Dial(dctx, t.URL, t.Dialect, r.tr, name, opts)
	cancel()
	if err != nil {
		r.err = err
		return r
	}
	defer p.Close()
	// As for every dial: the challenge is a reply to the upgrade.
	e, ok := p.Next(tm.Reply)
	if !ok {
		r.err = fmt.Errorf("no challenge within %s of the upgrade", tm.Reply)
		return r
	}
	if !e.IsFrame(frame.KindChallenge) || e.Frame.ChallengeError != "" {
		r.err = fmt.Errorf("first frame %s, want a challenge", e)
		return r
	}
	ch, err := harness.ChallengeOf(e.Frame)
	if err != nil {
		r.err = fmt.Errorf("challenge object: %w", err)
		return r
	}
	payload, _ := json.Marshal(harness.TestPayload)
	auth, err := mpp.FormatAuthorization(mpp.Credential{Challenge: ch, Payload: payload})
	if err != nil {
		r.err = err
		return r
	}
	readied = true
	ready()
	<-start
	if err := p.Send(ctx, frame.Frame{Kind: frame.KindCredential, Credential: auth}); err != nil {
		r.err = err
		return r
	}
	for {
		e, ok := p.Next(tm.Reply)
		switch {
		case !ok:
			r.err = fmt.Errorf("silence after %d messages", r.n)
			return r
		case e.IsFrame(frame.KindMessage):
			r.n++
		case e.IsFrame(frame.KindChallenge) && e.Frame.ChallengeError == "":
		case e.IsFrame(frame.KindReceipt):
			var rc mpp.Receipt
			switch err := json.Unmarshal(e.Frame.Receipt, &rc); {
			case err != nil:
				r.err = fmt.Errorf("receipt: %v", err)
			case rc.Status != "success":
				r.err = fmt.Errorf("receipt status %q", rc.Status)
			case r.n < 1:
				r.err = fmt.Errorf("receipt after %d messages", r.n)
			}
			return r
		default:
			r.err = fmt.Errorf("%s after %d messages", e, r.n)
			return r
		}
	}
}

// robustRound is what one session connection did after one voucher, read
// off the spec goroutine.
type robustRound struct {
	n       int
	nv      *frame.NeedVoucher
	receipt json.RawMessage
	err     string
}

// robustSessionRound sends auth on s and reads until a needVoucher or the
// receipt. It never fails the case: it runs off the spec goroutine.
func robustSessionRound(ctx context.Context, s *harness.Session, auth string) (r robustRound) {
	if err := s.Peer.Send(ctx, frame.Frame{Kind: frame.KindCredential, Credential: auth}); err != nil {
		r.err = err.Error()
		return r
	}
	for {
		e, ok := s.Next(s.C.Timeouts.Reply)
		switch {
		case !ok:
			r.err = fmt.Sprintf("silence after %d messages", r.n)
			return r
		case e.IsFrame(frame.KindMessage):
			r.n++
			s.Delivered++
		case e.IsFrame(frame.KindChallenge) && e.Frame.ChallengeError == "":
			// A re-challenge: the next voucher echoes it.
		case e.IsFrame(frame.KindNeedVoucher):
			nv := e.Frame.NeedVoucher
			r.nv = &nv
			return r
		case s.IsAck(e):
			// Dialect B acknowledges the voucher.
		case s.IsEnd(e):
			r.receipt = e.Frame.Receipt
			return r
		default:
			r.err = fmt.Sprintf("%s after %d messages", e, r.n)
			return r
		}
	}
}

// robustSessionAuth signs a voucher for k ticks over what s's channel has
// accepted, on the spec goroutine, and returns the credential and amount.
func robustSessionAuth(s *harness.Session, k int) (string, *big.Int) {
	amount := new(big.Int).Add(s.Acct.Accepted, s.Units(k))
	if amount.Cmp(s.Acct.Signed) <= 0 {
		amount.Add(s.Acct.Signed, s.Units(k))
	}
	return s.Authorization(s.Echo(), s.Voucher(amount)), amount
}

// robustRounds sends one credential per session at once and waits for all.
func robustRounds(c *harness.C, ss []*harness.Session, auths []string) []robustRound {
	out := make([]robustRound, len(ss))
	var wg sync.WaitGroup
	for i := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = robustSessionRound(c.Ctx, ss[i], auths[i])
		}()
	}
	wg.Wait()
	return out
}

// robustBare is a WebSocket client written by hand on a raw socket: it reads
// the upgrade response and the first frame, and then never reads again,
// however many pings it sends (flood).
type robustBare struct {
	conn         net.Conn
	br           *bufio.Reader
	writeTimeout time.Duration
	// The flood's state, kept between its calls: bytes of pings written,
	// the bytes of a batch a timed-out write left, and when it began.
	written int
	pending []byte
	buf     []byte
	began   time.Time
}

const robustWSGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// robustBareDial connects to a ws:// or wss:// URL and performs the
// upgrade.
func robustBareDial(ctx context.Context, raw string, tlsConfig *tls.Config, writeTimeout time.Duration) (*robustBare, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "wss" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	var conn net.Conn
	nd := &net.Dialer{Control: robustShrink}
	switch u.Scheme {
	case "ws":
		conn, err = nd.DialContext(ctx, "tcp", host)
	case "wss":
		tlsConfig.ServerName, tlsConfig.NextProtos = u.Hostname(), []string{"http/1.1"}
		conn, err = (&tls.Dialer{NetDialer: nd, Config: tlsConfig}).DialContext(ctx, "tcp", host)
	default:
		return nil, fmt.Errorf("scheme %q: want ws or wss", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", u.RequestURI(), u.Host, key)
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	b := &robustBare{conn: conn, br: bufio.NewReader(conn), writeTimeout: writeTimeout}
	resp, err := http.ReadResponse(b.br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("upgrade response: %w", err)
	}
	sum := sha1.Sum([]byte(key + robustWSGUID))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		conn.Close()
		return nil, fmt.Errorf("upgrade refused: %s, Sec-WebSocket-Accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return b, nil
}

// readMessage reads one data message, skipping control frames.
func (b *robustBare) readMessage() (byte, []byte, error) {
	var op byte
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(b.br, h[:]); err != nil {
			return 0, nil, err
		}
		fin, opcode := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var x [2]byte
			if _, err := io.ReadFull(b.br, x[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(x[:]))
		case 127:
			var x [8]byte
			if _, err := io.ReadFull(b.br, x[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(x[:])
		}
		if n > 1<<20 {
			return 0, nil, fmt.Errorf("frame of %d bytes", n)
		}
		var mask [4]byte
		masked := h[1]&0x80 != 0
		if masked {
			if _, err := io.ReadFull(b.br, mask[:]); err != nil {
				return 0, nil, err
			}
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(b.br, p); err != nil {
			return 0, nil, err
		}
		if masked {
			for i := range p {
				p[i] ^= mask[i%4]
			}
		}
		switch {
		case opcode == 0x8:
			return opcode, p, fmt.Errorf("close frame %x", p)
		case opcode >= 0x8:
			continue // ping or pong
		case opcode != 0:
			op, msg = opcode, p
		default:
			msg = append(msg, p...)
		}
		if fin {
			return op, msg, nil
		}
	}
}

// writeText writes p as one masked text frame.
func (b *robustBare) writeText(p []byte) error {
	hdr := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	out := make([]byte, len(hdr)+len(p))
	copy(out, hdr)
	for i, v := range p {
		out[len(hdr)+i] = v ^ mask[i%4]
	}
	_ = b.conn.SetWriteDeadline(time.Now().Add(b.writeTimeout))
	_, err := b.conn.Write(out)
	return err
}

// The bare client of WS-ROBUST-006 asks before it connects for a small
// receive buffer, so the window it offers is small, and a small send
// buffer, so its writes stall within the stall window once the target
// stops reading: Linux wakes a blocked writer only when much of its buffer
// has drained, which with an autotuned buffer of megabytes takes longer
// than the window on a slow target.
const (
	robustRcvBuf = 4 << 10
	robustSndBuf = 64 << 10
)

// robustFloodBytes is how many bytes of pongs the bare client asks the
// target for. Measured by TestFloodFillsSendBuffer against the reference
// on Linux 6.18 over loopback: with the buffers above, the reference had
// written 2,995,700 bytes (2.9 MiB) of pongs when its writes blocked,
// 2,990,080 in its send queue and 5,620 in the client's receive queue, its
// send buffer grown to net.ipv4.tcp_wmem's default ceiling of 4 MiB; a
// Linux target holds at most about as much on any link unless that
// ceiling is raised. 16 MiB is 5.6 times the figure. A target that stops
// reading is asked for much less: the flood ends when its writes stall.
const robustFloodBytes = 16 << 20

// robustPingFrame is the size of one of the bare client's pings on the
// wire: a 2-byte header, a 4-byte mask and the largest control payload, 125
// bytes (RFC 6455 §5.5). Each asks for a pong of robustPongFrame bytes.
const (
	robustPingFrame = 2 + 4 + 125
	robustPongFrame = 2 + 125
)

// robustFlood is what one call of the bare client's ping flood did.
type robustFlood struct {
	pings   int           // pings this call wrote whole
	wrote   int           // bytes this call wrote
	owed    int           // pings written whole by every call so far
	took    time.Duration // since the first call began
	stalled bool          // a write made no progress for the stall window
	err     error         // a write failed: the target closed the connection
	more    bool          // the time limit ended it with pings left to write
}

// String says how far the flood got and why it stopped.
func (f robustFlood) String() string {
	s := fmt.Sprintf("%d pings (%s of pongs owed) in %s", f.owed, robustMiB(f.owed*robustPongFrame), f.took.Round(time.Millisecond))
	switch {
	case f.err != nil:
		return fmt.Sprintf("%s, then the target closed the connection (%v)", s, f.err)
	case f.stalled:
		return s + ", then the target stopped reading"
	case f.more:
		return s + ", the target still reading when the time ran out"
	}
	return s + ", all read by the target"
}

func robustMiB(n int) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// robustSettled is how many bytes of pongs the flood must have asked for
// before a stall of the quiet window counts as the target having stopped
// reading: a third of what the reference's buffers hold. A target merely
// slow to read (a loaded machine) stalls a writer earlier, for a moment;
// before this much, only a stall of the patience counts.
const robustSettled = 1 << 20

// flood writes pings until budget pings in all are written and never reads
// the pongs every endpoint owes for them (RFC 6455 §5.5.2), so the target
// writes into a socket nobody reads until its send buffer is full. It stops
// when writes make no progress for stall once robustSettled bytes of pongs
// are owed, or for patience before (the target stopped reading), when a
// write fails (the target closed the connection), or at until. A later call
// goes on where the last one stopped, mid-frame if a write cut one.
func (b *robustBare) flood(budget int, stall, patience time.Duration, until time.Time) (f robustFlood) {
	const batch = 64 // pings per write
	if b.buf == nil {
		b.buf = make([]byte, batch*robustPingFrame)
		b.began = time.Now()
	}
	progressed, from := time.Now(), b.written
	defer func() {
		f.owed, f.took = b.written/robustPingFrame, time.Since(b.began)
		f.pings, f.wrote = f.owed-from/robustPingFrame, b.written-from
	}()
	for {
		if len(b.pending) == 0 {
			pings := b.written / robustPingFrame
			if pings >= budget {
				return f
			}
			if !time.Now().Before(until) {
				f.more = true
				return f
			}
			b.pending = b.buf[:min(batch, budget-pings)*robustPingFrame]
			// Random masks and payloads: the target echoes whatever it
			// unmasks.
			_, _ = rand.Read(b.pending)
			for i := 0; i < len(b.pending); i += robustPingFrame {
				b.pending[i], b.pending[i+1] = 0x89, 0x80|125 // FIN ping, masked, 125 bytes
			}
		}
		_ = b.conn.SetWriteDeadline(time.Now().Add(stall))
		n, err := b.conn.Write(b.pending)
		b.pending = b.pending[n:]
		b.written += n
		if n > 0 {
			progressed = time.Now()
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			// Slow, not stopped, until enough is owed or the patience ran
			// out: go on with what the write left.
			if b.written/robustPingFrame*robustPongFrame >= robustSettled || time.Since(progressed) >= patience {
				f.stalled = true
				return f
			}
		case err != nil:
			f.err = err
			return f
		}
	}
}

func (b *robustBare) Close() { b.conn.Close() }

// Cases are the robustness cases, each with its catalogue entry.
func Cases() []harness.Case {
	return []harness.Case{robust001, robust002, robust003, robust004, robust005, robust006, robust007, robust008, robust009, robust010, robust011, robust012, robust013, robust014, robust015, robust016}
}

var robust001 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-001", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "non-JSON text frame is survived",
	Requirement: "A text frame that is not JSON gets an error frame or is ignored; the connection stays open and a valid credential is then served.",
	Source:      "ws-dialects.md §1.3, §5 scenario 14"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		var got []string
		for _, text := range []string{"this is not JSON", cn.Frame(`{"$tag":"$cred","$cred":`)} {
			cn.SendText(text)
			got = append(got, robustAfter(cn, c.Timeouts.Quiet, false).String())
		}
		n, _ := robustUsable(c, cn, "after non-JSON text frames")
		c.Observe("non-JSON text frames: %s; then served (%d messages) on the same connection", strings.Join(got, "; "), n)
	}}

var robust002 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-002", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "unknown frame type is survived",
	Requirement: "A JSON frame with an unknown type gets an error frame or is ignored; the connection stays usable.",
	Source:      "ws-dialects.md §1.3, §5 scenario 14"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		var got []string
		for _, text := range []string{cn.Frame(`{"$tag":"subscribe","params":["newHeads"]}`), cn.Frame(`{"$tag":"hello"}`)} {
			cn.SendText(text)
			got = append(got, robustAfter(cn, c.Timeouts.Quiet, false).String())
		}
		n, _ := robustUsable(c, cn, "after frames of unknown type")
		c.Observe("unknown frame types: %s; then served (%d messages) on the same connection", strings.Join(got, "; "), n)
	}}

var robust003 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-003", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.A, Needs: harness.NeedsAny,
	Title:       "binary frame delivers nothing and the target stays up",
	Requirement: "A binary frame gets an error frame, a close, or is ignored; no application data follows; other connections are served.",
	Source:      "ws-dialects.md §1.3, §5 scenario 15"},
	Run: func(c *harness.C) {
		t := c.Target()
		cn := c.Dial(t)
		auth, _ := robustValidAuth(c, cn)
		b, err := t.Dialect.Encode(frame.Frame{Kind: frame.KindCredential, Credential: auth})
		c.Check(err == nil, "a credential frame the suite can encode", "%v", err)
		if err := cn.Peer.SendBinary(c.Ctx, b); err != nil {
			c.Failf([]string{"the connection open to send a binary frame"}, "%v", err)
		}
		r := robustAfter(cn, c.NoData(), true)
		n := robustServes(c, t)
		c.Observe("binary frame holding a valid credential: %s; a fresh connection was served (%d messages)", r, n)
	}}

var robust004 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-004", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "oversize frame is bounded",
	Requirement: "A 2 MiB frame is refused (close 1009, error frame or close) or ignored without delivering data; the target keeps serving.",
	Source:      "ws-dialects.md §5 scenario 17"},
	Run: func(c *harness.C) {
		t := c.Target()
		cn := c.Dial(t)
		huge := cn.Frame(`{"$tag":"$cred","$cred":"Payment `) + strings.Repeat("A", 2<<20) + `"}`
		written := "written"
		if err := cn.Peer.SendText(c.Ctx, []byte(huge)); err != nil {
			written = fmt.Sprintf("write failed (%v)", err)
		}
		r := robustAfter(cn, c.NoData(), true)
		how := "ignored"
		switch {
		case r.closed && r.events[len(r.events)-1].Code == 1009:
			how = "refused with close 1009"
		case r.closed:
			how = "refused with a close"
		case len(r.events) > 0:
			how = "answered"
		}
		n := robustServes(c, t)
		c.Observe("2 MiB text frame (%s): %s: %s; a fresh connection was served (%d messages)", written, how, r, n)
	}}

var robust005 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-005", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny, Schedule: harness.Alone,
	Title:       "credential flood is bounded",
	Requirement: "A forged credential is rejected, 500 sent at once deliver no data, and the target keeps serving other connections.",
	Source:      "ws-dialects.md §5 scenario 16"},
	Run: func(c *harness.C) {
		t := c.Target()
		// One forged credential alone first, on a connection of its own: a
		// target whose queue the flood fills may refuse the queue before it
		// verifies a single credential, and this one must be verified.
		lone := c.Dial(t)
		c.PayTampered(lone, harness.Forge)
		lone.ExpectRejected("a forged challenge id, alone")
		cn := c.Dial(t)
		p, _ := c.ValidPayload(cn)
		echo := cn.Echo()
		echo.ID = harness.ForgedID
		b, err := t.Dialect.Encode(frame.Frame{Kind: frame.KindCredential, Credential: cn.Authorization(echo, p)})
		c.Check(err == nil, "a credential frame the suite can encode", "%v", err)
		const flood = 500
		sent := 0
		var werr error
		for ; sent < flood; sent++ {
			if werr = cn.Peer.SendText(c.Ctx, b); werr != nil {
				break
			}
		}
		r := robustAfter(cn, c.NoData(), true)
		n := robustServes(c, t)
		wrote := fmt.Sprintf("all %d written", flood)
		if werr != nil {
			wrote = fmt.Sprintf("%d of %d written before the write failed", sent, flood)
		}
		c.Observe("%d forged credentials (%s): %s; a fresh connection was served (%d messages)", flood, wrote, r, n)
	}}

var robust006 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-006", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny, Schedule: harness.Alone, Channels: 2,
	Title:       "a client that stops reading does not stall others",
	Requirement: "While one paid connection never reads and pings until the target's send buffer towards it is full (or the target closes it), another connection is served completely, within the reply timeout of the time an unhindered one takes.",
	Source:      "suite requirement: bounded resources against hostile peers; RFC 6455 §5.5.2 (a ping is answered with a pong)"},
	Run: func(c *harness.C) {
		t := c.Target()
		_, alone := robustTimedServes(c, t)
		var bareSession *harness.Session
		if t.Intent == "session" {
			// The bare client pays from the last channel and the normal
			// flow (PayValid) from the first, so they do not compete for
			// one balance.
			c.Channel(t, harness.AnyChannel) // leases two channels (catalogue: Channels 2)
			ch := c.Leased()[1]
			bareSession = c.SessionOn(c.Unconnected(t), ch)
		}
		var ch mpp.Challenge
		if t.B() {
			ch = c.Probe(t, nil) // dialect B: the challenge comes from the probe
		}
		ctx, cancel := context.WithTimeout(c.Ctx, c.Timeouts.Connect)
		bare, err := robustBareDial(ctx, t.URL, c.TLSConfig(), c.Timeouts.Reply)
		if err != nil {
			cancel()
			c.Failf([]string{"a WebSocket upgrade"}, "bare client: %v", err)
		}
		defer bare.Close()
		if !t.B() {
			op, first, err := bare.readMessage()
			_ = bare.conn.SetDeadline(time.Time{})
			if err != nil || op != 0x1 {
				cancel()
				c.Failf([]string{"a challenge text frame first"}, "bare client: opcode %d, %v", op, err)
			}
			c.T.Note("[bare] ← %s", first)
			f, err := t.Dialect.Decode(first, frame.FromServer)
			if err != nil || f.Kind != frame.KindChallenge {
				cancel()
				c.Failf([]string{"a challenge frame first"}, "bare client: %s (%v)", first, err)
			}
			ch, err = harness.ChallengeOf(f)
			c.Check(err == nil, "a challenge object", "%s: %v", f.Challenge, err)
		}
		cancel()
		var auth string
		if bareSession != nil {
			bareSession.Challenge = ch
			auth = bareSession.Authorization(ch, bareSession.Voucher(bareSession.NextAmount()))
		} else {
			auth = c.Unconnected(t).Authorization(ch, harness.TestPayload)
		}
		b, err := t.Dialect.Encode(frame.Frame{Kind: frame.KindCredential, Credential: auth})
		c.Check(err == nil, "a credential frame the suite can encode", "%v", err)
		c.T.Note("[bare] → %s", b)
		if err := bare.writeText(b); err != nil {
			c.Failf([]string{"the bare connection open for its credential"}, "%v", err)
		}
		c.T.Note("[bare] paid; it never reads again, and pings")
		until, budget := time.Now().Add(c.Timeouts.Stream), robustFloodBytes/robustPongFrame
		f := bare.flood(budget, c.Timeouts.Quiet, c.Timeouts.Reply, until)
		c.T.Note("[bare] %s", f)
		n, took := robustTimedServes(c, t)
		// The serve counts only if the target's reader stayed stopped
		// throughout it. More pings that the target does not take show
		// that; pings it takes mean its reader had paused (a loaded
		// target), not stopped with its send buffer full, so the flood goes
		// on until it stops again and the other connection is served again.
		for f.stalled {
			more := bare.flood(budget, c.Timeouts.Quiet, c.Timeouts.Reply, until)
			// Over TLS a timed-out write fails every later one at once, so
			// there the first stall stands.
			if more.stalled && more.wrote == 0 {
				break
			}
			c.T.Note("[bare] the target took %d more pings after the serve: it had paused, not stopped; %s", more.pings, more)
			f = more
			n, took = robustTimedServes(c, t)
		}
		c.Check(took <= alone+c.Timeouts.Reply, fmt.Sprintf("served within %s (the %s an unhindered connection took, plus the reply timeout)", (alone+c.Timeouts.Reply).Round(time.Millisecond), alone.Round(time.Millisecond)),
			"%d messages in %s, after the connection that never read sent %s", n, took.Round(time.Millisecond), f)
		c.Observe("the connection that paid and never read sent %s; meanwhile another connection was served completely (%d messages in %s; %s alone)", f, n, took.Round(time.Millisecond), alone.Round(time.Millisecond))
	}}

var robust007 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-007", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.A, Needs: harness.NeedsCharge, Schedule: harness.Alone,
	Title:       "100 concurrent charge flows complete",
	Requirement: "100 connections paying at once each receive their stream and a receipt.",
	Source:      "suite requirement: concurrency"},
	Run: func(c *harness.C) {
		t := c.Target()
		const flows = 100
		c.T.Note("%d concurrent charge flows, each with its own transcript; failing ones are quoted below", flows)
		out := make([]robustFlow, flows)
		var ready, done sync.WaitGroup
		start := make(chan struct{})
		ready.Add(flows)
		done.Add(flows)
		began := time.Now()
		for i := range flows {
			go func() {
				defer done.Done()
				out[i] = robustChargeFlow(c.Ctx, c.Timeouts, c.DialOptions(), t, fmt.Sprintf("f%03d", i+1), ready.Done, start)
			}()
		}
		ready.Wait()
		close(start)
		done.Wait()
		took := time.Since(began)
		var failed []string
		minN, maxN := -1, 0
		for i, r := range out {
			if r.err != nil {
				failed = append(failed, fmt.Sprintf("flow f%03d: %v", i+1, r.err))
				if len(failed) <= 3 {
					failed[len(failed)-1] += "\n" + r.tr.String()
				}
				continue
			}
			if minN < 0 || r.n < minN {
				minN = r.n
			}
			maxN = max(maxN, r.n)
		}
		if len(failed) > 0 {
			c.Failf([]string{fmt.Sprintf("all %d flows: messages, then a receipt", flows)}, "%d of %d flows failed:\n%s", len(failed), flows, strings.Join(failed, "\n"))
		}
		c.Observe("%d concurrent charge flows each got %d–%d messages and a receipt, in %s", flows, minN, maxN, took.Round(time.Millisecond))
	}}

var robust008 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-008", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession, Schedule: harness.Alone, Channels: harness.AllChannels,
	Title:       "concurrent sessions on every fixture channel are correct",
	Requirement: "One session per matching fixture channel, all at once, each delivers exactly its paid units and a correct receipt.",
	Source:      "protocol.md §6.6 (per-channel linearizability)"},
	Run: func(c *harness.C) {
		t := c.Target()
		var ss []*harness.Session
		c.Channel(t, harness.AnyChannel) // leases every open channel (catalogue: AllChannels)
		for _, ch := range c.Leased() {
			// Each stream starts on a connection of its own after the
			// drain, which may have taken most of a short stream (a target
			// streaming ten messages per connection); the drain left no
			// balance to take.
			s := c.OpenSession(harness.Only(ch))
			s.CloseNormally()
			ss = append(ss, c.Connect(ch))
		}
		// Every channel at once: k ticks each, exactly k messages each.
		const k = 3
		auths := make([]string, len(ss))
		amounts := make([]*big.Int, len(ss))
		before := make([]*big.Int, len(ss))
		for i, s := range ss {
			auths[i], amounts[i] = robustSessionAuth(s, k)
			before[i] = new(big.Int).Set(s.Acct.Spent)
		}
		for i, r := range robustRounds(c, ss, auths) {
			s := ss[i]
			if r.receipt != nil {
				c.NotApplicable("the target ended the stream on %s after %d messages, before the balance ran out; start it with more messages per connection (the reference streams 60)", s.Name, s.Delivered)
			}
			if r.err != "" {
				c.Failf([]string{fmt.Sprintf("on every channel at once: exactly %d messages, then needVoucher", k)}, "%s (%s): %s", s.Name, s.Ch.Name, r.err)
			}
			c.Check(r.n == k, fmt.Sprintf("exactly %d messages on %s (%s), then needVoucher", k, s.Name, s.Ch.Name), "%d messages, then needVoucher", r.n)
			s.CheckNeedVoucher(*r.nv, amounts[i])
			want := new(big.Int).Add(before[i], s.Units(k))
			c.Check(s.Acct.Spent.Cmp(want) == 0, fmt.Sprintf("spent %s on %s after %d units", want, s.Ch.Name, k), "needVoucher implies spent %s", s.Acct.Spent)
		}
		// Then every stream to its receipt, all at once, 20 ticks a round.
		const step = 20
		active := append([]*harness.Session(nil), ss...)
		var receipts []string
		for round := 0; len(active) > 0; round++ {
			if round >= 500 {
				c.Failf([]string{"a receipt within 500 vouchers per channel"}, "%d streams still running", len(active))
			}
			auths := make([]string, len(active))
			amounts := make([]*big.Int, len(active))
			before := make([]*big.Int, len(active))
			for i, s := range active {
				auths[i], amounts[i] = robustSessionAuth(s, step)
				before[i] = new(big.Int).Set(s.Acct.Spent)
			}
			var next []*harness.Session
			for i, r := range robustRounds(c, active, auths) {
				s := active[i]
				if r.err != "" {
					c.Failf([]string{"on every channel at once: messages, then a needVoucher or the receipt"}, "%s (%s): %s", s.Name, s.Ch.Name, r.err)
				}
				if r.nv != nil {
					c.Check(r.n == step, fmt.Sprintf("exactly %d messages on %s (%s), then needVoucher", step, s.Name, s.Ch.Name), "%d messages, then needVoucher", r.n)
					s.CheckNeedVoucher(*r.nv, amounts[i])
					next = append(next, s)
					continue
				}
				var rc mpp.SessionReceipt
				c.Check(json.Unmarshal(r.receipt, &rc) == nil, "a session receipt object", "%s", r.receipt)
				spent := new(big.Int).Add(before[i], s.Units(r.n))
				c.Check(r.n <= step, fmt.Sprintf("at most %d messages for %d ticks on %s", step, step, s.Ch.Name), "%d messages, then the receipt", r.n)
				c.Check(rc.Status == "success" && strings.EqualFold(rc.ChannelID, s.Ch.ID.String()),
					"a success receipt for channel "+s.Ch.ID.String(), "status %q, channelId %q", rc.Status, rc.ChannelID)
				c.Check(rc.Spent == spent.String(), fmt.Sprintf("receipt spent %s on %s (what was delivered)", spent, s.Ch.Name), "spent %q", rc.Spent)
				c.Check(rc.AcceptedCumulative == amounts[i].String(), fmt.Sprintf("receipt acceptedCumulative %s on %s (the last voucher)", amounts[i], s.Ch.Name), "acceptedCumulative %q", rc.AcceptedCumulative)
				s.AdoptReceipt(r.receipt)
				receipts = append(receipts, fmt.Sprintf("%s: %d messages, spent %s", s.Ch.Name, s.Delivered, rc.Spent))
			}
			active = next
		}
		c.Observe("%d sessions at once: each delivered exactly its paid units; receipts %s", len(ss), strings.Join(receipts, "; "))
	}}

var robust009 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-009", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "mistyped frame fields are survived",
	Requirement: "Frames whose discriminator or credential field has the wrong JSON type get an error or are ignored; the connection stays usable.",
	Source:      "ws-dialects.md §1 (deserialisation errors)"},
	Run: func(c *harness.C) {
		t := c.Target()
		cn := c.Dial(t)
		var got []string
		for _, text := range []string{
			cn.Frame(`{"$tag":5}`),
			cn.Frame(`{"$tag":"$cred","$cred":42}`),
			cn.Frame(`{"$tag":"$cred","$cred":null}`),
			cn.Frame(`{"$tag":["$cred"]}`),
		} {
			cn.SendText(text)
			got = append(got, text+" → "+robustAfter(cn, c.Timeouts.Quiet, false).String())
		}
		n, s := robustUsable(c, cn, "after mistyped frames")
		m := robustServesBeside(c, t, cn, s)
		c.Observe("%s; then served on the same connection (%d messages) and on a fresh one (%d)", strings.Join(got, "; "), n, m)
	}}

var robust010 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-010", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "empty and deeply nested frames are survived",
	Requirement: "An empty text frame and a 100,000-deep JSON array neither crash the target nor deliver data.",
	Source:      "suite requirement: bad input never crashes"},
	Run: func(c *harness.C) {
		t := c.Target()
		const depth = 100_000
		small := 15_000 // deeper than common parser limits, within a 32 KiB frame
		inputs := []struct{ name, text string }{
			{"empty text frame", ""},
			{"100,000-deep JSON array", strings.Repeat("[", depth) + strings.Repeat("]", depth)},
			{"100,000-deep JSON object", strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)},
			{"credential frame with a 15,000-deep array field",
				`{"$tag":"$cred","$cred":"Payment e30","x":` + strings.Repeat("[", small) + strings.Repeat("]", small) + `}`},
		}
		var got []string
		for _, in := range inputs {
			cn := c.Dial(t)
			note := ""
			if err := cn.Peer.SendText(c.Ctx, []byte(cn.Frame(in.text))); err != nil {
				note = " (write failed: the target closed first)"
			}
			r := robustAfter(cn, c.Timeouts.Quiet, true)
			if !r.closed {
				cn.ExpectOpen("or closed after the " + in.name)
			}
			got = append(got, fmt.Sprintf("%s%s: %s", in.name, note, r))
		}
		n := robustServes(c, t)
		c.Observe("%s; a fresh connection was served (%d messages)", strings.Join(got, "; "), n)
	}}

var robust011 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-011", Area: harness.AreaRobust, Level: harness.SHOULD, Dialects: harness.A, Needs: harness.NeedsAny,
	Title:       "ping before paying keeps the connection",
	Requirement: "A WebSocket ping before the credential is answered and does not end the connection.",
	Source:      "ws-dialects.md §6 A6"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		began := time.Now()
		cn.ExpectOpen("answering a ping before the credential")
		rtt := time.Since(began)
		cn.Quiet(c.Timeouts.Quiet, append([]harness.Outcome{harness.Closed}, harness.Paid...))
		s := c.PayValid(cn)
		n := c.ExpectServed(cn, s)
		c.Observe("ping before paying answered in %s; then served (%d messages) on the same connection", rtt.Round(time.Microsecond), n)
	}}

var robust012 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-012", Area: harness.AreaRobust, Level: harness.INFO, Dialects: harness.AB, Needs: harness.NeedsAny, Long: true,
	Title:       "silent client",
	Requirement: "Records what the target does with a connection that never pays, over a short window.",
	Source:      "ws-dialects.md §5 scenario 2, §6 B5"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		window := 2*c.Timeouts.Quiet + c.Timeouts.Reply
		var seen []string
		deadline := time.Now().Add(window)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			e, ok := cn.Next(left)
			if !ok {
				break
			}
			seen = append(seen, fmt.Sprintf("%s at %+.3fs", e, e.At.Seconds()))
			if e.Closed {
				break
			}
		}
		if len(seen) == 0 {
			c.Observe("silent client: no frame and no close within %s after the challenge (socket left open)", window)
			return
		}
		c.Observe("silent client, within %s after the challenge: %s", window, strings.Join(seen, "; "))
	}}

var robust013 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-013", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny, Schedule: harness.AfterHostile,
	Title:       "target still serves after the hostile cases",
	Requirement: "After every robustness case a fresh connection completes a paid flow.",
	Source:      "suite requirement: the target stays up"},
	Run: func(c *harness.C) {
		var got []string
		for _, t := range c.Targets() {
			if !harness.Payable(t) {
				got = append(got, t.URL+": not payable by the suite, skipped")
				continue
			}
			n := robustServes(c, t)
			got = append(got, fmt.Sprintf("%s: served %d messages", t.URL, n))
		}
		c.Observe("after the robustness cases: %s", strings.Join(got, "; "))
	}}

var robust014 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-014", Area: harness.AreaRobust, Level: harness.MUST, Dialects: harness.B, Needs: harness.NeedsAny, Schedule: harness.Alone,
	Title:       "more than 32 queued payment frames is 429",
	Requirement: "40 authorization frames sent at once get payment-error with status 429 and a close 1008, and the target keeps serving.",
	Source:      "ws-dialects.md §2.3 (work queue), §5 scenario 16"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		accepted := new(big.Int).Set(s.Acct.Accepted)
		s.Close()
		t := c.Connect(s.Ch)
		// Equal vouchers: each is a valid idempotent retry, so only the
		// queue limit can refuse them.
		auth := t.Authorization(t.Echo(), t.Voucher(accepted))
		sent := 0
		for ; sent < 100; sent++ {
			if t.Peer.Send(c.Ctx, frame.Frame{Kind: frame.KindCredential, Credential: auth}) != nil {
				break
			}
		}
		deadline := time.Now().Add(c.Timeouts.Stream)
		var saw []string
		for time.Now().Before(deadline) {
			e, ok := t.Next(time.Until(deadline))
			if !ok {
				break
			}
			switch {
			case e.IsFrame(frame.KindError):
				c.Check(e.Frame.Status == http.StatusTooManyRequests, "payment-error with status 429", "%s", e)
				e, _ = t.Expect(c.Timeouts.Reply, []harness.Outcome{harness.Closed}, []harness.Outcome{harness.DataFrame})
				c.Check(e.Code == websocket.StatusPolicyViolation, "close 1008 after the 429", "%s", e)
				c.Observe("%d frames written; %d receipts, then 429 and %s", sent, t.Seen[frame.KindReceipt], e)
				robustServes(c, c.Target())
				return
			case e.Closed:
				c.Failf([]string{"payment-error 429, then close 1008"}, "%s after %s", e, strings.Join(saw, ", "))
			}
			saw = append(saw, string(e.Frame.Kind))
		}
		c.Failf([]string{"payment-error 429, then close 1008"}, "%d frames written; %d receipts, no 429 within %s", sent, t.Seen[frame.KindReceipt], c.Timeouts.Stream)
	}}

var robust015 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-015", Area: harness.AreaRobust, Level: harness.SHOULD, Dialects: harness.B, Needs: harness.NeedsSession,
	Title:       "a close request before authorization does not poison the connection",
	Requirement: "A payment-close-request sent before any authorization leaves the connection usable: a voucher then starts the stream.",
	Source:      "ws-dialects.md §5 scenario 20, §6 B10"},
	Run: func(c *harness.C) {
		t := c.TargetFor(harness.NeedsSession)
		s := c.Connect(c.Channel(t, harness.AnyChannel))
		s.Conn.Send(frame.Frame{Kind: frame.KindCloseRequest})
		s.Quiet(c.Timeouts.Quiet, []harness.Outcome{harness.AnyFrame})
		amount := s.NextAmount()
		s.Send(s.Voucher(amount))
		s.Paid = amount
		s.ExpectAck(amount)
		n, nv := s.ReadUntilNeedVoucher()
		s.CheckNeedVoucher(nv.Frame.NeedVoucher, s.Paid)
		c.Observe("close request first, then a voucher: %d messages streamed", n)
	}}

var robust016 = harness.Case{Meta: harness.Meta{ID: "WS-ROBUST-016", Area: harness.AreaRobust, Level: harness.INFO, Dialects: harness.B, Needs: harness.NeedsSession,
	Title:       "binary frames",
	Requirement: "Records whether a binary frame carrying an authorization is processed as its text (mppx) or refused.",
	Source:      "ws-dialects.md §2.3 (binary decoded as UTF-8), §5 scenario 15"},
	Run: func(c *harness.C) {
		t := c.TargetFor(harness.NeedsSession)
		s := c.Connect(c.Channel(t, harness.AnyChannel))
		amount := s.NextAmount()
		auth := s.Authorization(s.Echo(), s.Voucher(amount))
		b, _ := frame.B.Encode(frame.Frame{Kind: frame.KindCredential, Credential: auth})
		if err := s.Peer.SendBinary(c.Ctx, b); err != nil {
			c.Failf([]string{"the connection open for a binary frame"}, "%v", err)
		}
		e, ok := s.Next(c.Timeouts.Reply)
		switch {
		case ok && s.IsAck(e):
			s.Paid = amount
			n, nv := s.ReadUntilNeedVoucher()
			s.CheckNeedVoucher(nv.Frame.NeedVoucher, s.Paid)
			c.Observe("binary authorization processed as text: receipt, then %d messages", n)
		case ok:
			c.Observe("binary authorization refused: %s", e)
		default:
			c.Observe("binary authorization ignored (silence for %s)", c.Timeouts.Reply)
		}
	}}

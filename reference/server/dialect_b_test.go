package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
)

// Dialect B (mppx) transport: HTTP 402 probe, client-first authorization
// frames, a receipt per authorization, payment-error + close 1008 on
// rejection, and the close handshake (ws-dialects.md §2).

// skewClock is a clock a test may move forward while the server reads it.
type skewClock struct{ skew atomic.Int64 }

func (c *skewClock) now() time.Time { return time.Now().Add(time.Duration(c.skew.Load())) }

func (c *skewClock) advance(d time.Duration) { c.skew.Add(int64(d)) }

func startB(t *testing.T, cfg server.Config) string {
	t.Helper()
	cfg.Dialect = frame.B
	return start(t, cfg)
}

func httpOf(url string) string { return "http" + strings.TrimPrefix(url, "ws") }

// probe GETs the socket URL and returns its one session challenge.
func probe(t *testing.T, url string) mpp.Challenge {
	t.Helper()
	resp, err := http.Get(httpOf(url))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("probe: status %d, want 402", resp.StatusCode)
	}
	chs, err := mpp.ParseChallenges(resp.Header.Get("WWW-Authenticate"))
	if err != nil || len(chs) != 1 {
		t.Fatalf("probe: %d challenges, %v", len(chs), err)
	}
	return chs[0]
}

// bconn is a bare dialect B test client. Frames are read in the background;
// the close that ends the connection is kept in closeErr.
type bconn struct {
	t        *testing.T
	ws       *websocket.Conn
	frames   chan frame.Frame
	closeErr error // valid once frames is closed
}

func dialB(t *testing.T, url string) *bconn {
	t.Helper()
	ws, _, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // a reader stuck on a full channel ends with the test
	t.Cleanup(func() { close(done); ws.CloseNow() })
	c := &bconn{t: t, ws: ws, frames: make(chan frame.Frame, 1024)}
	go func() {
		defer close(c.frames)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				c.closeErr = err
				return
			}
			f, err := frame.B.Decode(b, frame.FromServer)
			if err != nil {
				t.Errorf("undecodable server frame %s: %v", b, err)
				return
			}
			select {
			case c.frames <- f:
			case <-done:
				return
			}
		}
	}()
	return c
}

func (c *bconn) next() frame.Frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection closed: %v", c.closeErr)
		}
		return f
	case <-time.After(5 * time.Second):
		c.t.Fatal("no frame within 5s")
	}
	return frame.Frame{}
}

// nextKind expects the next frame to be of kind k.
func (c *bconn) nextKind(k frame.Kind) frame.Frame {
	c.t.Helper()
	f := c.next()
	if f.Kind != k {
		c.t.Fatalf("got %s frame %+v, want %s", f.Kind, f, k)
	}
	return f
}

func (c *bconn) write(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	if err := c.ws.Write(context.Background(), typ, b); err != nil {
		c.t.Fatal(err)
	}
}

// authorization encodes an authorization frame for echo and payload.
func authorization(t *testing.T, echo mpp.Challenge, payload any) []byte {
	t.Helper()
	raw, _ := json.Marshal(payload)
	auth, err := mpp.FormatAuthorization(mpp.Credential{Challenge: echo, Payload: raw})
	if err != nil {
		t.Fatal(err)
	}
	return rawAuthorization(auth)
}

func rawAuthorization(auth string) []byte {
	b, _ := frame.B.Encode(frame.Frame{Kind: frame.KindCredential, Credential: auth})
	return b
}

func (c *bconn) auth(echo mpp.Challenge, payload any) {
	c.t.Helper()
	c.write(websocket.MessageText, authorization(c.t, echo, payload))
}

func (c *bconn) closeRequest() {
	c.t.Helper()
	c.write(websocket.MessageText, []byte(`{"mpp":"payment-close-request"}`))
}

// receipt expects a payment-receipt and returns it.
func (c *bconn) receipt() mpp.SessionReceipt {
	c.t.Helper()
	return decodeReceipt(c.t, c.nextKind(frame.KindReceipt))
}

func decodeReceipt(t *testing.T, f frame.Frame) mpp.SessionReceipt {
	t.Helper()
	var rc mpp.SessionReceipt
	if err := json.Unmarshal(f.Receipt, &rc); err != nil {
		t.Fatalf("%s data %s: %v", f.Kind, f.Receipt, err)
	}
	if rc.Method != "tempo" || rc.Intent != "session" || rc.Status != "success" || rc.Reference != rc.ChannelID {
		t.Fatalf("%s data %s: not a tempo session receipt", f.Kind, f.Receipt)
	}
	return rc
}

// messages expects n message frames.
func (c *bconn) messages(n int) {
	c.t.Helper()
	for i := 0; i < n; i++ {
		c.nextKind(frame.KindMessage)
	}
}

// closed waits for the server's close and returns it.
func (c *bconn) closed() websocket.CloseError {
	c.t.Helper()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				var ce websocket.CloseError
				if !errors.As(c.closeErr, &ce) {
					c.t.Fatalf("connection ended without a close frame: %v", c.closeErr)
				}
				return ce
			}
			c.t.Fatalf("got %s frame, want the close", f.Kind)
		case <-time.After(5 * time.Second):
			c.t.Fatal("no close within 5s")
		}
	}
}

// rejected expects payment-error with status and a message containing
// want, then close 1008 with a reason that fits RFC 6455, and nothing else.
func (c *bconn) rejected(status int, want string) frame.Frame {
	c.t.Helper()
	f := c.next()
	if f.Kind != frame.KindError || f.Status != status || !strings.Contains(f.Error, want) {
		c.t.Fatalf("got %s frame %d %q, want payment-error %d containing %q", f.Kind, f.Status, f.Error, status, want)
	}
	ce := c.closed()
	if ce.Code != websocket.StatusPolicyViolation || len(ce.Reason) > 123 || ce.Reason == "" {
		c.t.Fatalf("close %d %q (%d bytes), want 1008 with a reason of at most 123 bytes", ce.Code, ce.Reason, len(ce.Reason))
	}
	return f
}

// rejectedProblem expects a rejection whose message is the problem+json
// of slug.
func (c *bconn) rejectedProblem(slug string) {
	c.t.Helper()
	f := c.rejected(http.StatusPaymentRequired, slug)
	var p mpp.Problem
	if err := json.Unmarshal([]byte(f.Error), &p); err != nil {
		c.t.Fatalf("payment-error message %q is not problem+json: %v", f.Error, err)
	}
	if p.Type != mpp.ProblemBase+slug || p.Status != http.StatusPaymentRequired || p.Title == "" {
		c.t.Fatalf("problem %+v, want type %s%s status 402", p, mpp.ProblemBase, slug)
	}
}

func TestDialectBProbe(t *testing.T) {
	url := startB(t, server.Config{Messages: 3, Tick: big.NewInt(10), ChallengeTTL: time.Minute})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		t.Run(method, func(t *testing.T) {
			req, err := http.NewRequest(method, httpOf(url)+"/some/path?q=1", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d, Cache-Control %q; want 402, no-store", resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
			chs, err := mpp.ParseChallenges(resp.Header.Get("WWW-Authenticate"))
			if err != nil || len(chs) != 1 {
				t.Fatalf("WWW-Authenticate %q: %d challenges, %v", resp.Header.Get("WWW-Authenticate"), len(chs), err)
			}
			c := chs[0]
			if c.Method != "tempo" || c.Intent != "session" || !c.VerifyID(secret) {
				t.Fatalf("challenge %+v: want a tempo/session challenge whose id verifies", c)
			}
			exp, err := c.ExpiresAt()
			if err != nil || exp.Before(time.Now()) || exp.After(time.Now().Add(time.Minute+time.Second)) {
				t.Fatalf("expires %q (%v), want about a minute from now", c.Expires, err)
			}
			var req2 tempo.SessionRequest
			if err := mpp.DecodeJSON(c.Request, &req2); err != nil || req2.Amount != "10" || req2.MethodDetails.SessionProtocol != tempo.V2 {
				t.Fatalf("request %+v, %v; want amount 10, v2", req2, err)
			}
		})
	}
	t.Run("POST", func(t *testing.T) {
		resp, err := http.Post(httpOf(url), "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("status %d Allow %q, want 405 GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
	t.Run("upgrade on the same URL", func(t *testing.T) {
		ch := probe(t, url)
		c := dialB(t, url)
		c.auth(ch, voucher(t, "v2-payer-signs", 30, ""))
		if rc := c.receipt(); rc.ChallengeID != ch.ID || rc.AcceptedCumulative != "30" || rc.Spent != "0" {
			t.Fatalf("receipt %+v, want challenge %s accepted 30 spent 0", rc, ch.ID)
		}
		c.messages(3)
		c.nextKind(frame.KindCloseReady)
	})
}

func TestDialectBSilentBeforeAuthorization(t *testing.T) {
	url := startB(t, server.Config{Messages: 1, Tick: big.NewInt(10)})
	c := dialB(t, url)
	select {
	case f, ok := <-c.frames:
		t.Fatalf("server spoke first: %+v (open %t, %v)", f, ok, c.closeErr)
	case <-time.After(300 * time.Millisecond):
	}
	// Still open and usable.
	c.auth(probe(t, url), voucher(t, "v2-payer-signs", 10, ""))
	c.receipt()
	c.messages(1)
}

func TestDialectBRejections(t *testing.T) {
	clk := &skewClock{}
	url := startB(t, server.Config{Messages: 10, Tick: big.NewInt(10), ChallengeTTL: time.Minute, Now: clk.now})
	cases := []struct {
		name    string
		tamper  func(*mpp.Challenge)
		payload tempo.VoucherPayload
		slug    string
	}{
		{"forged id", func(e *mpp.Challenge) { e.ID = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }, voucher(t, "v2-payer-signs", 30, ""), mpp.SlugInvalidChallenge},
		{"tampered request", func(e *mpp.Challenge) { e.Request, _ = mpp.EncodeJSON(map[string]string{"amount": "1"}) }, voucher(t, "v2-payer-signs", 30, ""), mpp.SlugInvalidChallenge},
		{"expired", nil, voucher(t, "v2-payer-signs", 30, ""), mpp.SlugPaymentExpired},
		{"over deposit", nil, voucher(t, "v2-small", 20000001, ""), mpp.SlugAmountExceedsDeposit},
		{"wrong signer", nil, voucher(t, "v2-payer-signs", 30, "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"), mpp.SlugInvalidSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			echo := probe(t, url)
			if tc.tamper != nil {
				tc.tamper(&echo)
			}
			if tc.slug == mpp.SlugPaymentExpired {
				clk.advance(2 * time.Minute)
			}
			c := dialB(t, url)
			c.auth(echo, tc.payload)
			c.rejectedProblem(tc.slug)
		})
	}
}

func TestDialectBMalformedAuthorization(t *testing.T) {
	url := startB(t, server.Config{Messages: 1, Tick: big.NewInt(10)})
	noChannel := authorization(t, probe(t, url), map[string]string{"action": "voucher", "cumulativeAmount": "10"})
	cases := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"bad base64", rawAuthorization("Payment !!!"), ""},
		{"no Payment scheme", rawAuthorization("Bearer abc"), ""},
		{"payload without channelId", noChannel, "No session credential context available."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialB(t, url)
			c.write(websocket.MessageText, tc.frame)
			f := c.next()
			if f.Kind != frame.KindError || f.Status != http.StatusBadRequest || !strings.Contains(f.Error, tc.want) {
				t.Fatalf("got %s %d %q, want payment-error 400 %q", f.Kind, f.Status, f.Error, tc.want)
			}
			if ce := c.closed(); ce.Code != websocket.StatusPolicyViolation || ce.Reason != "invalid payment message" {
				t.Fatalf("close %d %q, want 1008 \"invalid payment message\"", ce.Code, ce.Reason)
			}
		})
	}
}

func TestDialectBFlood(t *testing.T) {
	// A fresh server: the first voucher of a signer builds its verification
	// table (milliseconds), so the queue fills behind it.
	url := startB(t, server.Config{Messages: 1000, Tick: big.NewInt(10)})
	c := dialB(t, url)
	b := authorization(t, probe(t, url), voucher(t, "v2-payer-signs", 100, ""))
	for i := 0; i < 40; i++ {
		c.write(websocket.MessageText, b)
	}
	for {
		f := c.next()
		if f.Kind == frame.KindReceipt || f.Kind == frame.KindMessage {
			continue // the work done before the queue overflowed
		}
		if f.Kind != frame.KindError || f.Status != http.StatusTooManyRequests || f.Error != "too many queued payment messages" {
			t.Fatalf("got %s %d %q, want payment-error 429 \"too many queued payment messages\"", f.Kind, f.Status, f.Error)
		}
		break
	}
	if ce := c.closed(); ce.Code != websocket.StatusPolicyViolation || ce.Reason != "too many queued payment messages" {
		t.Fatalf("close %d %q, want 1008 \"too many queued payment messages\"", ce.Code, ce.Reason)
	}
}

func TestDialectBBinaryAuthorization(t *testing.T) {
	url := startB(t, server.Config{Messages: 2, Tick: big.NewInt(10)})
	c := dialB(t, url)
	c.write(websocket.MessageBinary, authorization(t, probe(t, url), voucher(t, "v2-payer-signs", 20, "")))
	if rc := c.receipt(); rc.AcceptedCumulative != "20" {
		t.Fatalf("receipt %+v, want accepted 20", rc)
	}
	c.messages(2)
	c.nextKind(frame.KindCloseReady)
}

func TestDialectBIdempotentVoucher(t *testing.T) {
	url := startB(t, server.Config{Messages: 10, Tick: big.NewInt(10)})
	first := dialB(t, url)
	first.auth(probe(t, url), voucher(t, "v2-payer-signs", 30, ""))
	first.receipt()
	first.messages(3)
	if nv := first.nextKind(frame.KindNeedVoucher).NeedVoucher; nv.RequiredCumulative != "40" || nv.AcceptedCumulative != "30" {
		t.Fatalf("need-voucher %+v, want required 40 accepted 30", nv)
	}
	first.ws.Close(websocket.StatusNormalClosure, "")

	// The same voucher on a new socket is a retry: acknowledged, nothing
	// changes, and the stream asks for more at once.
	ch := probe(t, url)
	c := dialB(t, url)
	c.auth(ch, voucher(t, "v2-payer-signs", 30, ""))
	if rc := c.receipt(); rc.AcceptedCumulative != "30" || rc.Spent != "30" || rc.ChallengeID != ch.ID {
		t.Fatalf("receipt %+v, want accepted 30 spent 30 for challenge %s", rc, ch.ID)
	}
	if nv := c.nextKind(frame.KindNeedVoucher).NeedVoucher; nv.RequiredCumulative != "40" || nv.AcceptedCumulative != "30" {
		t.Fatalf("need-voucher %+v, want required 40 accepted 30", nv)
	}
}

func TestDialectBCloseRequest(t *testing.T) {
	t.Run("mid-stream", func(t *testing.T) {
		url := startB(t, server.Config{Messages: 100000, Tick: big.NewInt(10)})
		c := dialB(t, url)
		ch := probe(t, url)
		c.auth(ch, voucher(t, "v2-payer-signs", 10*100000, ""))
		c.receipt()
		c.messages(5)
		c.closeRequest()
		delivered := 5
		var ready frame.Frame
		for ready.Kind != frame.KindCloseReady {
			if ready = c.next(); ready.Kind == frame.KindMessage {
				delivered++
			}
		}
		rc := decodeReceipt(t, ready)
		if want := big.NewInt(int64(10 * delivered)).String(); rc.Spent != want || rc.ChallengeID != ch.ID || rc.TxHash != "" {
			t.Fatalf("close-ready %+v after %d messages, want spent %s, challenge %s, no txHash", rc, delivered, want, ch.ID)
		}
		if delivered >= 100000 {
			t.Fatal("the stream ran to its end: the close request did not stop it")
		}
		// The close credential settles the channel at spent.
		c.auth(ch, closePayload(t, "v2-payer-signs", 10*int64(delivered)))
		final := c.receipt()
		if final.TxHash == "" || final.Spent != rc.Spent {
			t.Fatalf("settlement receipt %+v, want a txHash and spent %s", final, rc.Spent)
		}
		if ce := c.closed(); ce.Code != websocket.StatusNormalClosure || ce.Reason != "payment session closed" {
			t.Fatalf("close %d %q, want 1000 \"payment session closed\"", ce.Code, ce.Reason)
		}
	})
	t.Run("while waiting for a voucher", func(t *testing.T) {
		url := startB(t, server.Config{Messages: 10, Tick: big.NewInt(10)})
		c := dialB(t, url)
		c.auth(probe(t, url), voucher(t, "v2-payer-signs", 30, ""))
		c.receipt()
		c.messages(3)
		c.nextKind(frame.KindNeedVoucher)
		c.closeRequest()
		if rc := decodeReceipt(t, c.nextKind(frame.KindCloseReady)); rc.Spent != "30" || rc.AcceptedCumulative != "30" {
			t.Fatalf("close-ready %+v, want spent 30 accepted 30", rc)
		}
	})
	t.Run("before authorization", func(t *testing.T) {
		// mppx bug B10: an early close request poisons the socket. Here it
		// is ignored and a later voucher starts the stream.
		url := startB(t, server.Config{Messages: 3, Tick: big.NewInt(10)})
		c := dialB(t, url)
		c.closeRequest()
		select {
		case f := <-c.frames:
			t.Fatalf("got %s frame for a close request before authorization", f.Kind)
		case <-time.After(100 * time.Millisecond):
		}
		c.auth(probe(t, url), voucher(t, "v2-payer-signs", 30, ""))
		c.receipt()
		c.messages(3)
		if rc := decodeReceipt(t, c.nextKind(frame.KindCloseReady)); rc.Spent != "30" {
			t.Fatalf("close-ready %+v, want spent 30", rc)
		}
	})
}

func closePayload(t *testing.T, name string, amount int64) tempo.VoucherPayload {
	t.Helper()
	p := voucher(t, name, amount, "")
	p.Action = "close"
	return p
}

func TestDialectBTopUp(t *testing.T) {
	url := startB(t, server.Config{Messages: 10, Tick: big.NewInt(10)})
	ch := probe(t, url)
	c := dialB(t, url)
	c.auth(ch, voucher(t, "v2-small", 30, ""))
	c.receipt()
	c.messages(3)
	if nv := c.nextKind(frame.KindNeedVoucher).NeedVoucher; nv.Deposit != "20000000" {
		t.Fatalf("need-voucher deposit %s, want the fixture's 20000000", nv.Deposit)
	}
	v := voucher(t, "v2-small", 30, "")
	c.auth(ch, map[string]any{
		"action": "topUp", "type": "transaction", "channelId": v.ChannelID,
		"transaction": "0x76c0ffee", "additionalDeposit": "5000000", "descriptor": v.Descriptor,
	})
	rc := c.receipt()
	if rc.TxHash != tempo.Keccak256([]byte{0x76, 0xc0, 0xff, 0xee}).String() || rc.AcceptedCumulative != "30" || rc.Spent != "30" {
		t.Fatalf("top-up receipt %+v, want the transaction's hash and unchanged amounts", rc)
	}
	// The top-up funds nothing by itself; the next voucher does, and the
	// shortage after it reports the new deposit.
	c.auth(ch, voucher(t, "v2-small", 50, ""))
	c.receipt()
	c.messages(2)
	if nv := c.nextKind(frame.KindNeedVoucher).NeedVoucher; nv.Deposit != "25000000" || nv.RequiredCumulative != "60" {
		t.Fatalf("need-voucher %+v, want deposit 25000000 required 60", nv)
	}
}

func TestDialectBPinAmount(t *testing.T) {
	url := startB(t, server.Config{Messages: 1, Tick: big.NewInt(10), PinAmount: true})
	echo := probe(t, url)
	echo.Request, _ = mpp.EncodeJSON(map[string]string{"amount": "1"})
	c := dialB(t, url)
	c.auth(echo, voucher(t, "v2-payer-signs", 10, ""))
	const msg = "credential amount does not match this endpoint"
	if f := c.rejected(http.StatusPaymentRequired, msg); f.Error != msg {
		t.Fatalf("payment-error %q, want %q", f.Error, msg)
	}
}

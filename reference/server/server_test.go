package server_test

import (
	"context"
	"encoding/json"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
)

var secret = []byte("server-test-secret")

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func start(t *testing.T, cfg server.Config) string {
	t.Helper()
	cfg.Secret = secret
	for _, ch := range fixtures.Default() {
		cfg.Channels = append(cfg.Channels, ch.Channel)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// conn is a bare test client.
type conn struct {
	t         *testing.T
	ws        *websocket.Conn
	challenge mpp.Challenge
	frames    chan frame.Frame
}

func dial(t *testing.T, url string) *conn {
	t.Helper()
	ws, _, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // a reader stuck on a full channel ends with the test
	t.Cleanup(func() { close(done); ws.CloseNow() })
	c := &conn{t: t, ws: ws, frames: make(chan frame.Frame, 1024)}
	go func() {
		defer close(c.frames)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			f, err := frame.A.Decode(b, frame.FromServer)
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
	f := c.next()
	if f.Kind != frame.KindChallenge {
		t.Fatalf("first frame %s, want challenge", f.Kind)
	}
	if err := json.Unmarshal(f.Challenge, &c.challenge); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *conn) next() frame.Frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatal("connection closed")
		}
		return f
	case <-time.After(5 * time.Second):
		c.t.Fatal("no frame within 5s")
	}
	return frame.Frame{}
}

func (c *conn) send(echo mpp.Challenge, payload any) {
	c.t.Helper()
	raw, _ := json.Marshal(payload)
	auth, err := mpp.FormatAuthorization(mpp.Credential{Challenge: echo, Payload: raw})
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := frame.A.Encode(frame.Frame{Kind: frame.KindCredential, Credential: auth})
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// rejected expects an error frame naming want, then no data for a while.
func (c *conn) rejected(want string) {
	c.t.Helper()
	f := c.next()
	if f.Kind != frame.KindError || !strings.Contains(f.Error, want) {
		c.t.Fatalf("got %s frame %q, want an error containing %q", f.Kind, f.Error, want)
	}
	c.quiet()
}

// quiet expects no message or receipt frame for 200ms.
func (c *conn) quiet() {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if ok && (f.Kind == frame.KindMessage || f.Kind == frame.KindReceipt) {
			c.t.Fatalf("unpaid %s frame delivered", f.Kind)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

func voucher(t testing.TB, name string, amount int64, key string) tempo.VoucherPayload {
	t.Helper()
	var ch fixtures.Channel
	for _, c := range fixtures.Default() {
		if c.Name == name {
			ch = c
		}
	}
	k := ch.SignerKey
	if key != "" {
		var err error
		if k, err = tempo.ParsePrivateKey(key); err != nil {
			t.Fatal(err)
		}
	}
	sig, err := tempo.SignVoucher(k, ch.Domain(), ch.ID, big.NewInt(amount))
	if err != nil {
		t.Fatal(err)
	}
	d := tempo.DescriptorOf(ch.Channel)
	return tempo.VoucherPayload{Action: "voucher", ChannelID: ch.ID.String(), CumulativeAmount: big.NewInt(amount).String(), Signature: tempo.FormatSignature(sig), Descriptor: &d}
}

func TestChallengeRejections(t *testing.T) {
	clk := &clock{t: time.Now()}
	url := start(t, server.Config{Intent: server.IntentCharge, Now: clk.now, ChallengeTTL: time.Minute})
	payload := map[string]string{"proof": "x"}

	t.Run("forged id", func(t *testing.T) {
		c := dial(t, url)
		echo := c.challenge
		echo.ID = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		c.send(echo, payload)
		c.rejected("invalid-challenge")
	})
	tamper := map[string]func(*mpp.Challenge){
		"realm":   func(e *mpp.Challenge) { e.Realm = "evil.example" },
		"method":  func(e *mpp.Challenge) { e.Method = "tempo" },
		"intent":  func(e *mpp.Challenge) { e.Intent = "session" },
		"request": func(e *mpp.Challenge) { e.Request, _ = mpp.EncodeJSON(map[string]string{"amount": "1"}) },
		"expires": func(e *mpp.Challenge) { e.Expires = mpp.FormatExpires(clk.t.Add(time.Hour)) },
		"opaque":  func(e *mpp.Challenge) { e.Opaque = "" },
	}
	for field, f := range tamper {
		t.Run("tampered "+field, func(t *testing.T) {
			c := dial(t, url)
			echo := c.challenge
			f(&echo)
			c.send(echo, payload)
			c.rejected("invalid-challenge")
		})
	}
	t.Run("another connection's challenge", func(t *testing.T) {
		other := dial(t, url)
		c := dial(t, url)
		c.send(other.challenge, payload)
		c.rejected("not issued on this connection")
	})
	t.Run("replay after success", func(t *testing.T) {
		first := dial(t, url)
		first.send(first.challenge, payload)
		for f := first.next(); f.Kind != frame.KindReceipt; f = first.next() {
		}
		c := dial(t, url)
		c.send(first.challenge, payload)
		c.rejected("not issued on this connection")
	})
	t.Run("expired", func(t *testing.T) {
		c := dial(t, url)
		clk.t = clk.t.Add(2 * time.Minute)
		defer func() { clk.t = clk.t.Add(-2 * time.Minute) }()
		c.send(c.challenge, payload)
		c.rejected("payment-expired")
	})
	t.Run("retry after rejection is served", func(t *testing.T) {
		c := dial(t, url)
		bad := c.challenge
		bad.Realm = "x"
		c.send(bad, payload)
		c.rejected("invalid-challenge")
		c.send(c.challenge, payload)
		if f := c.next(); f.Kind != frame.KindMessage {
			t.Fatalf("got %s after a valid retry, want message", f.Kind)
		}
	})
}

func TestVoucherRejections(t *testing.T) {
	url := start(t, server.Config{Intent: server.IntentSession, Messages: 100, Tick: big.NewInt(10)})
	// Open v2-payer-signs with 30: three units, then a needVoucher.
	c := dial(t, url)
	c.send(c.challenge, voucher(t, "v2-payer-signs", 30, ""))
	for i := 0; i < 3; i++ {
		if f := c.next(); f.Kind != frame.KindMessage {
			t.Fatalf("unit %d: got %s", i+1, f.Kind)
		}
	}
	nv := c.next()
	if nv.Kind != frame.KindNeedVoucher || nv.NeedVoucher.RequiredCumulative != "40" || nv.NeedVoucher.AcceptedCumulative != "30" || nv.NeedVoucher.Deposit != "100000000" {
		t.Fatalf("got %+v, want needVoucher required 40 accepted 30 deposit 100000000", nv)
	}
	cases := []struct {
		name string
		p    tempo.VoucherPayload
		want string
	}{
		{"equal", voucher(t, "v2-payer-signs", 30, ""), "delta-too-small"},
		{"decreasing", voucher(t, "v2-payer-signs", 20, ""), "below accepted"},
		{"over deposit", voucher(t, "v2-payer-signs", 100000001, ""), "amount-exceeds-deposit"},
		{"wrong signer", voucher(t, "v2-payer-signs", 50, "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"), "invalid-signature"},
		{"other channel", voucher(t, "v2-small", 50, ""), "meters channel"},
		{"v1 channel on a v2 offer", voucher(t, "v1-payer-signs", 50, ""), "does not match"},
	}
	for _, tc := range cases {
		c.send(c.challenge, tc.p)
		c.rejected(tc.want)
	}
	bad := voucher(t, "v2-payer-signs", 50, "")
	bad.Signature = bad.Signature[:len(bad.Signature)-2] + "1b"
	c.send(c.challenge, bad)
	c.rejected("invalid-signature")
	// A sufficient voucher resumes the stream with exactly the units it pays.
	c.send(c.challenge, voucher(t, "v2-payer-signs", 50, ""))
	for i := 0; i < 2; i++ {
		if f := c.next(); f.Kind != frame.KindMessage {
			t.Fatalf("resumed unit %d: got %s", i+1, f.Kind)
		}
	}
	if f := c.next(); f.Kind != frame.KindNeedVoucher || f.NeedVoucher.RequiredCumulative != "60" {
		t.Fatalf("got %+v, want needVoucher required 60", f)
	}
}

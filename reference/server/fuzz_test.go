package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/server"
)

// fuzzTarget is one real reference server on a loopback socket.
type fuzzTarget struct {
	d    frame.Dialect
	addr string
	echo string // dialect B: a probed challenge, as JSON; A issues one per connection
}

func startFuzzTarget(f *testing.F, d frame.Dialect) *fuzzTarget {
	cfg := server.Config{
		Secret: secret, Dialect: d, Messages: 3, Tick: big.NewInt(10), ChallengeTTL: time.Hour,
		// Iterations come fast and from one address: the caps are not
		// what is fuzzed here.
		Limits: server.Limits{MaxConnections: 1 << 14, MaxConnectionsPerAddr: 1 << 14},
	}
	for _, ch := range fixtures.Default() {
		cfg.Channels = append(cfg.Channels, ch.Channel)
	}
	srv, err := server.New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	hs, capped, err := server.NewHTTP(srv, ln, srv.Config().Limits)
	if err != nil {
		f.Fatal(err)
	}
	go hs.Serve(capped)
	f.Cleanup(func() { hs.Close(); srv.Close() })
	ft := &fuzzTarget{d: d, addr: ln.Addr().String()}
	if d == frame.B {
		resp, err := http.Get("http://" + ft.addr + "/")
		if err != nil {
			f.Fatal(err)
		}
		resp.Body.Close()
		chs, err := mpp.ParseChallenges(resp.Header.Get("WWW-Authenticate"))
		if err != nil || len(chs) != 1 {
			f.Fatalf("probe: %v", err)
		}
		b, _ := json.Marshal(chs[0])
		ft.echo = string(b)
	}
	return ft
}

// Fuzz input modes: how the input becomes what the client sends.
const (
	modeFrame      = iota // the input is the frame
	modeCredential        // the input is credential JSON; $ECHO is the live challenge
	modePayload           // the input is the payload of a credential echoing the live challenge
	modes
)

// closeCodes are the closes a reference server may end a fuzzed connection
// with: normal (a paid stream ran to its end), unsupported data (binary in
// A), invalid payload data (bad UTF-8), policy (too many rejections or
// pending credentials, a rejected B authorization, timeouts) and too big.
var closeCodes = map[websocket.StatusCode]bool{
	websocket.StatusNormalClosure: true, websocket.StatusUnsupportedData: true,
	websocket.StatusInvalidFramePayloadData: true, websocket.StatusPolicyViolation: true,
	websocket.StatusMessageTooBig: true,
}

// run sends one fuzzed frame on a fresh connection and reads the server's
// answer until it closes or falls silent. Every frame the server sends must
// decode in its dialect, and it may only close with a code of closeCodes.
func (ft *fuzzTarget) run(mode byte, binary bool, in []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+ft.addr+"/", nil)
	if err != nil {
		return fmt.Errorf("server unreachable: %w", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	echo := ft.echo
	if ft.d == frame.A {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("no challenge: %w", err)
		}
		f, err := frame.A.Decode(b, frame.FromServer)
		if err != nil || f.Kind != frame.KindChallenge {
			return fmt.Errorf("first frame %q (%v), want a challenge", b, err)
		}
		echo = string(f.Challenge)
	}
	msg := in
	switch mode % modes {
	case modeCredential:
		msg = ft.credential(bytes.ReplaceAll(in, []byte("$ECHO"), []byte(echo)))
	case modePayload:
		msg = ft.credential([]byte(`{"challenge":` + echo + `,"payload":` + string(in) + `}`))
	}
	typ := websocket.MessageText
	if binary {
		typ = websocket.MessageBinary
	}
	if err := ws.Write(ctx, typ, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	for {
		// Silence for 10ms ends the iteration: an ignored frame gets none.
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Millisecond)
		_, b, err := ws.Read(rctx)
		rcancel()
		var ce websocket.CloseError
		switch {
		case err == nil:
			if _, err := ft.d.Decode(b, frame.FromServer); err != nil {
				return fmt.Errorf("server sent an undecodable frame %q: %w", b, err)
			}
			continue
		case errors.As(err, &ce):
			if !closeCodes[ce.Code] || len(ce.Reason) > 123 {
				return fmt.Errorf("server closed %d %q after %q", ce.Code, ce.Reason, msg)
			}
		case rctx.Err() == nil:
			return fmt.Errorf("connection ended without a close frame after %q: %w", msg, err)
		}
		return nil
	}
}

func (ft *fuzzTarget) credential(credJSON []byte) []byte {
	b, _ := ft.d.Encode(frame.Frame{Kind: frame.KindCredential, Credential: "Payment " + base64.RawURLEncoding.EncodeToString(credJSON)})
	return b
}

// FuzzServerFrame drives a real reference server of each dialect over a
// loopback socket: every input goes to both, as a raw frame, as credential
// JSON or as a session payload under a live challenge, in a text or binary
// frame. The server must answer with well-formed frames and allowed close
// codes, never crash, and still serve the next connection.
func FuzzServerFrame(f *testing.F) {
	targets := []*fuzzTarget{startFuzzTarget(f, frame.A), startFuzzTarget(f, frame.B)}
	v := voucherJSONFor(f, "v2-payer-signs", 30)
	for _, s := range []struct {
		mode   byte
		binary bool
		in     string
	}{
		{modeFrame, false, `{"type":"credential","credential":"Payment e30"}`},
		{modeFrame, false, `{"mpp":"authorization","authorization":"Payment e30"}`},
		{modeFrame, false, `{"mpp":"payment-close-request"}`},
		{modeFrame, false, `{"type":"message","data":{"a":[1,2]}}`},
		{modeFrame, false, "{\"type\":\"message\",\"data\":\"\xff\"}"},
		{modeFrame, true, `{"type":"message","data":1}`},
		{modeFrame, false, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`},
		{modeFrame, false, ``},
		{modeCredential, false, `{"challenge":$ECHO,"payload":{}}`},
		{modeCredential, false, `{"challenge":$ECHO,"payload":` + v + `}`},
		{modeCredential, false, `{"challenge":{},"payload":{},"challenge":$ECHO}`},
		{modePayload, false, v},
		{modePayload, true, v},
		{modePayload, false, strings.Replace(v, `"cumulativeAmount"`, `"CumulativeAmount"`, 1)},
		{modePayload, false, `{"action":"close","channelId":"0x00"}`},
		{modePayload, false, `{"action":"topUp","type":"transaction","channelId":"0x00","transaction":"0x01","additionalDeposit":"1"}`},
	} {
		f.Add(s.mode, s.binary, []byte(s.in))
	}
	f.Fuzz(func(t *testing.T, mode byte, binary bool, in []byte) {
		errs := make([]error, len(targets))
		var wg sync.WaitGroup
		for i, ft := range targets {
			wg.Go(func() { errs[i] = ft.run(mode, binary, in) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("dialect %s: %v", targets[i].d.Name(), err)
			}
		}
	})
}

// voucherJSONFor is a signed voucher payload for amount on the fixture
// channel name, as JSON.
func voucherJSONFor(tb testing.TB, name string, amount int64) string {
	tb.Helper()
	b, err := json.Marshal(voucher(tb, name, amount, ""))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

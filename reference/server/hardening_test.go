package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
)

// closeOf reads until the server closes and returns its close frame.
func closeOf(t *testing.T, ws *websocket.Conn) websocket.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := ws.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce
	}
}

func TestInvalidUTF8Closes1007(t *testing.T) {
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		t.Run(d.Name(), func(t *testing.T) {
			url := start(t, server.Config{Dialect: d})
			ws, _, err := websocket.Dial(context.Background(), url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			if err := ws.Write(context.Background(), websocket.MessageText, []byte("{\"type\":\"message\",\"data\":\"\xff\xfe\"}")); err != nil {
				t.Fatal(err)
			}
			if ce := closeOf(t, ws); ce.Code != websocket.StatusInvalidFramePayloadData {
				t.Fatalf("close %d %q, want 1007", ce.Code, ce.Reason)
			}
		})
	}
}

// logBuffer is a slog sink a test can read while the server writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWriteTimeoutLogged: a paid client that stops reading is dropped, and
// the log says it was the write timeout, not the closed socket it caused.
func TestWriteTimeoutLogged(t *testing.T) {
	var logs logBuffer
	url := start(t, server.Config{
		Intent: server.IntentCharge, Messages: 1 << 22,
		Limits: server.Limits{WriteTimeout: 200 * time.Millisecond},
		Log:    slog.New(slog.NewTextHandler(&logs, nil)),
	})
	c := dial(t, url)
	c.send(c.challenge, map[string]string{"proof": "x"})
	// dial's reader keeps reading into a buffered channel: once it is full
	// nobody reads, and the server's writes fill the socket buffers.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "connection ended") {
		if time.Now().After(deadline) {
			t.Fatalf("no connection end logged within 30s; log: %s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if l := logs.String(); !strings.Contains(l, `outcome="write timeout after 200ms: peer stopped reading"`) {
		t.Fatalf("log %q, want the write timeout as the outcome", l)
	}
}

// TestCloseWaitsForConnections: when Close returns, no goroutine of any
// connection is left, its read and verify loops included.
func TestCloseWaitsForConnections(t *testing.T) {
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		t.Run(d.Name(), func(t *testing.T) {
			cfg := server.Config{Secret: secret, Dialect: d, Messages: 1 << 20, Tick: big.NewInt(1)}
			for _, ch := range fixtures.Default() {
				cfg.Channels = append(cfg.Channels, ch.Channel)
			}
			srv, err := server.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			defer hs.Close()
			url := "ws" + strings.TrimPrefix(hs.URL, "http")
			for range 4 {
				ws, _, err := websocket.Dial(context.Background(), url, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer ws.CloseNow()
			}
			// Wait until every connection runs its loops.
			deadline := time.Now().Add(5 * time.Second)
			for strings.Count(stacks(), "server.(*conn).readLoop") < 4 {
				if time.Now().After(deadline) {
					t.Fatalf("loops of 4 connections not running after 5s:\n%s", stacks())
				}
				time.Sleep(10 * time.Millisecond)
			}
			srv.Close()
			if s := stacks(); strings.Contains(s, "reference/server.(*conn)") || strings.Contains(s, "reference/server.(*Server).ServeHTTP") {
				t.Fatalf("Close returned with connection goroutines left:\n%s", s)
			}
		})
	}
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// TestRejectionDropsQueuedCredentials: a dialect B rejection closes the
// connection, and a credential queued behind the rejected one is dropped,
// not applied: its funds would otherwise buy a unit for whatever other
// connection streams on the channel.
func TestRejectionDropsQueuedCredentials(t *testing.T) {
	ch := voucher(t, "v2-payer-signs", 30, "")
	bad := ch
	bad.CumulativeAmount = "-1"
	for i := range 20 {
		cfg := server.Config{Secret: secret, Dialect: frame.B, Messages: 3, Tick: big.NewInt(10)}
		for _, ch := range fixtures.Default() {
			cfg.Channels = append(cfg.Channels, ch.Channel)
		}
		srv, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		url := "ws" + strings.TrimPrefix(hs.URL, "http")
		echo := probe(t, url)
		c := dialB(t, url)
		c.write(websocket.MessageText, authorization(t, echo, bad))
		// The rejection may close the socket before this write: then the
		// server never had it, and the round proves nothing but passes.
		_ = c.ws.Write(context.Background(), websocket.MessageText, authorization(t, echo, ch))
		c.rejected(http.StatusPaymentRequired, "invalid-payload")
		hs.Close()
		srv.Close() // waits for the verify loop: the queue is settled
		id, _ := tempo.ParseHash(ch.ChannelID)
		if st, err := srv.Store().State(id); err != nil || st.Accepted.Sign() != 0 {
			t.Fatalf("round %d: after the rejection the channel accepted %s (%v); want nothing", i, st.Accepted, err)
		}
	}
}

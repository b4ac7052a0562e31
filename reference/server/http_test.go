package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/server"
)

// startHTTP serves a reference server the way `serve` does: through
// NewHTTP on a loopback listener. It returns the host:port.
func startHTTP(t *testing.T, cfg server.Config) string {
	t.Helper()
	cfg.Secret = secret
	for _, ch := range fixtures.Default() {
		cfg.Channels = append(cfg.Channels, ch.Channel)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs, capped, err := server.NewHTTP(srv, ln, srv.Config().Limits)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(capped)
	}()
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// dialFrom opens a TCP connection to addr from the loopback address from,
// so a test can be several remote hosts.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// droppedWithin reads c until the server closes it and fails unless that
// happens within d. Anything the server writes first is discarded.
func droppedWithin(t *testing.T, c net.Conn, d time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	c.SetReadDeadline(t0.Add(d))
	_, err := io.Copy(io.Discard, c)
	took := time.Since(t0)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %s", d)
	}
	return took
}

func TestIdleKeepAliveDropped(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		t.Run(d.Name(), func(t *testing.T) {
			addr := startHTTP(t, server.Config{Dialect: d, Limits: server.Limits{IdleTimeout: idle}})
			c := dialFrom(t, "127.0.0.1", addr)
			// One plain GET (426 in dialect A, the 402 probe in B), then
			// nothing: the connection is kept alive, and must not be for free.
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Close {
				t.Fatalf("status %d with Connection: close; want a keep-alive answer to idle on", resp.StatusCode)
			}
			droppedWithin(t, c, idle+2*time.Second)
		})
	}
}

func TestSlowRequestDropped(t *testing.T) {
	const limit = 500 * time.Millisecond
	addr := startHTTP(t, server.Config{Limits: server.Limits{RequestTimeout: limit}})
	c := dialFrom(t, "127.0.0.1", addr)
	// A request line, then one header byte every 100 ms: never complete.
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := c.Write([]byte("X")); err != nil {
					return
				}
			}
		}
	}()
	droppedWithin(t, c, limit+2*time.Second)
}

// TestSlowBodyAnsweredAtOnce: a request announcing a large body and sending
// one byte is answered without waiting for the body, and the connection is
// dropped within the request timeout.
func TestSlowBodyAnsweredAtOnce(t *testing.T) {
	const limit = 2 * time.Second
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		t.Run(d.Name(), func(t *testing.T) {
			addr := startHTTP(t, server.Config{Dialect: d, Limits: server.Limits{RequestTimeout: limit}})
			c := dialFrom(t, "127.0.0.1", addr)
			if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"); err != nil {
				t.Fatal(err)
			}
			// Waiting for the body would answer only when the request
			// timeout cuts it, after limit.
			c.SetReadDeadline(time.Now().Add(limit / 2))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer while the body is outstanding: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode < 400 || !resp.Close {
				t.Fatalf("status %d, Connection: close %t; want a 4xx and close", resp.StatusCode, resp.Close)
			}
			droppedWithin(t, c, limit+2*time.Second)
		})
	}
}

// wsDial upgrades a connection from the loopback address from.
func wsDial(from, addr string) (*websocket.Conn, *http.Response, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
}

// mustWS upgrades and reads the challenge, so the server holds the session.
func mustWS(t *testing.T, from, addr string) *websocket.Conn {
	t.Helper()
	ws, _, err := wsDial(from, addr)
	if err != nil {
		t.Fatalf("upgrade from %s: %v", from, err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatalf("challenge from %s: %v", from, err)
	}
	return ws
}

// refused expects an upgrade from from to be answered 503 naming want.
func refused(t *testing.T, from, addr, want string) {
	t.Helper()
	ws, resp, err := wsDial(from, addr)
	if err == nil {
		ws.CloseNow()
		t.Fatalf("upgrade from %s accepted over the cap", from)
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("upgrade from %s: %v (response %v), want 503", from, err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), want) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("503 body %q Retry-After %q, want %q and a Retry-After", body, resp.Header.Get("Retry-After"), want)
	}
}

// admitted waits until an upgrade from from is accepted again: a closed
// connection frees its place once the server has seen the close.
func admitted(t *testing.T, from, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws, _, err := wsDial(from, addr)
		if err == nil {
			ws.CloseNow()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("upgrade from %s still refused after a connection closed: %v", from, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnectionCaps(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		addr := startHTTP(t, server.Config{Limits: server.Limits{MaxConnectionsPerAddr: 2}})
		first := mustWS(t, "127.0.0.1", addr)
		mustWS(t, "127.0.0.1", addr)
		refused(t, "127.0.0.1", addr, "too many connections from 127.0.0.1: at most 2")
		mustWS(t, "127.0.0.2", addr) // another address has its own allowance
		first.Close(websocket.StatusNormalClosure, "")
		admitted(t, "127.0.0.1", addr)
	})
	t.Run("total", func(t *testing.T) {
		addr := startHTTP(t, server.Config{Limits: server.Limits{MaxConnections: 2}})
		mustWS(t, "127.0.0.1", addr)
		second := mustWS(t, "127.0.0.2", addr)
		refused(t, "127.0.0.3", addr, "this server takes at most 2")
		second.Close(websocket.StatusNormalClosure, "")
		admitted(t, "127.0.0.3", addr)
	})
	t.Run("a refused peer that sends nothing is dropped", func(t *testing.T) {
		addr := startHTTP(t, server.Config{Limits: server.Limits{MaxConnections: 1, RequestTimeout: time.Minute}})
		mustWS(t, "127.0.0.1", addr)
		c := dialFrom(t, "127.0.0.2", addr)
		// Its deadline is the refusal's, not the minute-long request timeout.
		droppedWithin(t, c, 2*time.Second+2*time.Second)
	})
}

// TestConnectionCapsTLS: under TLS (ServeTLS wraps the capped listener) a
// connection over a cap is still answered 503, inside the TLS session.
func TestConnectionCapsTLS(t *testing.T) {
	cfg := server.Config{Secret: secret, Limits: server.Limits{MaxConnections: 1}}
	for _, ch := range fixtures.Default() {
		cfg.Channels = append(cfg.Channels, ch.Channel)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewUnstartedServer(nil)
	hs, capped, err := server.NewHTTP(srv, ts.Listener, srv.Config().Limits)
	if err != nil {
		t.Fatal(err)
	}
	ts.Listener, ts.Config = capped, hs
	ts.StartTLS()
	defer ts.Close()
	get := func() *http.Response {
		t.Helper()
		c := ts.Client() // a client of its own: its connection is not shared
		c.Transport = c.Transport.(*http.Transport).Clone()
		t.Cleanup(c.CloseIdleConnections)
		resp, err := c.Get(ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get(); resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("first connection: status %d, want 426 (a plain GET of a WebSocket URL)", resp.StatusCode)
	}
	// The first client's connection is kept alive: the second is over the cap.
	if resp := get(); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second connection: status %d, want 503", resp.StatusCode)
	}
}

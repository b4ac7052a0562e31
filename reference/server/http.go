package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// refuseTimeout is how long a connection over a cap may take to send its
// request and read the 503: long enough for a TLS handshake on a slow
// link, short enough that refused peers cannot pile up.
const refuseTimeout = 2 * time.Second

// maxRefusing bounds the connections being answered 503 at once; beyond it
// a connection over a cap is closed without an answer, so a flood cannot
// turn the refusals themselves into the resource it holds.
const maxRefusing = 64

// NewHTTP returns an http.Server for h bounded by l (request, write and
// keep-alive idle timeouts) and ln wrapped with l's connection caps. Serve
// the one on the other: hs.Serve(capped), or ServeTLS. A connection over a
// cap is answered 503 with the cap it exceeds and closed; the caps count
// a connection until it closes, WebSockets included (their upgrade clears
// the HTTP timeouts, and Server bounds them instead).
func NewHTTP(h http.Handler, ln net.Listener, l Limits) (*http.Server, net.Listener, error) {
	l.setDefaults()
	if err := l.validate(); err != nil {
		return nil, nil, fmt.Errorf("http server: %w", err)
	}
	capped := &capListener{Listener: ln, max: l.MaxConnections, perAddr: l.MaxConnectionsPerAddr, byAddr: map[string]int{}}
	hs := &http.Server{
		Handler:           refuser{h},
		ReadHeaderTimeout: l.RequestTimeout,
		ReadTimeout:       l.RequestTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		// The largest header a client sends is a Payment-Session hint or a
		// credential token: 16 KiB each (mpp.MaxHeaderBytes).
		MaxHeaderBytes: 64 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	return hs, capped, nil
}

// connKey carries a request's net.Conn in its context.
type connKey struct{}

// refuser answers a request on a connection over a cap with 503.
type refuser struct{ h http.Handler }

func (f refuser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // under TLS
		c = tc.NetConn()
	}
	if cc, ok := c.(*cappedConn); ok && cc.refused != "" {
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		http.Error(w, cc.refused, http.StatusServiceUnavailable)
		return
	}
	f.h.ServeHTTP(w, r)
}

// capListener counts open connections, in total and per remote IP.
type capListener struct {
	net.Listener
	max, perAddr int

	mu       sync.Mutex
	open     int
	refusing int
	byAddr   map[string]int
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteIP(c)
		refused, drop := l.admit(addr)
		if drop {
			c.Close()
			continue
		}
		cc := &cappedConn{Conn: c, l: l, addr: addr, refused: refused}
		if refused != "" {
			cc.refuseBy = time.Now().Add(refuseTimeout)
			_ = c.SetDeadline(cc.refuseBy)
		}
		return cc, nil
	}
}

// admit counts a new connection from addr. Over a cap it is counted as
// refusing instead, with the reason; drop says even that is full.
func (l *capListener) admit(addr string) (refused string, drop bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.max:
		refused = fmt.Sprintf("too many connections: this server takes at most %d at once", l.max)
	case l.byAddr[addr] >= l.perAddr:
		refused = fmt.Sprintf("too many connections from %s: at most %d at once", addr, l.perAddr)
	default:
		l.open++
		l.byAddr[addr]++
		return "", false
	}
	if l.refusing >= maxRefusing {
		return "", true
	}
	l.refusing++
	return refused, false
}

func (l *capListener) release(c *cappedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.refused != "" {
		l.refusing--
		return
	}
	l.open--
	if l.byAddr[c.addr]--; l.byAddr[c.addr] == 0 {
		delete(l.byAddr, c.addr)
	}
}

// remoteIP is the host part of a connection's remote address.
func remoteIP(c net.Conn) string {
	a := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(a); err == nil {
		return host
	}
	return a
}

// cappedConn is a counted connection; closing it frees its place. A
// refused one cannot push its deadlines past refuseBy, whatever the HTTP
// server sets.
type cappedConn struct {
	net.Conn
	l        *capListener
	addr     string
	refused  string
	refuseBy time.Time
	once     sync.Once
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

// CloseWrite lets the HTTP server half-close before closing, so a peer
// reads an error response instead of a reset.
func (c *cappedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *cappedConn) clamp(t time.Time) time.Time {
	if c.refused != "" && (t.IsZero() || t.After(c.refuseBy)) {
		return c.refuseBy
	}
	return t
}

func (c *cappedConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.clamp(t)) }

func (c *cappedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *cappedConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

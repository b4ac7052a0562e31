package suite_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
	"github.com/mppws/conformance/suite"
)

// dropListener hands out connections that the server side drops, without
// a close frame, once the client has sent more than limit bytes: a target
// that dies while a case pays. An upgrade and a challenge fit under the
// limit; a credential does not.
type dropListener struct {
	net.Listener
	limit int
}

func (l dropListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &dropConn{Conn: c, left: l.limit}, nil
}

type dropConn struct {
	net.Conn
	left int
}

func (c *dropConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.left -= n; c.left < 0 {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	return n, err
}

// TestDroppedConnectionFailsTheCase: a target that drops a paying
// connection while a case learns a channel's state fails that case with
// what it saw; it is not a setup error ("was the target used before this
// run?"), which would stop the run and blame the target's history.
func TestDroppedConnectionFailsTheCase(t *testing.T) {
	if os.Getenv("MPPWS_DIALECT") != "" || os.Getenv("MPPWS_TARGET") != "" {
		t.Skip("child process")
	}
	var chs []tempo.Channel
	for _, ch := range fixtures.Default() {
		chs = append(chs, ch.Channel)
	}
	srv, err := server.New(server.Config{Secret: []byte("drop-test"), Channels: chs, Intent: server.IntentSession})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &httptest.Server{Listener: dropListener{ln, 1 << 10}, Config: &http.Server{Handler: srv}}
	hs.Start()
	defer srv.Close()
	defer hs.Close()
	s, out, err := runChild(t, "MPPWS_TARGET=ws"+strings.TrimPrefix(hs.URL, "http"), "MPPWS_SELECT=WS-VOUCHER-001")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(s.Results) != 1 {
		t.Fatalf("%d results, want WS-VOUCHER-001's\n%s", len(s.Results), out)
	}
	r := s.Results[0]
	if r.Verdict != suite.Failed || !strings.Contains(r.Failure, "without a close frame") {
		t.Fatalf("WS-VOUCHER-001: %s (%s), want FAILED on the dropped connection\n%s", r.Verdict, r.Reason, r.Failure)
	}
}

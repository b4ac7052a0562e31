//go:build linux

package robust

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mppws/conformance/reference/server"
)

// TestFloodFillsSendBuffer measures what robustFloodBytes is sized by: how
// many bytes of pongs the reference writes to the bare client of
// WS-ROBUST-006, with its shrunken buffers, before the reference's writes
// block. Both ends are on loopback, so the kernel's queues of both sockets
// are in /proc/net/tcp: once the flood has stalled, the pongs written are
// the server's send queue plus the client's receive queue. The flood must
// ask for at least four times that.
func TestFloodFillsSendBuffer(t *testing.T) {
	srv, err := server.New(server.Config{Secret: []byte("flood-test"), Intent: server.IntentCharge})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer srv.Close()
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bare, err := robustBareDial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if _, _, err := bare.readMessage(); err != nil {
		t.Fatalf("challenge: %v", err)
	}
	_ = bare.conn.SetDeadline(time.Time{})

	// As the case floods (the suite's quiet window as the stall window),
	// with no budget to run out first.
	f := bare.flood(1<<30/robustPongFrame, 300*time.Millisecond, 2*time.Second, time.Now().Add(10*time.Second))
	if !f.stalled {
		t.Fatalf("the flood did not stall: %s", f)
	}
	client := bare.conn.LocalAddr().(*net.TCPAddr).Port
	srvPort := bare.conn.RemoteAddr().(*net.TCPAddr).Port
	var sent, received int
	for range 50 { // until the queues settle
		s, _ := tcpQueues(t, srvPort, client)
		_, r := tcpQueues(t, client, srvPort)
		if s == sent && r == received {
			break
		}
		sent, received = s, r
		time.Sleep(20 * time.Millisecond)
	}
	written := sent + received
	if written == 0 {
		t.Fatalf("no pong queued after the flood stalled (%s): the measurement is broken", f)
	}
	t.Logf("flood: %s", f)
	t.Logf("the reference wrote %d bytes of pongs before its writes blocked: %d in its send queue, %d in the client's receive queue; the flood asks for %d (%.1f times as much)",
		written, sent, received, robustFloodBytes, float64(robustFloodBytes)/float64(written))
	if robustFloodBytes < 4*written {
		t.Errorf("robustFloodBytes %d is less than four times the %d bytes of pongs the target's buffers held: raise it", robustFloodBytes, written)
	}
}

// tcpQueues reads the send and receive queues of the IPv4 TCP socket from
// local port to remote port out of /proc/net/tcp.
func tcpQueues(t *testing.T, local, remote int) (tx, rx int) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	l, r := fmt.Sprintf(":%04X", local), fmt.Sprintf(":%04X", remote)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line) // sl local rem st tx_queue:rx_queue ...
		if len(f) < 5 || !strings.HasSuffix(f[1], l) || !strings.HasSuffix(f[2], r) {
			continue
		}
		txs, rxs, _ := strings.Cut(f[4], ":")
		x, err1 := strconv.ParseInt(txs, 16, 64)
		y, err2 := strconv.ParseInt(rxs, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("/proc/net/tcp queues %q", f[4])
		}
		return int(x), int(y)
	}
	t.Fatalf("no socket from port %d to %d in /proc/net/tcp", local, remote)
	return 0, 0
}

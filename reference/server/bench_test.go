package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/client"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
)

// benchServer starts a reference server on a loopback httptest server with
// every fixture channel. stop closes both and is safe to call twice; it is
// also registered with b.Cleanup, so a b.Fatal leaves nothing running.
func benchServer(b *testing.B, cfg server.Config) (srv *server.Server, hs *httptest.Server, url string, stop func()) {
	b.Helper()
	cfg.Secret = secret
	for _, ch := range fixtures.Default() {
		cfg.Channels = append(cfg.Channels, ch.Channel)
	}
	srv, err := server.New(cfg)
	if err != nil {
		b.Fatalf("server.New: %v", err)
	}
	hs = httptest.NewServer(srv)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			srv.Close() // cancels every connection and waits for its handler
			hs.Close()
		}
	}
	b.Cleanup(stop)
	return srv, hs, "ws" + strings.TrimPrefix(hs.URL, "http"), stop
}

// benchChannel returns the fixture channel called name.
func benchChannel(b testing.TB, name string) fixtures.Channel {
	b.Helper()
	for _, ch := range fixtures.Default() {
		if ch.Name == name {
			return ch
		}
	}
	b.Fatalf("no fixture channel %q", name)
	return fixtures.Channel{}
}

// benchCredential signs a voucher for amount on ch and returns the
// Authorization value that echoes challenge.
func benchCredential(b testing.TB, ch fixtures.Channel, challenge mpp.Challenge, amount *big.Int) string {
	b.Helper()
	sig, err := tempo.SignVoucher(ch.SignerKey, ch.Domain(), ch.ID, amount)
	if err != nil {
		b.Fatalf("sign voucher %s on %s: %v", amount, ch.Name, err)
	}
	d := tempo.DescriptorOf(ch.Channel)
	raw, err := json.Marshal(tempo.VoucherPayload{
		Action: "voucher", ChannelID: ch.ID.String(), CumulativeAmount: amount.String(),
		Signature: tempo.FormatSignature(sig), Descriptor: &d,
	})
	if err != nil {
		b.Fatalf("encode voucher payload: %v", err)
	}
	auth, err := mpp.FormatAuthorization(mpp.Credential{Challenge: challenge, Payload: raw})
	if err != nil {
		b.Fatalf("format credential: %v", err)
	}
	return auth
}

// ---------------------------------------------------------------------------
// BenchmarkStream

// streamMessages is the length of one benchmarked stream. At a tick of 1000
// a metered stream spends 20,000,000 of v2-payer-signs' 100,000,000 deposit;
// every iteration uses a fresh server, so the deposit never runs out.
const streamMessages = 20_000

// BenchmarkStream measures what metering costs a stream on loopback: the
// same streamMessages `{"type":"message","data":"unit-N"}` frames are
// streamed once by a bare coder/websocket server (raw) and once by the
// reference session server (metered: tick 1000, every message charged
// against the channel store before it is sent) to the reference client
// paying 100-unit vouchers ahead of time (VoucherUnits 100, Prepay), which
// is meant to keep the stream from stalling on a needVoucher. Both sides
// encode each frame with frame.A and the raw reader decodes each one with
// frame.A as the reference client does, so metered/raw isolates the payment
// machinery: voucher signing and verification, waits for vouchers, the
// store's charge and the per-frame write context. Timing runs from dial to
// the last frame (metered: to the checked receipt); server setup is
// excluded. Reported: raw-msgs/s, metered-msgs/s, metered/raw, and
// needVoucher/op: how often the stream did stall because the prepaid
// voucher had not been accepted yet (at most about 200 per 20,000).
func BenchmarkStream(b *testing.B) {
	var raw, metered time.Duration
	stalls := 0
	for range b.N {
		raw += rawStream(b, streamMessages)
		d, n := meteredStream(b, streamMessages)
		metered += d
		stalls += n
	}
	total := float64(b.N * streamMessages)
	rawRate, meteredRate := total/raw.Seconds(), total/metered.Seconds()
	b.ReportMetric(rawRate, "raw-msgs/s")
	b.ReportMetric(meteredRate, "metered-msgs/s")
	b.ReportMetric(meteredRate/rawRate, "metered/raw")
	b.ReportMetric(float64(stalls)/float64(b.N), "needVoucher/op")
}

// rawStream streams n message frames through a plain coder/websocket server
// and returns the time from dial to the last frame read.
func rawStream(b *testing.B, n int) time.Duration {
	b.Helper()
	done := make(chan error, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			done <- fmt.Errorf("raw server accept: %w", err)
			return
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := 1; i <= n; i++ {
			p, err := frame.A.Encode(frame.Frame{Kind: frame.KindMessage, Data: frame.StringData(fmt.Sprintf("unit-%d", i))})
			if err != nil {
				done <- fmt.Errorf("raw server encode: %w", err)
				return
			}
			if err := ws.Write(ctx, websocket.MessageText, p); err != nil {
				done <- fmt.Errorf("raw server write %d: %w", i, err)
				return
			}
		}
		done <- ws.Close(websocket.StatusNormalClosure, "done")
	}))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t0 := time.Now()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		b.Fatalf("raw dial: %v", err)
	}
	defer ws.CloseNow()
	var last string
	for i := 1; i <= n; i++ {
		_, p, err := ws.Read(ctx)
		if err != nil {
			b.Fatalf("raw read %d of %d: %v", i, n, err)
		}
		f, err := frame.A.Decode(p, frame.FromServer)
		if err != nil || f.Kind != frame.KindMessage {
			b.Fatalf("raw read %d: got %s frame (err %v), want message", i, f.Kind, err)
		}
		last, _ = f.Text()
	}
	elapsed := time.Since(t0)
	if want := fmt.Sprintf("unit-%d", n); last != want {
		b.Fatalf("raw stream ended with %q, want %q", last, want)
	}
	// The server closes after the last frame; reading answers its close.
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		b.Fatalf("raw stream: after the last frame got %v, want a 1000 close", err)
	}
	select {
	case err := <-done:
		if err != nil {
			b.Fatalf("raw server: %v", err)
		}
	case <-time.After(10 * time.Second):
		b.Fatal("raw server handler did not finish within 10s of the stream's end")
	}
	return elapsed
}

// meteredStream streams n messages through a fresh reference session server
// to the reference client and returns the time client.Run took and how many
// needVoucher frames the client saw.
func meteredStream(b *testing.B, n int) (time.Duration, int) {
	b.Helper()
	_, _, url, stop := benchServer(b, server.Config{Intent: server.IntentSession, Messages: n, Tick: big.NewInt(1000)})
	defer stop()
	t0 := time.Now()
	res, err := client.Run(context.Background(), url, client.Config{
		Channel: "v2-payer-signs", VoucherUnits: 100, Prepay: 10, Timeout: 5 * time.Minute,
	})
	elapsed := time.Since(t0)
	if err != nil {
		b.Fatalf("metered stream of %d: %v", n, err)
	}
	if len(res.Messages) != n || res.Session == nil || res.Session.Units == nil || *res.Session.Units != uint64(n) {
		b.Fatalf("metered stream: got %d messages, receipt %s; want %d messages and units %d", len(res.Messages), res.Receipt, n, n)
	}
	if want := fmt.Sprintf("unit-%d", n); res.Messages[n-1] != want {
		b.Fatalf("metered stream ended with %q, want %q", res.Messages[n-1], want)
	}
	return elapsed, res.NeedVouchers
}

// ---------------------------------------------------------------------------
// BenchmarkNeedVoucherResume

// resumeMessages is the stream length of one resume server. Each message
// after the first is one sample; at tick 1 the deposit (100,000,000 units)
// is never the limit, and a longer run rolls over to a fresh server.
const resumeMessages = 100_000

// BenchmarkNeedVoucherResume measures how long a paused stream takes to
// resume: from the moment the client has read a needVoucher frame to the
// moment it has read the next message, on loopback. One sample covers the
// client decoding the needVoucher and signing, encoding and writing a
// voucher for exactly requiredCumulative (one unit), then the server
// reading it, parsing the credential, checking the echoed challenge,
// recovering the EIP-712 signer, accepting the voucher in the store and
// waking the paused stream, which charges the unit and writes the message.
// The server is a session server with tick 1, so every message needs its own
// voucher and every message after the first is one sample.
//
// For scale: the mpp SDKs poll every 100 ms while a stream waits for a
// voucher. In ws-dialects.md (§1.4, §2.4) that polling is in the metering
// loops on the server side, mpp-rs poll_interval_ms and mppx pollIntervalMs,
// 100 in the docs and defaults, between store-update wake-ups. So with a
// store that does not signal updates a resume there can take up to 100 ms,
// while this server wakes the paused stream as soon as the voucher is
// accepted.
//
// Reported: p50-µs, p99-µs and mean-µs of the samples, and client-µs, the
// mean share from needVoucher read to voucher written (decode, sign,
// encode, write).
func BenchmarkNeedVoucherResume(b *testing.B) {
	ch := benchChannel(b, "v2-payer-signs")
	samples := make([]time.Duration, 0, b.N)
	var own time.Duration
	s := openResume(b, ch)
	b.ResetTimer()
	for len(samples) < b.N {
		total, mine, ok := s.sample(b)
		if !ok { // the stream ended with its receipt: continue on a fresh server
			b.StopTimer()
			s.close()
			s = openResume(b, ch)
			b.StartTimer()
			continue
		}
		samples = append(samples, total)
		own += mine
	}
	b.StopTimer()
	s.close()

	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	n := len(samples)
	b.ReportMetric(us(samples[(n-1)/2]), "p50-µs")
	b.ReportMetric(us(samples[(n*99+99)/100-1]), "p99-µs") // nearest rank: ceil(0.99 n)
	b.ReportMetric(us(sum)/float64(n), "mean-µs")
	b.ReportMetric(us(own)/float64(n), "client-µs")
}

// resumeConn is a bare dialect-A client on one tick-1 session server.
type resumeConn struct {
	ctx       context.Context
	cancel    context.CancelFunc
	stop      func() // stops the server
	ws        *websocket.Conn
	ch        fixtures.Channel
	challenge mpp.Challenge
	payer     string // credential source DID
	desc      tempo.Descriptor
}

// openResume starts a fresh tick-1 server, pays one unit and reads up to the
// first message, so the next frame is the first needVoucher.
func openResume(b *testing.B, ch fixtures.Channel) *resumeConn {
	b.Helper()
	_, _, url, stop := benchServer(b, server.Config{
		Intent: server.IntentSession, Messages: resumeMessages, Tick: big.NewInt(1),
		Limits: server.Limits{VoucherTimeout: time.Minute},
	})
	ctx, cancel := context.WithCancel(context.Background())
	s := &resumeConn{ctx: ctx, cancel: cancel, stop: stop, ch: ch, desc: tempo.DescriptorOf(ch.Channel),
		payer: fmt.Sprintf("did:pkh:eip155:%d:%s", ch.ChainID, ch.Payer)}
	b.Cleanup(s.close)
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	ws, _, err := websocket.Dial(dctx, url, nil)
	if err != nil {
		b.Fatalf("resume dial: %v", err)
	}
	s.ws = ws
	f := s.read(b)
	if f.Kind != frame.KindChallenge {
		b.Fatalf("resume: first frame %s, want challenge", f.Kind)
	}
	s.take(b, f)
	s.pay(b, big.NewInt(1))
	if f := s.read(b); f.Kind != frame.KindMessage {
		b.Fatalf("resume: after the opening voucher got %s frame %q, want message", f.Kind, f.Error)
	}
	return s
}

func (s *resumeConn) close() {
	if s.ws != nil {
		s.ws.CloseNow()
	}
	s.cancel()
	s.stop()
}

// readRaw reads one frame without decoding it, within 10s.
func (s *resumeConn) readRaw(b *testing.B) []byte {
	b.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	_, p, err := s.ws.Read(ctx)
	if err != nil {
		b.Fatalf("resume read: %v", err)
	}
	return p
}

func (s *resumeConn) decode(b *testing.B, p []byte) frame.Frame {
	b.Helper()
	f, err := frame.A.Decode(p, frame.FromServer)
	if err != nil {
		b.Fatalf("resume: undecodable server frame %s: %v", p, err)
	}
	return f
}

func (s *resumeConn) read(b *testing.B) frame.Frame {
	b.Helper()
	return s.decode(b, s.readRaw(b))
}

// take adopts a (re-)challenge: vouchers echo the newest one.
func (s *resumeConn) take(b *testing.B, f frame.Frame) {
	b.Helper()
	if err := json.Unmarshal(f.Challenge, &s.challenge); err != nil {
		b.Fatalf("resume: challenge object %s: %v", f.Challenge, err)
	}
}

// pay signs and sends a voucher for amount.
func (s *resumeConn) pay(b *testing.B, amount *big.Int) {
	b.Helper()
	sig, err := tempo.SignVoucher(s.ch.SignerKey, s.ch.Domain(), s.ch.ID, amount)
	if err != nil {
		b.Fatalf("resume: sign voucher %s: %v", amount, err)
	}
	raw, err := json.Marshal(tempo.VoucherPayload{
		Action: "voucher", ChannelID: s.ch.ID.String(), CumulativeAmount: amount.String(),
		Signature: tempo.FormatSignature(sig), Descriptor: &s.desc,
	})
	if err != nil {
		b.Fatalf("resume: voucher payload: %v", err)
	}
	auth, err := mpp.FormatAuthorization(mpp.Credential{Challenge: s.challenge, Source: s.payer, Payload: raw})
	if err != nil {
		b.Fatalf("resume: credential: %v", err)
	}
	p, err := frame.A.Encode(frame.Frame{Kind: frame.KindCredential, Credential: auth})
	if err != nil {
		b.Fatalf("resume: encode credential frame: %v", err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if err := s.ws.Write(ctx, websocket.MessageText, p); err != nil {
		b.Fatalf("resume: write voucher %s: %v", amount, err)
	}
}

// sample waits for the next needVoucher, answers it with a voucher for
// exactly requiredCumulative and times the gap to the next message. It
// returns the whole gap, the client's own share of it (needVoucher read to
// voucher written), and false when the stream ended with a receipt instead.
func (s *resumeConn) sample(b *testing.B) (total, own time.Duration, ok bool) {
	b.Helper()
	for {
		p := s.readRaw(b)
		t0 := time.Now()
		f := s.decode(b, p)
		switch f.Kind {
		case frame.KindChallenge: // re-challenge before a needVoucher
			s.take(b, f)
			continue
		case frame.KindReceipt:
			return 0, 0, false
		case frame.KindNeedVoucher:
		default:
			b.Fatalf("resume: got %s frame %q, want needVoucher", f.Kind, f.Error)
		}
		nv := f.NeedVoucher
		required, ok := new(big.Int).SetString(nv.RequiredCumulative, 10)
		if !ok || !strings.EqualFold(nv.ChannelID, s.ch.ID.String()) {
			b.Fatalf("resume: needVoucher %+v: want a decimal requiredCumulative on %s", nv, s.ch.ID)
		}
		s.pay(b, required)
		t1 := time.Now()
		f = s.read(b)
		t2 := time.Now()
		if f.Kind != frame.KindMessage {
			b.Fatalf("resume: voucher for %s answered by %s frame %q, want the next message", required, f.Kind, f.Error)
		}
		return t2.Sub(t0), t1.Sub(t0), true
	}
}

// ---------------------------------------------------------------------------
// BenchmarkIdleSessionMemory

// BenchmarkIdleSessionMemory measures the memory the server holds for each
// connected idle session, i.e. what a server pays per parked customer: with
// 1,000 and with 10,000 connections open it reports the growth of
// HeapInuse + StackInuse (after runtime.GC) divided by the number of
// connections, as bytes/session and KiB/session, plus the heap and stack
// shares and the server goroutines per session.
//
//   - paid: each connection paid one unit with a voucher on one of the three
//     v2 fixture channels (round robin, each voucher one tick above the
//     previous one on its channel), the unit was charged (the balance is per
//     channel, so possibly by an older session paused on the same channel)
//     and the server has sent needVoucher and waits for a voucher.
//   - unpaid: each connection has only received its challenge; the server
//     waits for a credential.
//
// The server is served as `serve` serves it (NewHTTP, caps raised to fit).
// The clients live in a child process (this test binary again, running
// TestIdleClients): 10,000 sessions take 20,000 sockets, more than one
// process may open here, and the figure then holds server memory only.
// They are bare TCP sockets that do the WebSocket handshake by hand, write
// one masked text frame (the credential, paid only) and read only until
// the server has answered it; the server's later frames sit in kernel
// buffers, which the child empties once before it reports ready
// (drained-B/session says how much that was; see drain). Handshake,
// voucher and write timeouts are 5 minutes, so nothing closes while
// measuring; the server counts as steady once runtime.NumGoroutine has not
// changed for 200 ms. Opening paid/10000 takes minutes: every voucher
// accepted on a channel wakes every session paused on it (channel.Store),
// so the wake-ups grow with the square of the sessions per channel.
//
// Run one with: go test -run '^$' -bench 'IdleSessionMemory/^paid/10000$' -benchtime 1x -timeout 30m ./reference/server
func BenchmarkIdleSessionMemory(b *testing.B) {
	for _, paid := range []bool{true, false} {
		for _, n := range []int{1000, 10000} {
			name := fmt.Sprintf("unpaid/%d", n)
			if paid {
				name = fmt.Sprintf("paid/%d", n)
			}
			b.Run(name, func(b *testing.B) { benchIdle(b, paid, n) })
		}
	}
}

func benchIdle(b *testing.B, paid bool, sessions int) {
	// Warm up once: first-use allocations (secp256k1 tables, JSON codec
	// caches, pools) must not be charged to the measured sessions.
	idleRound(b, paid, 3)
	var heap, stack, goroutines, drained float64
	b.ResetTimer()
	for range b.N {
		m := idleRound(b, paid, sessions)
		heap += m.heap
		stack += m.stack
		goroutines += m.goroutines
		drained += m.drained
	}
	n := float64(b.N * sessions)
	b.ReportMetric((heap+stack)/n, "bytes/session")
	b.ReportMetric((heap+stack)/n/1024, "KiB/session")
	b.ReportMetric(heap/n, "heap-B/session")
	b.ReportMetric(stack/n, "stack-B/session")
	b.ReportMetric(goroutines/n, "goroutines/session")
	b.ReportMetric(drained/n, "drained-B/session")
}

// idleGrowth is what one round of n sessions added to the process.
type idleGrowth struct{ heap, stack, goroutines, drained float64 }

// idleRound opens n idle sessions on a fresh server, measures the growth and
// closes everything again, checking that the server's goroutines are gone.
func idleRound(b *testing.B, paid bool, n int) idleGrowth {
	b.Helper()
	b.StopTimer()
	cfg := server.Config{
		Secret: secret, Intent: server.IntentSession, Messages: 1 << 20, Tick: big.NewInt(1000),
		Limits: server.Limits{HandshakeTimeout: 5 * time.Minute, VoucherTimeout: 5 * time.Minute, WriteTimeout: 5 * time.Minute,
			MaxConnections: n + 16, MaxConnectionsPerAddr: n + 16},
	}
	for _, ch := range fixtures.Default() {
		cfg.Channels = append(cfg.Channels, ch.Channel)
	}
	srv, err := server.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs, capped, err := server.NewHTTP(srv, ln, srv.Config().Limits)
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(capped)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			hs.Close()
			srv.Close()
			<-served
		}
	}
	defer stop()
	baseG := runtime.NumGoroutine()
	heap0, stack0 := memInUse()

	b.StartTimer()
	clients := startIdleClients(b, ln.Addr().String(), n, paid)
	b.StopTimer()
	defer clients.close(b)
	goroutines := waitSteady(b, baseG+n)
	if paid { // every unit paid so far has been charged: no stream is still running
		for _, name := range idleChannels {
			ch := benchChannel(b, name)
			st, err := srv.Store().State(ch.ID)
			if err != nil || st.Spent.Cmp(st.Accepted) != 0 {
				b.Fatalf("channel %s not settled after opening: %+v (err %v)", ch.Name, st, err)
			}
		}
	}
	heap1, stack1 := memInUse()

	clients.close(b)
	stop()
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > baseG {
		if time.Now().After(deadline) {
			b.Fatalf("after closing %d sessions %d goroutines remain, %d before they were opened", n, runtime.NumGoroutine(), baseG)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StartTimer()
	return idleGrowth{heap: float64(int64(heap1) - int64(heap0)), stack: float64(int64(stack1) - int64(stack0)),
		goroutines: float64(goroutines - baseG), drained: float64(clients.drained)}
}

// idleChannels are the v2 fixture channels paid sessions use, round robin.
var idleChannels = []string{"v2-payer-signs", "v2-delegated", "v2-small"}

// idleClients is the child process holding the client ends of the sessions.
type idleClients struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	drained int
	closed  bool
}

// The child's environment: the server address, the number of sessions and
// whether to pay.
const (
	envIdleAddr = "MPP_IDLE_CLIENTS_ADDR"
	envIdleN    = "MPP_IDLE_CLIENTS_N"
	envIdlePaid = "MPP_IDLE_CLIENTS_PAID"
)

// startIdleClients starts the child and returns once it reports all n
// sessions idle.
func startIdleClients(b *testing.B, addr string, n int, paid bool) *idleClients {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClients$", "-test.v")
	cmd.Env = append(os.Environ(), envIdleAddr+"="+addr, fmt.Sprintf("%s=%d", envIdleN, n), fmt.Sprintf("%s=%t", envIdlePaid, paid))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the client process: %v", err)
	}
	c := &idleClients{cmd: cmd, stdin: stdin}
	sc := bufio.NewScanner(stdout)
	var out strings.Builder
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if _, err := fmt.Sscanf(line, "idle-clients ready %d", &c.drained); err == nil {
			go io.Copy(io.Discard, stdout)
			return c
		}
	}
	stdin.Close()
	cmd.Wait()
	b.Fatalf("client process ended before its %d sessions were idle:\n%s%s", n, out.String(), stderr.String())
	return nil
}

// close ends the child, which closes every client socket.
func (c *idleClients) close(b *testing.B) {
	if c.closed {
		return
	}
	c.closed = true
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		b.Errorf("client process: %v", err)
	}
}

// TestIdleClients is the child process of BenchmarkIdleSessionMemory; it
// is skipped unless the benchmark started it.
func TestIdleClients(t *testing.T) {
	addr := os.Getenv(envIdleAddr)
	if addr == "" {
		t.Skip("the client process of BenchmarkIdleSessionMemory")
	}
	n, err := strconv.Atoi(os.Getenv(envIdleN))
	if err != nil {
		t.Fatal(err)
	}
	paid := os.Getenv(envIdlePaid) == "true"
	var chans []fixtures.Channel
	for _, name := range idleChannels {
		chans = append(chans, benchChannel(t, name))
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	rd := bufio.NewReaderSize(nil, 16<<10)
	scratch := make([]byte, 0, 16<<10)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d: dial: %v", i, err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		rd.Reset(c)
		if err := handshake(c, rd, addr); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		f, err := readServerFrame(rd, &scratch)
		if err != nil || f.Kind != frame.KindChallenge {
			t.Fatalf("connection %d: first frame %s (err %v), want challenge", i, f.Kind, err)
		}
		if paid {
			var chg mpp.Challenge
			if err := json.Unmarshal(f.Challenge, &chg); err != nil {
				t.Fatalf("connection %d: challenge object: %v", i, err)
			}
			ch := chans[i%len(chans)]
			amount := big.NewInt(int64(i/len(chans)+1) * 1000) // one tick above the previous voucher on ch
			p, err := frame.A.Encode(frame.Frame{Kind: frame.KindCredential, Credential: benchCredential(t, ch, chg, amount)})
			if err != nil {
				t.Fatalf("connection %d: encode credential: %v", i, err)
			}
			if err := writeMaskedText(c, p, &scratch); err != nil {
				t.Fatalf("connection %d: write credential: %v", i, err)
			}
			// Wait until the server has accepted the voucher and paused the
			// stream: the next voucher on ch must arrive after this one.
			for {
				f, err := readServerFrame(rd, &scratch)
				if err != nil {
					t.Fatalf("connection %d: waiting for needVoucher after a voucher for %s on %s: %v", i, amount, ch.Name, err)
				}
				if f.Kind == frame.KindError {
					t.Fatalf("connection %d: voucher for %s on %s rejected: %s", i, amount, ch.Name, f.Error)
				}
				if f.Kind == frame.KindNeedVoucher {
					break
				}
			}
		}
		c.SetDeadline(time.Time{})
	}
	rd.Reset(nil)
	// Empty the receive buffers once, so no server goroutine can be parked
	// in a write to a full socket while the parent measures (see drain).
	drained := 0
	for i, c := range conns {
		k, err := drain(c, scratch[:cap(scratch)])
		if err != nil {
			t.Fatalf("connection %d: draining after setup: %v", i, err)
		}
		drained += k
	}
	fmt.Printf("idle-clients ready %d\n", drained)
	io.Copy(io.Discard, os.Stdin) // until the parent is done measuring
}

// drain reads and discards whatever c's receive buffer holds, without a
// goroutine: it reads until a 1 ms deadline finds nothing more. The paid
// sessions need it: every voucher accepted on a channel wakes every session
// paused on that channel, and each re-sends needVoucher, so the first
// sessions opened on a channel are sent hundreds of frames (tens of KiB)
// while the later ones open. On a host with small socket buffers the server
// would block writing to them.
func drain(c net.Conn, buf []byte) (int, error) {
	total := 0
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	for {
		n, err := c.Read(buf)
		total += n
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return total, nil
		case err != nil:
			return total, fmt.Errorf("after %d bytes: %w", total, err)
		}
	}
}

// memInUse collects garbage (twice, so sync.Pool victims go too) and
// returns HeapInuse and StackInuse.
func memInUse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// waitSteady waits until runtime.NumGoroutine is at least atLeast and has
// not changed for 200 ms, then returns it.
func waitSteady(b *testing.B, atLeast int) int {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last, since := -1, time.Now()
	for {
		g := runtime.NumGoroutine()
		if g != last {
			last, since = g, time.Now()
		}
		if g >= atLeast && time.Since(since) >= 200*time.Millisecond {
			return g
		}
		if time.Now().After(deadline) {
			b.Fatalf("server not steady within 30s: %d goroutines, want at least %d and no change for 200ms", g, atLeast)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wsGUID is the RFC 6455 handshake constant.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// handshake performs the client side of the WebSocket opening handshake on
// c by hand: an HTTP/1.1 upgrade with a random key, then the 101 response,
// whose Sec-WebSocket-Accept must match the key.
func handshake(c net.Conn, rd *bufio.Reader, host string) error {
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return fmt.Errorf("write upgrade request: %w", err)
	}
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		return fmt.Errorf("read upgrade response: %w", err)
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return fmt.Errorf("upgrade answered %s with Sec-WebSocket-Accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return nil
}

// readServerFrame reads one unmasked, unfragmented server text frame and
// decodes it as dialect A. A close frame is an error carrying its code and
// reason.
func readServerFrame(rd *bufio.Reader, buf *[]byte) (frame.Frame, error) {
	var h [8]byte
	if _, err := io.ReadFull(rd, h[:2]); err != nil {
		return frame.Frame{}, fmt.Errorf("frame header: %w", err)
	}
	fin, op, masked := h[0]&0x80 != 0, h[0]&0x0f, h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(rd, h[:2]); err != nil {
			return frame.Frame{}, fmt.Errorf("frame length: %w", err)
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(rd, h[:8]); err != nil {
			return frame.Frame{}, fmt.Errorf("frame length: %w", err)
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	if masked || n > 1<<20 {
		return frame.Frame{}, fmt.Errorf("server frame masked=%t length %d: not a frame this client expects", masked, n)
	}
	if uint64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	p := (*buf)[:n]
	if _, err := io.ReadFull(rd, p); err != nil {
		return frame.Frame{}, fmt.Errorf("frame payload: %w", err)
	}
	switch {
	case op == 0x8:
		code := 0
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
			p = p[2:]
		}
		return frame.Frame{}, fmt.Errorf("server closed the connection: %d %q", code, p)
	case op != 0x1 || !fin:
		return frame.Frame{}, fmt.Errorf("server frame opcode %#x fin=%t: want one unfragmented text frame", op, fin)
	}
	return frame.A.Decode(p, frame.FromServer)
}

// writeMaskedText writes p as one masked text frame, as a client must.
func writeMaskedText(c net.Conn, p []byte, buf *[]byte) error {
	out := (*buf)[:0]
	out = append(out, 0x81) // FIN, text
	switch n := len(p); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		return errors.New("credential frame over 64 KiB")
	}
	var mask [4]byte
	rand.Read(mask[:])
	out = append(out, mask[:]...)
	for i, x := range p {
		out = append(out, x^mask[i%4])
	}
	*buf = out
	_, err := c.Write(out)
	return err
}

package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
)

// serverFlags are the reference server's settings, shared by `serve` and by
// the suite's embedded reference.
type serverFlags struct {
	secret, realm, intent, protocol, channels, fault string
	dialect                                          string
	messages                                         int
	tick                                             string
	ttl, handshake, voucherWait                      time.Duration
	requestTimeout, idleTimeout                      time.Duration
	maxConns, maxConnsPerAddr                        int
	maxFrame                                         int64
	pinAmount, digitData                             bool
}

func (f *serverFlags) register(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
	DurationVar(*time.Duration, string, time.Duration, string)
	Int64Var(*int64, string, int64, string)
	BoolVar(*bool, string, bool, string)
}) {
	fs.StringVar(&f.secret, "secret", "", "HMAC secret for challenge ids (default: random per start)")
	fs.StringVar(&f.realm, "realm", "mpp-conformance", "challenge realm")
	fs.StringVar(&f.intent, "intent", server.IntentSession, "intent to sell: charge or session")
	fs.StringVar(&f.protocol, "session-protocol", string(tempo.V2), "session protocol offered: v1 or v2")
	fs.IntVar(&f.messages, "messages", 60, "application messages per paid connection")
	fs.StringVar(&f.tick, "tick", "1000", "price of one message in base units (session tick cost, charge amount)")
	fs.DurationVar(&f.ttl, "challenge-ttl", 5*time.Minute, "challenge lifetime")
	fs.StringVar(&f.channels, "channels", "", "fixture channels JSON file (default: the embedded fixtures/channels.json)")
	fs.DurationVar(&f.handshake, "handshake-timeout", 30*time.Second, "close a connection that has not paid within this time")
	fs.DurationVar(&f.voucherWait, "voucher-timeout", 60*time.Second, "close a stream that waited this long for a voucher")
	fs.Int64Var(&f.maxFrame, "max-frame-bytes", 32<<10, "largest client frame; larger ones close with 1009")
	fs.DurationVar(&f.requestTimeout, "request-timeout", 10*time.Second, "drop an HTTP request (headers and body, upgrades included) not received within this time")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 30*time.Second, "close a keep-alive HTTP connection idle this long")
	fs.IntVar(&f.maxConns, "max-conns", 4096, "connections open at once; one more is answered 503")
	fs.IntVar(&f.maxConnsPerAddr, "max-conns-per-addr", 256, "connections open at once from one IP address; one more is answered 503")
	fs.StringVar(&f.fault, "fault", "", "inject a known defect (a mutant), for demonstrating the suite; known: "+faultNames())
	fs.StringVar(&f.dialect, "dialect", "a", "WebSocket dialect: a (mpp-rs, in-band challenge) or b (mppx: HTTP 402 probe on the same URL, signed close; needs --intent session)")
	fs.BoolVar(&f.digitData, "digit-data", false, "send message data and charge receipt references as digit strings (\"17\"), a target shape that tests type checks")
	fs.BoolVar(&f.pinAmount, "pin-amount", false, "dialect b: refuse a credential whose echoed amount is not the tick with mppx's own message, as mppx serve({amount})")
}

// config turns the flags into a server configuration.
func (f *serverFlags) config() (server.Config, error) {
	tick, ok := new(big.Int).SetString(f.tick, 10)
	if !ok || tick.Sign() <= 0 {
		return server.Config{}, usagef("--tick %q: want a positive decimal amount", f.tick)
	}
	if f.messages < 0 {
		return server.Config{}, usagef("--messages %d: must not be negative", f.messages)
	}
	if f.ttl <= 0 || f.handshake <= 0 || f.voucherWait <= 0 || f.requestTimeout <= 0 || f.idleTimeout <= 0 {
		return server.Config{}, usagef("durations must be positive")
	}
	if f.maxConns <= 0 || f.maxConnsPerAddr <= 0 {
		return server.Config{}, usagef("--max-conns and --max-conns-per-addr must be positive")
	}
	chs := fixtures.Default()
	if f.channels != "" {
		var err error
		if chs, err = fixtures.Load(f.channels); err != nil {
			return server.Config{}, usageError{err}
		}
	}
	secret := []byte(f.secret)
	if f.secret == "" {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return server.Config{}, fmt.Errorf("random secret: %w", err)
		}
		secret = []byte(hex.EncodeToString(b[:]))
	}
	dialect, err := parseDialect(f.dialect)
	if err != nil {
		return server.Config{}, err
	}
	if dialect == frame.B && f.intent != server.IntentSession {
		return server.Config{}, usagef("--dialect b sells sessions only: drop --intent %s", f.intent)
	}
	if f.pinAmount && dialect != frame.B {
		return server.Config{}, usagef("--pin-amount applies to --dialect b")
	}
	fault := server.Fault(f.fault)
	if fault != server.FaultNone && !fault.Valid() {
		return server.Config{}, usagef("--fault %q: unknown; known: %v", f.fault, server.Faults)
	}
	descs := make([]tempo.Channel, len(chs))
	for i, ch := range chs {
		descs[i] = ch.Channel
	}
	return server.Config{
		Secret:       secret,
		Realm:        f.realm,
		Intent:       f.intent,
		Messages:     f.messages,
		Tick:         tick,
		ChallengeTTL: f.ttl,
		Protocol:     tempo.Protocol(f.protocol),
		Channels:     descs,
		Fault:        fault,
		Dialect:      dialect,
		PinAmount:    f.pinAmount,
		DigitData:    f.digitData,
		Limits: server.Limits{
			MaxFrameBytes:         f.maxFrame,
			HandshakeTimeout:      f.handshake,
			VoucherTimeout:        f.voucherWait,
			RequestTimeout:        f.requestTimeout,
			IdleTimeout:           f.idleTimeout,
			MaxConnections:        f.maxConns,
			MaxConnectionsPerAddr: f.maxConnsPerAddr,
		},
	}, nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr, "conformance serve [flags]")
	var sf serverFlags
	sf.register(fs)
	addr := fs.String("addr", "127.0.0.1:8402", "listen address")
	verbose := fs.Bool("v", false, "log every connection to stderr")
	tlsCert := fs.String("tls-cert", "", "serve wss:// with this PEM certificate (chain first); needs --tls-key")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments, got %q", fs.Args())
	}
	tlsCfg, err := tlsConfig(*tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	cfg, err := sf.config()
	if err != nil {
		return err
	}
	if *verbose {
		cfg.Log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	srv, err := server.New(cfg)
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return setupError{fmt.Errorf("listen on %s: %w", *addr, err)}
	}
	hs, capped, err := server.NewHTTP(srv, ln, cfg.Limits)
	if err != nil {
		ln.Close()
		return usageError{err}
	}
	scheme := "ws"
	if tlsCfg != nil {
		hs.TLSConfig, scheme = tlsCfg, "wss"
	}
	// The URL comes first, alone on its line, so scripts can read it.
	fmt.Fprintf(stdout, "%s://%s/\n", scheme, ln.Addr())
	fmt.Fprintf(stderr, "reference server: dialect %s, intent %s, %d messages at tick %s, challenge TTL %s\n", cfg.Dialect.Name(), cfg.Intent, cfg.Messages, cfg.Tick, cfg.ChallengeTTL)
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- hs.ServeTLS(capped, "", "")
			return
		}
		errc <- hs.Serve(capped)
	}()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shut)
	srv.Close()
	return nil
}

// tlsConfig loads --tls-cert and --tls-key; nil without them.
func tlsConfig(cert, key string) (*tls.Config, error) {
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, usagef("--tls-cert %s, --tls-key %s: %v", cert, key, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

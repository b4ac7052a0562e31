// Package server is the reference MPP WebSocket server: it issues
// HMAC-bound challenges, verifies credentials and EIP-712 vouchers, meters a
// stream tick by tick against the channel store, asks for vouchers when the
// paid balance runs out and ends with a receipt. It is strict where the SDKs
// allow it to be and bounded against hostile peers.
package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/channel"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// Server is an http.Handler that upgrades every request to a paid WebSocket.
type Server struct {
	cfg        Config
	offer      Offer
	request    any    // the challenge request object, fixed for the server's life
	requestB64 string // its wire form, which a dialect B echo must carry
	method     string
	store      *channel.Store
	verifier   *tempo.Verifier
	fault      faultState // what the injected mutant remembers, if any

	ctx    context.Context // cancelled by Close: ends every connection
	cancel context.CancelFunc
	mu     sync.Mutex // orders wg.Add against Close's Wait
	closed bool
	wg     sync.WaitGroup // every connection and its read and verify loops
}

// New validates cfg, applies defaults and builds the channel store.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	s := &Server{cfg: cfg}
	var err error
	switch cfg.Intent {
	case IntentSession:
		if s.offer, err = offerFor(cfg.Protocol, cfg.Channels); err != nil {
			return nil, fmt.Errorf("server config: %w", err)
		}
		s.method = SessionMethod
		s.request = tempo.SessionRequest{
			Amount:    cfg.Tick.String(),
			Currency:  s.offer.Token.String(),
			Recipient: s.offer.Payee.String(),
			UnitType:  cfg.UnitType,
			MethodDetails: tempo.MethodDetails{
				ChainID:         s.offer.ChainID,
				EscrowContract:  s.offer.Escrow.String(),
				SessionProtocol: s.offer.Protocol,
				MinVoucherDelta: cfg.Fault.minVoucherDelta(),
			},
		}
	case IntentCharge:
		s.method = TestMethod
		s.request = chargeRequest{Amount: cfg.Tick.String(), Currency: "test", Recipient: cfg.Realm}
	}
	if s.requestB64, err = mpp.EncodeJSON(s.request); err != nil {
		return nil, fmt.Errorf("server config: request: %w", err)
	}
	s.requestB64 = cfg.Fault.requestText(s.requestB64)
	// An equal voucher adds no funds: mpp-rs (dialect A) rejects it, mppx
	// (dialect B) acknowledges it as an idempotent retry.
	equal := channel.RejectEqual
	if cfg.Dialect.Name() == frame.B.Name() {
		equal = channel.IdempotentEqual
	}
	opts := channel.Options{Equal: equal, RacyCharge: cfg.Fault == FaultRacyCharge, IgnoreDeposit: cfg.Fault == FaultOverDeposit}
	if s.store, err = channel.NewStore(cfg.Channels, opts); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	// One table per channel signer: a few hundred KiB each, built at the
	// signer's first voucher.
	s.verifier = tempo.NewVerifier(len(cfg.Channels))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// chargeRequest is the request of the test-method charge challenge.
type chargeRequest struct {
	Amount    string `json:"amount"`
	Currency  string `json:"currency"`
	Recipient string `json:"recipient"`
}

// Store exposes the channel accounting, for tests and for tools that want to
// show a channel's state.
func (s *Server) Store() *channel.Store { return s.store }

// Config returns the effective configuration, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// Close ends every connection and waits for their goroutines. Later
// upgrades are refused.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// track counts one more connection, unless the server is closed.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// ServeHTTP upgrades the request and runs one paid connection. A dialect B
// server answers a plain GET or HEAD with its 402 challenge.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := s.cfg.Dialect.Name() == frame.B.Name()
	upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	if r.ContentLength != 0 {
		// No route reads a body. Closing after the answer spares the
		// HTTP server from draining one first, which a peer sending a
		// byte a second would stretch to the whole request timeout.
		// Accept's own answer would ask to keep the connection.
		w.Header().Set("Connection", "close")
		if upgrade || !b {
			http.Error(w, "no request with a body is served here: GET the URL to upgrade to a WebSocket", http.StatusBadRequest)
			return
		}
	}
	if b && !upgrade {
		s.probe(w, r)
		return
	}
	if !s.track() {
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	over, done := s.capped()
	defer done()
	if over {
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(s.lockWrites(w), r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		// Accept has written the HTTP error response.
		s.cfg.Log.Debug("upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ws.SetReadLimit(s.readLimit())
	remote := r.RemoteAddr // not r: the request would live as long as the connection
	c := newConn(s, ws)
	c.run(s.ctx)
	s.cfg.Log.Info("connection ended", "remote", remote, "outcome", c.getOutcome())
}

// issue creates a fresh challenge for one connection. A random opaque nonce
// makes its id unique to the connection, so a credential can be bound to
// the connection it was issued on.
func (s *Server) issue() (mpp.Challenge, error) {
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return mpp.Challenge{}, fmt.Errorf("challenge nonce: %w", err)
	}
	ch, err := mpp.NewChallenge(s.cfg.Secret, mpp.ChallengeParams{
		Realm:   s.cfg.Realm,
		Method:  s.method,
		Intent:  s.cfg.Intent,
		Request: s.request,
		Opaque:  map[string]string{"nonce": base64.RawURLEncoding.EncodeToString(nonce[:])},
		Expires: s.cfg.Now().Add(s.cfg.ChallengeTTL),
	})
	return s.issued(ch), err
}

// timestamp formats a receipt time as mppx and mpp-go do.
func (s *Server) timestamp() string {
	if s.cfg.Fault == FaultUnixTimestamp {
		return strconv.FormatInt(s.cfg.Now().Unix(), 10)
	}
	return mpp.FormatExpires(s.cfg.Now())
}

var _ http.Handler = (*Server)(nil)

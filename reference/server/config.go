package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/tempo"
)

// Intents the reference server can sell.
const (
	IntentCharge  = "charge"
	IntentSession = "session"
)

// TestMethod is the payment method of the charge intent. Its verifier accepts
// any JSON-object payload bound to a valid challenge, as the mpp-rs WebSocket
// example does: it exercises the transport, not a payment network.
const TestMethod = "test"

// SessionMethod is the payment method of the session intent.
const SessionMethod = "tempo"

// Config configures a reference server. The zero value of every field except
// Secret and Channels (for sessions) has a sane default, applied by New.
type Config struct {
	// Secret keys the challenge-id HMAC (protocol.md §2).
	Secret []byte
	// Realm is the challenge realm. Default "mpp-conformance".
	Realm string
	// Intent is IntentCharge or IntentSession. Default IntentSession.
	Intent string
	// Messages is the number of application messages per paid connection.
	// Default 60: enough for every voucher case of the suite.
	Messages int
	// Tick is the price of one message in base units: the session's tick cost
	// and the charge amount. Default 1000.
	Tick *big.Int
	// ChallengeTTL is the lifetime of an issued challenge. Default 5 minutes,
	// as every SDK.
	ChallengeTTL time.Duration
	// Protocol selects the session offer among the channels: every channel of
	// this protocol must share payee, token, chain and escrow. Default V2.
	Protocol tempo.Protocol
	// Channels are the pre-opened channels whose vouchers the server accepts.
	Channels []tempo.Channel
	// UnitType names the metered unit in the session request. Default "message".
	UnitType string
	// DigitData makes message data and the charge receipt reference digit
	// strings ("17" instead of "unit-17"): JSON strings a sloppy client or
	// suite could mistake for numbers.
	DigitData bool
	// Limits bound what a hostile peer can make the server hold or do.
	Limits Limits
	// Now is the clock used for challenge expiry. Default time.Now.
	Now func() time.Time
	// Log receives one line per connection outcome. Default discards.
	Log *slog.Logger
	// Dialect is the WebSocket framing. Default frame.A. Dialect B sells
	// sessions only, as mppx does.
	Dialect frame.Dialect
	// PinAmount makes a dialect B server refuse a credential whose echoed
	// request amount is not its tick with mppx's own message, before any
	// other check (mppx serve({amount})). Without it the same credential
	// fails the HMAC or the route match.
	PinAmount bool
	// Fault injects one deliberate defect (a "mutant"), for proving that the
	// conformance suite catches it. Default FaultNone.
	Fault Fault
}

// Limits bound what one peer, or many, can make the server hold. The first
// six bound a WebSocket connection (Server); the last four bound the HTTP
// side and the number of connections (NewHTTP), so that no idle or slow
// peer holds a socket for free.
type Limits struct {
	// MaxFrameBytes is the largest client frame read; a larger one closes the
	// connection with 1009. Default 32 KiB: two 16 KiB credential tokens.
	MaxFrameBytes int64
	// MaxPendingCredentials is how many credential frames may wait for
	// verification; one more closes the connection with 1008. Default 32, as
	// mppx.
	MaxPendingCredentials int
	// MaxRejected is how many rejected frames (bad JSON, unknown type, failed
	// credentials) a connection may send before it is closed with 1008.
	// Default 64.
	MaxRejected int
	// HandshakeTimeout is how long a connection may stay unpaid. Default 30s,
	// the mpp-rs client's handshake timeout.
	HandshakeTimeout time.Duration
	// VoucherTimeout is how long a stream waits for a voucher after asking for
	// one. Default 60s (session spec: SHOULD close after e.g. 60 s).
	VoucherTimeout time.Duration
	// WriteTimeout bounds every frame write, so a peer that stops reading
	// cannot hold the server. Default 10s. It also bounds writing a plain
	// HTTP response.
	WriteTimeout time.Duration
	// RequestTimeout is how long a plain HTTP request (headers and body,
	// the upgrade request included) may take to arrive. Default 10s.
	RequestTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request. Default 30s.
	IdleTimeout time.Duration
	// MaxConnections caps the connections open at once, HTTP and WebSocket
	// alike; one more is answered 503 and closed. Default 4096, well under
	// a common 10,000+ file limit.
	MaxConnections int
	// MaxConnectionsPerAddr caps the connections open at once from one
	// remote IP address, answered like MaxConnections. Default 256: room
	// for the suite's 100 concurrent flows from one host.
	MaxConnectionsPerAddr int
}

func (c *Config) setDefaults() {
	if c.Realm == "" {
		c.Realm = "mpp-conformance"
	}
	if c.Intent == "" {
		c.Intent = IntentSession
	}
	if c.Messages == 0 {
		c.Messages = 60
	}
	if c.Tick == nil {
		c.Tick = big.NewInt(1000)
	}
	if c.ChallengeTTL == 0 {
		c.ChallengeTTL = 5 * time.Minute
	}
	if c.Protocol == "" {
		c.Protocol = tempo.V2
	}
	if c.UnitType == "" {
		c.UnitType = "message"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Dialect == nil {
		c.Dialect = frame.A
	}
	c.Limits.setDefaults()
}

func (l *Limits) setDefaults() {
	if l.MaxFrameBytes == 0 {
		l.MaxFrameBytes = 32 << 10
	}
	if l.MaxPendingCredentials == 0 {
		l.MaxPendingCredentials = 32
	}
	if l.MaxRejected == 0 {
		l.MaxRejected = 64
	}
	if l.HandshakeTimeout == 0 {
		l.HandshakeTimeout = 30 * time.Second
	}
	if l.VoucherTimeout == 0 {
		l.VoucherTimeout = 60 * time.Second
	}
	if l.WriteTimeout == 0 {
		l.WriteTimeout = 10 * time.Second
	}
	if l.RequestTimeout == 0 {
		l.RequestTimeout = 10 * time.Second
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = 30 * time.Second
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = 4096
	}
	if l.MaxConnectionsPerAddr == 0 {
		l.MaxConnectionsPerAddr = 256
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Secret) == 0 {
		errs = append(errs, errors.New("secret is empty"))
	}
	if c.Intent != IntentCharge && c.Intent != IntentSession {
		errs = append(errs, fmt.Errorf("intent %q: want %q or %q", c.Intent, IntentCharge, IntentSession))
	}
	if c.Messages < 0 {
		errs = append(errs, fmt.Errorf("messages %d: must not be negative", c.Messages))
	}
	if c.Tick.Sign() <= 0 {
		errs = append(errs, fmt.Errorf("tick %s: must be positive", c.Tick))
	}
	if c.ChallengeTTL < 0 {
		errs = append(errs, fmt.Errorf("challenge TTL %s: must be positive", c.ChallengeTTL))
	}
	if !c.Protocol.Valid() {
		errs = append(errs, fmt.Errorf("session protocol %q: want v1 or v2", c.Protocol))
	}
	if err := c.Limits.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Dialect.Name() == frame.B.Name() && c.Intent != IntentSession {
		errs = append(errs, fmt.Errorf("dialect B sells sessions only, not %q", c.Intent))
	}
	if c.Fault != FaultNone && !c.Fault.Valid() {
		errs = append(errs, fmt.Errorf("fault %q: unknown", c.Fault))
	}
	return errors.Join(errs...)
}

func (l Limits) validate() error {
	if l.MaxFrameBytes < 1024 || l.MaxPendingCredentials < 1 || l.MaxRejected < 1 ||
		l.MaxConnections < 1 || l.MaxConnectionsPerAddr < 1 ||
		l.HandshakeTimeout < 0 || l.VoucherTimeout < 0 || l.WriteTimeout < 0 ||
		l.RequestTimeout < 0 || l.IdleTimeout < 0 {
		return fmt.Errorf("limits %+v: frame size must be at least 1024 bytes, counts at least 1, timeouts positive", l)
	}
	return nil
}

// Offer is what a session challenge sells: the terms every accepted channel
// must match (protocol.md §6.2).
type Offer struct {
	Protocol tempo.Protocol
	ChainID  uint64
	Escrow   tempo.Address
	Payee    tempo.Address
	Token    tempo.Address
}

// offerFor derives the session offer from the channels of protocol p and
// checks that they agree on it.
func offerFor(p tempo.Protocol, channels []tempo.Channel) (Offer, error) {
	var o Offer
	n := 0
	for _, ch := range channels {
		if ch.Protocol != p {
			continue
		}
		c := Offer{ch.Protocol, ch.ChainID, ch.Escrow, ch.Payee, ch.Token}
		if n == 0 {
			o = c
		} else if c != o {
			return Offer{}, fmt.Errorf("channel %s: terms %+v differ from %+v; one server offers one set of terms", ch.ID, c, o)
		}
		n++
	}
	if n == 0 {
		return Offer{}, fmt.Errorf("no %s channel: a session server needs at least one", p)
	}
	return o, nil
}

// matches reports whether ch can pay for this offer.
func (o Offer) matches(ch tempo.Channel) bool {
	return o == Offer{ch.Protocol, ch.ChainID, ch.Escrow, ch.Payee, ch.Token}
}

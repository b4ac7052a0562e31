package suite

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
)

// Reference is the embedded reference implementation the suite runs against
// when no target is given: endpoints of one process on loopback, so every
// case has a target that fits it.
type Reference struct {
	// URLs are the endpoints: dialect A charge, session and short-TTL
	// charge; dialect B (session only) session and short-TTL session.
	URLs   []string
	Secret string
	hs     *http.Server
	srvs   []*server.Server
}

// ReferenceOptions select the reference's variant.
type ReferenceOptions struct {
	// Fault injects a mutant into every endpoint.
	Fault server.Fault
	// Protocol is the session protocol offered. Default v2.
	Protocol tempo.Protocol
	// Channels default to the embedded fixtures.
	Channels []fixtures.Channel
	// Dialect is "a" (default) or "b".
	Dialect string
	// Messages per paid connection. Default 60 (session), 5 (charge).
	Messages int
	// DigitData sends digit-string message data and charge references.
	DigitData bool
	// Intent keeps only the endpoints of one intent: "charge" or
	// "session". Default both (dialect B sells sessions only).
	Intent string
	// ChallengeTTL, if set, is every endpoint's challenge lifetime.
	ChallengeTTL time.Duration
}

// ShortTTL is the challenge lifetime of the reference's short-TTL endpoint.
const ShortTTL = 2 * time.Second

// StartReference starts the reference endpoints on a loopback port.
func StartReference(o ReferenceOptions) (*Reference, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	r := &Reference{Secret: hex.EncodeToString(b[:])}
	chs := o.Channels
	if chs == nil {
		chs = fixtures.Default()
	}
	var descs []tempo.Channel
	for _, ch := range chs {
		descs = append(descs, ch.Channel)
	}
	base := server.Config{
		Secret:    []byte(r.Secret),
		Realm:     "reference.mpp-conformance",
		Tick:      big.NewInt(1000),
		Protocol:  o.Protocol,
		Channels:  descs,
		Fault:     o.Fault,
		DigitData: o.DigitData,
	}
	type endpoint struct {
		path     string
		intent   string
		messages int
		ttl      time.Duration
	}
	endpoints := []endpoint{
		{"/charge", server.IntentCharge, 5, 5 * time.Minute},
		{"/session", server.IntentSession, 60, 5 * time.Minute},
		{"/short-ttl", server.IntentCharge, 5, ShortTTL},
	}
	switch o.Dialect {
	case "", "a":
	case "b":
		base.Dialect = frame.B
		endpoints = []endpoint{
			{"/session", server.IntentSession, 60, 5 * time.Minute},
			{"/short-ttl", server.IntentSession, 60, ShortTTL},
		}
	default:
		return nil, fmt.Errorf("reference: dialect %q: want a or b", o.Dialect)
	}
	var kept []endpoint
	for _, ep := range endpoints {
		if o.Intent == "" || ep.intent == o.Intent {
			if o.Messages > 0 {
				ep.messages = o.Messages
			}
			if o.ChallengeTTL > 0 {
				ep.ttl = o.ChallengeTTL
			}
			kept = append(kept, ep)
		}
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("reference: dialect %s has no %s endpoint", o.Dialect, o.Intent)
	}
	endpoints = kept
	mux := http.NewServeMux()
	for _, ep := range endpoints {
		cfg := base
		cfg.Intent, cfg.Messages, cfg.ChallengeTTL = ep.intent, ep.messages, ep.ttl
		srv, err := server.New(cfg)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("reference %s: %w", ep.path, err)
		}
		r.srvs = append(r.srvs, srv)
		mux.Handle(ep.path, srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("reference: %w", err)
	}
	for _, ep := range endpoints {
		r.URLs = append(r.URLs, fmt.Sprintf("ws://%s%s", ln.Addr(), ep.path))
	}
	// The reference's own HTTP limits, with room for the suite: all of its
	// connections come from loopback, and cases run side by side.
	hs, capped, err := server.NewHTTP(mux, ln, server.Limits{MaxConnectionsPerAddr: 4096})
	if err != nil {
		ln.Close()
		r.Close()
		return nil, fmt.Errorf("reference: %w", err)
	}
	r.hs = hs
	go r.hs.Serve(capped)
	return r, nil
}

// Close stops the endpoints and their connections.
func (r *Reference) Close() {
	if r.hs != nil {
		r.hs.Close()
	}
	for _, s := range r.srvs {
		s.Close()
	}
}

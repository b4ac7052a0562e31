package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
	"github.com/mppws/conformance/suite/peer"
)

// Target is one URL under test and what the suite learned of it by
// connecting once: its dialect and what its challenge sells.
type Target struct {
	URL     string
	Dialect frame.Dialect
	Intent  string
	Method  string
	// TTL is the challenge lifetime seen at discovery (expires - now).
	TTL time.Duration
	// Session terms, for a session target.
	Request  tempo.SessionRequest
	Tick     *big.Int
	Channels []fixtures.Channel // fixture channels that match the terms
	// NoChannel says why a session target has no usable channel.
	NoChannel string
}

func (t *Target) String() string {
	s := fmt.Sprintf("%s (dialect %s, %s/%s, challenge TTL %s", t.URL, t.Dialect.Name(), t.Method, t.Intent, t.TTL.Round(time.Second))
	if t.Intent == "session" {
		s += fmt.Sprintf(", protocol %s, tick %s, %d fixture channels", protocolOf(t.Request), t.Tick, len(t.Channels))
	}
	return s + ")"
}

func protocolOf(r tempo.SessionRequest) tempo.Protocol {
	if r.MethodDetails.SessionProtocol == "" {
		return tempo.V1 // absent means v1 (protocol.md §6.1)
	}
	return r.MethodDetails.SessionProtocol
}

// discover connects once to learn the target's dialect and offer. Dialect A
// announces itself with a challenge frame right after the upgrade.
func discover(ctx context.Context, url, dialect string, chs []fixtures.Channel, wait time.Duration) (*Target, error) {
	tr := peer.NewTranscript()
	p, err := peer.Dial(ctx, url, frame.A, tr, "")
	if err != nil {
		return nil, err
	}
	defer p.Close()
	e, ok := p.Next(wait)
	switch {
	case !ok:
		return nil, fmt.Errorf("%s sent nothing within %s after the upgrade: not dialect A (the server speaks first there)", url, wait)
	case !e.IsFrame(frame.KindChallenge):
		return nil, fmt.Errorf("%s: first frame is %s, want a dialect A challenge", url, e)
	}
	var c mpp.Challenge
	if err := json.Unmarshal(e.Frame.Challenge, &c); err != nil {
		return nil, fmt.Errorf("%s: challenge object: %w", url, err)
	}
	t := &Target{URL: url, Dialect: frame.A, Intent: c.Intent, Method: c.Method}
	if exp, err := c.ExpiresAt(); err == nil {
		t.TTL = time.Until(exp)
	}
	if c.Intent != "session" {
		return t, nil
	}
	if err := mpp.DecodeJSON(c.Request, &t.Request); err != nil {
		t.NoChannel = fmt.Sprintf("session request does not decode: %v", err)
		return t, nil
	}
	p0 := protocolOf(t.Request)
	if t.Tick, err = tempo.ParseAmount(t.Request.Amount, p0); err != nil || t.Tick.Sign() == 0 {
		t.NoChannel = fmt.Sprintf("session amount %q is not a positive decimal tick cost", t.Request.Amount)
		return t, nil
	}
	for _, ch := range chs {
		if ch.Protocol == p0 && ch.ChainID == t.Request.MethodDetails.ChainID &&
			strings.EqualFold(ch.Escrow.String(), t.Request.MethodDetails.EscrowContract) &&
			strings.EqualFold(ch.Payee.String(), t.Request.Recipient) &&
			strings.EqualFold(ch.Token.String(), t.Request.Currency) {
			t.Channels = append(t.Channels, ch)
		}
	}
	if len(t.Channels) == 0 {
		t.NoChannel = fmt.Sprintf("no fixture channel matches the challenge (protocol %s, chainId %d, escrow %s, recipient %s, currency %s); pass --channels with the target's channels",
			p0, t.Request.MethodDetails.ChainID, t.Request.MethodDetails.EscrowContract, t.Request.Recipient, t.Request.Currency)
	}
	return t, nil
}

package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
	"github.com/mppws/conformance/suite/connect"
	"github.com/mppws/conformance/suite/peer"
)

// Target is one URL under test and what the suite learned of it by
// connecting once: its dialect and what its challenge sells.
type Target struct {
	URL     string
	Dialect Dialect
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

// discover connects once to learn the target's dialect and offer. Dialect
// A announces itself with a challenge frame right after the upgrade; a
// dialect B server stays silent and answers an HTTP probe of the same URL
// with 402.
func discover(ctx context.Context, d *connect.Dialer, url, dialect string, chs []fixtures.Channel, wait time.Duration) (*Target, error) {
	var (
		c    mpp.Challenge
		dl   Dialect
		errA error
	)
	if dialect != "b" {
		if dialect == "auto" {
			wait = min(wait, time.Second) // an A server speaks at once
		}
		c, errA = challengeFrame(ctx, d, url, wait)
		dl = DialectA
	}
	if dialect == "b" || (dialect == "auto" && errA != nil) {
		var errB error
		if c, _, errB = probe(ctx, d, url, nil); errB != nil {
			if dialect == "b" {
				return nil, errB
			}
			return nil, fmt.Errorf("%s speaks neither dialect: %w; and %w", url, errA, errB)
		}
		dl = DialectB
	} else if errA != nil {
		return nil, errA
	}
	t := &Target{URL: url, Dialect: dl, Intent: c.Intent, Method: c.Method}
	if exp, err := c.ExpiresAt(); err == nil {
		t.TTL = time.Until(exp)
	}
	if c.Intent == "session" {
		t.sessionTerms(c, chs)
	}
	return t, nil
}

// challengeFrame reads a dialect A challenge frame from a fresh connection.
func challengeFrame(ctx context.Context, d *connect.Dialer, url string, wait time.Duration) (mpp.Challenge, error) {
	p, err := peer.Dial(ctx, url, frame.A, peer.NewTranscript(), "", d.DialOptions())
	if err != nil {
		return mpp.Challenge{}, err
	}
	defer p.Close()
	e, ok := p.Next(wait)
	switch {
	case !ok:
		return mpp.Challenge{}, fmt.Errorf("no frame within %s of the upgrade (a dialect A server speaks first)", wait)
	case !e.IsFrame(frame.KindChallenge):
		return mpp.Challenge{}, fmt.Errorf("first frame is %s, not a dialect A challenge", e)
	}
	var c mpp.Challenge
	if err := json.Unmarshal(e.Frame.Challenge, &c); err != nil {
		return mpp.Challenge{}, fmt.Errorf("challenge object: %w", err)
	}
	return c, nil
}

// HTTPURL is the URL a dialect B client probes: ws→http, wss→https, same
// path and query.
func HTTPURL(ws string) string {
	switch {
	case strings.HasPrefix(ws, "ws://"):
		return "http://" + strings.TrimPrefix(ws, "ws://")
	case strings.HasPrefix(ws, "wss://"):
		return "https://" + strings.TrimPrefix(ws, "wss://")
	}
	return ws
}

// probe GETs the HTTP twin of a WebSocket URL, as mppx clients do, and
// returns its tempo/session challenge (or its first challenge) and the
// response. Anything but a 402 with a Payment challenge is an error.
func probe(ctx context.Context, d *connect.Dialer, url string, header http.Header) (mpp.Challenge, *http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, HTTPURL(url), nil)
	if err != nil {
		return mpp.Challenge{}, nil, fmt.Errorf("probe %s: %w", url, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := d.HTTPClient().Do(req)
	if err != nil {
		return mpp.Challenge{}, nil, fmt.Errorf("probe %s: %w", HTTPURL(url), err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		return mpp.Challenge{}, resp, fmt.Errorf("probe %s: HTTP %d, want 402 with a Payment challenge", HTTPURL(url), resp.StatusCode)
	}
	var all []mpp.Challenge
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		cs, err := mpp.ParseChallenges(h)
		if err != nil {
			return mpp.Challenge{}, resp, fmt.Errorf("probe %s: WWW-Authenticate %q: %w", HTTPURL(url), h, err)
		}
		all = append(all, cs...)
	}
	if len(all) == 0 {
		return mpp.Challenge{}, resp, fmt.Errorf("probe %s: 402 without a Payment challenge", HTTPURL(url))
	}
	for _, c := range all {
		if c.Method == "tempo" && c.Intent == "session" {
			return c, resp, nil
		}
	}
	return all[0], resp, nil
}

// sessionTerms decodes a session request and finds the fixture channels
// that can pay it.
func (t *Target) sessionTerms(c mpp.Challenge, chs []fixtures.Channel) {
	if err := mpp.DecodeJSON(c.Request, &t.Request); err != nil {
		t.NoChannel = fmt.Sprintf("session request does not decode: %v", err)
		return
	}
	p0 := protocolOf(t.Request)
	var err error
	if t.Tick, err = tempo.ParseAmount(t.Request.Amount, p0); err != nil || t.Tick.Sign() == 0 {
		t.NoChannel = fmt.Sprintf("session amount %q is not a positive decimal tick cost", t.Request.Amount)
		return
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
}

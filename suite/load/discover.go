package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/fixtures"
	refclient "github.com/mppws/conformance/reference/client"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
	"github.com/mppws/conformance/suite/connect"
)

// challengeWait is how long a dialect A target may take to send its
// challenge after the upgrade.
const challengeWait = 3 * time.Second

// offer is what the target sells, learned from its first challenge.
type offer struct {
	dialect  frame.Dialect
	tick     *big.Int
	channels []fixtures.Channel // the fixture channels that can pay it
}

// discover learns the target's dialect (unless given) and its session
// offer, and picks the fixture channels that can pay it. Detection probes
// first: a dialect B target answers the GET at once, while a dialect A
// one is known only by its challenge frame.
func (r *runner) discover(ctx context.Context) (offer, error) {
	var (
		ch  mpp.Challenge
		err error
		o   offer
	)
	switch {
	case r.cfg.Dialect == nil:
		o.dialect = frame.B
		if ch, err = r.probe(ctx); err != nil {
			if errors.As(err, new(*url.Error)) {
				return offer{}, err
			}
			o.dialect = frame.A
			errB := err
			if ch, err = r.firstChallenge(ctx); err != nil {
				return offer{}, fmt.Errorf("neither dialect: %w (B), %w (A)", errB, err)
			}
		}
	case r.cfg.Dialect.Name() == frame.B.Name():
		o.dialect = frame.B
		ch, err = r.probe(ctx)
	default:
		o.dialect = frame.A
		ch, err = r.firstChallenge(ctx)
	}
	if err != nil {
		return offer{}, err
	}
	if ch.Method != "tempo" || ch.Intent != "session" {
		return offer{}, fmt.Errorf("the target sells %s/%s; load pays tempo/session streams", ch.Method, ch.Intent)
	}
	var req tempo.SessionRequest
	if err := mpp.DecodeJSON(ch.Request, &req); err != nil {
		return offer{}, fmt.Errorf("session request: %w", err)
	}
	for _, fc := range r.cfg.Channels {
		if _, err := refclient.Pick([]fixtures.Channel{fc}, req, ""); err == nil {
			o.channels = append(o.channels, fc)
		}
	}
	if len(o.channels) == 0 {
		_, err := refclient.Pick(r.cfg.Channels, req, "")
		return offer{}, err
	}
	o.tick, err = tempo.ParseAmount(req.Amount, o.channels[0].Protocol)
	if err != nil || o.tick.Sign() == 0 {
		return offer{}, fmt.Errorf("request amount %q: want a positive tick cost", req.Amount)
	}
	return o, nil
}

// firstChallenge dials and reads the dialect A challenge frame.
func (r *runner) firstChallenge(ctx context.Context) (mpp.Challenge, error) {
	ws, err := r.dial(ctx)
	if err != nil {
		return mpp.Challenge{}, err
	}
	defer ws.CloseNow()
	rctx, cancel := context.WithTimeout(ctx, challengeWait)
	defer cancel()
	_, b, err := ws.Read(rctx)
	if err != nil {
		return mpp.Challenge{}, fmt.Errorf("no challenge frame within %s of the upgrade: %w", challengeWait, err)
	}
	f, err := frame.A.Decode(b, frame.FromServer)
	if err != nil || f.Kind != frame.KindChallenge {
		return mpp.Challenge{}, fmt.Errorf("first frame is not a dialect A challenge: %.200s", b)
	}
	return parseChallenge(f.Challenge)
}

func parseChallenge(raw json.RawMessage) (mpp.Challenge, error) {
	var c mpp.Challenge
	if err := json.Unmarshal(raw, &c); err != nil {
		return mpp.Challenge{}, fmt.Errorf("challenge object: %w", err)
	}
	if c.ID == "" || c.Request == "" {
		return mpp.Challenge{}, fmt.Errorf("challenge lacks id or request: %.200s", raw)
	}
	return c, nil
}

// dial opens a WebSocket to the target with the connection options.
func (r *runner) dial(ctx context.Context) (*websocket.Conn, error) {
	ws, resp, err := websocket.Dial(ctx, r.cfg.URL, r.cfg.Dialer.DialOptions())
	if err != nil {
		if resp != nil {
			return nil, httpStatusError{resp.StatusCode, fmt.Errorf("upgrade answered HTTP %d: %w", resp.StatusCode, err)}
		}
		return nil, fmt.Errorf("connect to %s: %w", r.cfg.URL, connect.Explain(err))
	}
	ws.SetReadLimit(1 << 20)
	return ws, nil
}

// httpStatusError is an upgrade or a probe answered with an unexpected
// HTTP status.
type httpStatusError struct {
	status int
	err    error
}

func (e httpStatusError) Error() string { return e.err.Error() }

// probe GETs the socket URL's http twin, which must answer 402 with a
// tempo/session challenge (dialect B).
func (r *runner) probe(ctx context.Context) (mpp.Challenge, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.probeURL, nil)
	if err != nil {
		return mpp.Challenge{}, fmt.Errorf("probe: %w", err)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return mpp.Challenge{}, connect.Explain(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		return mpp.Challenge{}, httpStatusError{resp.StatusCode, fmt.Errorf("probe GET %s answered %d, not 402", r.probeURL, resp.StatusCode)}
	}
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		chs, err := mpp.ParseChallenges(h)
		if err != nil {
			continue
		}
		for _, c := range chs {
			if c.Method == "tempo" && c.Intent == "session" {
				return c, nil
			}
		}
	}
	return mpp.Challenge{}, fmt.Errorf("probe GET %s: 402 without a tempo/session Payment challenge", r.probeURL)
}

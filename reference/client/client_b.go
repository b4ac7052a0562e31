package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
	jsonv2 "github.com/go-json-experiment/json"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// Dialect B (mppx, ws-dialects.md §2): the challenge comes from an HTTP 402
// probe of the WebSocket URL, the client speaks first, every credential is
// answered by a payment-receipt, and the session ends with
// payment-close-ready, a signed close credential, the settlement receipt
// and the server's close 1000. The ledger, the voucher arithmetic and
// Prepay are dialect A's.

// reprobeMargin: a challenge that expires within it is replaced by a fresh
// probe before the next credential (wevm/mppx#709, tempoxyz/mpp-rs#343).
const reprobeMargin = 5 * time.Second

// sessionClosed is the reason of the server's close after settlement.
const sessionClosed = "payment session closed"

// bState is the dialect B part of a run.
type bState struct {
	probeURL string
	http     *http.Client
	// pending are the credentials sent and not yet acknowledged, oldest
	// first: the server answers them in order.
	pending        []pendingCred
	acked          string // challenge id of the newest acknowledged credential
	closeRequested bool   // this client sent payment-close-request
	closeReady     bool   // payment-close-ready arrived; the close credential went out
	settled        bool   // the settlement receipt arrived
}

// pendingCred is a credential awaiting its payment-receipt.
type pendingCred struct {
	action      string   // "voucher" or "close"
	amount      *big.Int // its cumulativeAmount
	challengeID string   // the challenge it echoed
}

func (b *bState) await(p pendingCred) { b.pending = append(b.pending, p) }

func (r *run) isB() bool { return r.dialect.Name() == frame.B.Name() }

// runB probes, connects, pays and consumes one dialect B session, then
// settles it.
func runB(ctx context.Context, wsURL string, cfg Config) (Result, error) {
	probeURL, err := httpURL(wsURL)
	if err != nil {
		return Result{}, &Error{Step: "probe", Err: err}
	}
	r := &run{cfg: cfg, dialect: cfg.Dialect}
	r.res.Dialect = frame.B.Name()
	r.b.probeURL = probeURL
	if cfg.HTTP != nil {
		c := *cfg.HTTP
		r.b.http = &c
	} else {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		defer transport.CloseIdleConnections()
		r.b.http = &http.Client{Transport: transport}
	}
	// The probe must answer 402 itself: a redirect is a wrong status.
	r.b.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c, err := r.probe(ctx, "")
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			return Result{}, &Error{Step: "connect", Err: err}
		}
		return Result{}, &Error{Step: "probe", Err: err}
	}
	r.current = c
	r.res.Intent, r.res.Method, r.res.ChallengeID = c.Intent, c.Method, c.ID

	ws, _, err := websocket.Dial(ctx, wsURL, cfg.Dial)
	if err != nil {
		return Result{}, &Error{Step: "connect", Err: err}
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	r.ws = ws
	defer r.count()
	return r.doB(ctx)
}

// httpURL is the probe URL of a socket URL: ws→http, wss→https, same path
// and query.
func httpURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", s, err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("url %q: want ws:// or wss://", s)
	}
	u.Fragment = ""
	return u.String(), nil
}

// probe GETs the probe URL, which must answer exactly 402, and returns the
// first challenge of its WWW-Authenticate headers this client can pay.
// channel, when set, goes out as the Payment-Session hint of a re-probe.
// A transport failure is returned as the *url.Error http.Client gives.
func (r *run) probe(ctx context.Context, channel string) (mpp.Challenge, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.b.probeURL, nil)
	if err != nil {
		return mpp.Challenge{}, err
	}
	if channel != "" {
		req.Header.Set("Payment-Session", channel)
	}
	resp, err := r.b.http.Do(req)
	if err != nil {
		return mpp.Challenge{}, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		return mpp.Challenge{}, fmt.Errorf("GET %s: status %d, want exactly 402", r.b.probeURL, resp.StatusCode)
	}
	headers := resp.Header.Values("WWW-Authenticate")
	if len(headers) == 0 {
		return mpp.Challenge{}, fmt.Errorf("GET %s: 402 without WWW-Authenticate", r.b.probeURL)
	}
	var why []string
	for _, h := range headers {
		chs, err := mpp.ParseChallenges(h)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		for _, c := range chs {
			if err := r.payable(c); err != nil {
				why = append(why, fmt.Sprintf("challenge %s: %v", c.ID, err))
				continue
			}
			return c, nil
		}
	}
	return mpp.Challenge{}, fmt.Errorf("GET %s: no payable tempo/session challenge in %d WWW-Authenticate header(s): %s",
		r.b.probeURL, len(headers), strings.Join(why, "; "))
}

// payable reports why this client cannot pay c, if it cannot: it must be an
// unexpired tempo/session challenge a fixture channel matches, and once a
// channel is open, that channel at the same price.
func (r *run) payable(c mpp.Challenge) error {
	if c.Method != "tempo" || c.Intent != "session" {
		return fmt.Errorf("%s/%s, want tempo/session", c.Method, c.Intent)
	}
	exp, err := c.ExpiresAt()
	if err != nil {
		return err
	}
	if !exp.After(r.cfg.Now()) {
		return fmt.Errorf("already expired at %s", c.Expires)
	}
	var req tempo.SessionRequest
	if err := mpp.DecodeJSON(c.Request, &req); err != nil {
		return fmt.Errorf("session request: %w", err)
	}
	if r.ch.SignerKey == nil {
		_, err := r.pick(r.cfg.Channels, req, r.cfg.Channel)
		return err
	}
	if _, err := r.pick([]fixtures.Channel{r.ch}, req, ""); err != nil {
		return fmt.Errorf("the open channel %s cannot pay it: %w", r.ch.Name, err)
	}
	if tick, err := tempo.ParseAmount(req.Amount, r.ch.Protocol); err != nil || tick.Cmp(r.tick) != 0 {
		return fmt.Errorf("amount %q, but the session pays %s per unit", req.Amount, r.tick)
	}
	return nil
}

// refresh replaces the current challenge with a fresh probe's when it
// expires within reprobeMargin, so the next credential echoes a live one.
func (r *run) refresh(ctx context.Context) error {
	if r.cfg.Fault == FaultStaleChallenge {
		return nil
	}
	if exp, err := r.current.ExpiresAt(); err == nil && exp.Sub(r.cfg.Now()) > reprobeMargin {
		return nil
	}
	c, err := r.probe(ctx, r.ch.ID.String())
	if err != nil {
		return fmt.Errorf("re-probe: %w", err)
	}
	r.current = c
	r.res.Reprobes++
	return nil
}

func (r *run) doB(ctx context.Context) (Result, error) {
	if err := r.openSession(ctx); err != nil {
		return Result{}, &Error{Step: "pay", Err: err}
	}
	// The stream starts strictly after the opening voucher's receipt.
	f, err := r.read(ctx)
	switch {
	case err != nil:
		return Result{}, stepErr("pay", "waiting for the first payment-receipt: %v", err)
	case f.Kind == frame.KindError:
		return Result{}, stepErr("pay", "payment-error %d: %s", f.Status, f.Error)
	case f.Kind != frame.KindReceipt:
		return Result{}, stepErr("pay", "first frame is %s, want payment-receipt", f.Kind)
	}
	if err := r.receiptB(f.Receipt); err != nil {
		return Result{}, &Error{Step: "pay", Err: err}
	}
	for !r.b.settled {
		f, err := r.read(ctx)
		if err != nil {
			return Result{}, stepErr(r.phase(), "after %d messages: %v", len(r.res.Messages), err)
		}
		if err := r.frameB(ctx, f); err != nil {
			return Result{}, err
		}
	}
	// The server ends the session with close 1000.
	typ, b, err := r.ws.Read(ctx)
	var ce websocket.CloseError
	switch {
	case err == nil:
		return Result{}, stepErr("close", "%s frame after the settlement receipt, want close 1000: %s", typ, truncate(b))
	case !errors.As(err, &ce):
		return Result{}, stepErr("close", "after the settlement receipt: %v; want close 1000 %q", err, sessionClosed)
	case ce.Code != websocket.StatusNormalClosure || ce.Reason != sessionClosed:
		return Result{}, stepErr("close", "server closed %d %q, want 1000 %q", ce.Code, ce.Reason, sessionClosed)
	}
	return r.res, nil
}

// phase names the step a failure belongs to.
func (r *run) phase() string {
	if r.b.closeRequested || r.b.closeReady {
		return "close"
	}
	return "stream"
}

// frameB handles one frame after the opening receipt.
func (r *run) frameB(ctx context.Context, f frame.Frame) error {
	switch f.Kind {
	case frame.KindMessage:
		if r.b.closeReady {
			return stepErr("close", "message after payment-close-ready")
		}
		s, _ := f.Text()
		r.res.Messages = append(r.res.Messages, s)
		switch {
		case r.b.closeRequested:
		case r.cfg.Messages > 0 && len(r.res.Messages) >= r.cfg.Messages:
			r.b.closeRequested = true
			if err := r.send(ctx, frame.Frame{Kind: frame.KindCloseRequest}); err != nil {
				return &Error{Step: "close", Err: err}
			}
		default:
			if err := r.prepay(ctx); err != nil {
				return &Error{Step: "stream", Err: err}
			}
		}
	case frame.KindNeedVoucher:
		switch {
		case r.b.closeReady:
			return stepErr("close", "payment-need-voucher after payment-close-ready")
		case r.b.closeRequested:
			return nil // the stream stops at the close request, paid or not
		}
		if err := r.needVoucher(ctx, f.NeedVoucher); err != nil {
			return &Error{Step: "stream", Err: err}
		}
	case frame.KindReceipt:
		if err := r.receiptB(f.Receipt); err != nil {
			return &Error{Step: "receipt", Err: err}
		}
	case frame.KindCloseReady:
		if err := r.closeReadyB(ctx, f.Receipt); err != nil {
			return &Error{Step: "close", Err: err}
		}
	case frame.KindError:
		return stepErr(r.phase(), "payment-error %d: %s", f.Status, f.Error)
	default:
		return stepErr(r.phase(), "unexpected %s frame", f.Kind)
	}
	return nil
}

// sessionReceiptB parses a dialect B receipt (payment-receipt or
// payment-close-ready data) of this session's channel.
func (r *run) sessionReceiptB(raw json.RawMessage) (rc mpp.SessionReceipt, accepted, spent *big.Int, err error) {
	if err := jsonv2.Unmarshal(raw, &rc); err != nil {
		return rc, nil, nil, fmt.Errorf("session receipt: %w", err)
	}
	if rc.Method != "tempo" || rc.Intent != "session" || rc.Status != "success" {
		return rc, nil, nil, fmt.Errorf("method/intent/status %s/%s/%s, want tempo/session/success", rc.Method, rc.Intent, rc.Status)
	}
	if !strings.EqualFold(rc.ChannelID, r.ch.ID.String()) {
		return rc, nil, nil, fmt.Errorf("channelId %s, paying on %s", rc.ChannelID, r.ch.ID)
	}
	accepted, err1 := tempo.ParseAmount(rc.AcceptedCumulative, r.ch.Protocol)
	spent, err2 := tempo.ParseAmount(rc.Spent, r.ch.Protocol)
	if err := errors.Join(err1, err2); err != nil {
		return rc, nil, nil, fmt.Errorf("receipt amounts: %w", err)
	}
	return rc, accepted, spent, nil
}

// receiptB checks a payment-receipt against the oldest credential awaiting
// one. It must answer for that credential's challenge; a voucher's receipt
// accepts exactly the voucher; the settlement receipt carries a txHash and
// the close amount as the final spent.
func (r *run) receiptB(raw json.RawMessage) error {
	if len(r.b.pending) == 0 {
		return fmt.Errorf("payment-receipt with no credential awaiting one: %s", truncate(raw))
	}
	p := r.b.pending[0]
	r.b.pending = r.b.pending[1:]
	rc, accepted, spent, err := r.sessionReceiptB(raw)
	if err != nil {
		return fmt.Errorf("payment-receipt for the %s of %s: %w", p.action, p.amount, err)
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok && r.cfg.Fault != FaultIgnoreReceipts {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(rc.ChallengeID == p.challengeID, "challengeId %s, the credential echoed %s", rc.ChallengeID, p.challengeID)
	switch p.action {
	case "voucher":
		check(accepted.Cmp(p.amount) == 0, "acceptedCumulative %s, want the voucher's %s", accepted, p.amount)
		check(spent.Cmp(accepted) <= 0, "spent %s exceeds acceptedCumulative %s", spent, accepted)
		if r.cfg.Fault != FaultIgnoreReceipts {
			errs = append(errs, r.matchesArrived(spent, rc.Units, true)...)
		}
	case "close":
		signed := r.cfg.Ledger.Snapshot(r.ch.ID).Signed
		check(rc.TxHash != "", "the settlement receipt has no txHash")
		check(spent.Cmp(p.amount) == 0, "spent %s, want the close amount %s", spent, p.amount)
		check(accepted.Cmp(p.amount) >= 0 && accepted.Cmp(signed) <= 0, "acceptedCumulative %s, want between the close amount %s and the most we signed %s", accepted, p.amount, signed)
		if rc.Units != nil {
			check(new(big.Int).Mul(r.tick, new(big.Int).SetUint64(*rc.Units)).Cmp(spent) == 0, "spent %s is not units %d x tick %s", spent, *rc.Units, r.tick)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("payment-receipt for the %s of %s: %w", p.action, p.amount, errors.Join(errs...))
	}
	r.res.Receipts = append(r.res.Receipts, raw)
	r.b.acked = p.challengeID
	if p.action == "close" {
		r.res.Receipt, r.res.Session = raw, &rc
		r.b.settled = true
	}
	return nil
}

// closeReadyB checks payment-close-ready and answers it with the close
// credential: the channel signer's voucher for exactly the spent amount.
func (r *run) closeReadyB(ctx context.Context, raw json.RawMessage) error {
	if r.b.closeReady {
		return fmt.Errorf("second payment-close-ready: %s", truncate(raw))
	}
	r.b.closeReady = true
	r.res.CloseReady = raw
	rc, _, spent, err := r.sessionReceiptB(raw)
	if err != nil {
		return fmt.Errorf("payment-close-ready: %w", err)
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(r.answersFor(rc.ChallengeID), "challengeId %s, the newest credential echoed %s", rc.ChallengeID, r.b.acked)
	signed := r.cfg.Ledger.Snapshot(r.ch.ID).Signed
	check(spent.Cmp(signed) <= 0, "spent %s exceeds the most we signed %s", spent, signed)
	// The stream has stopped: close-ready must charge exactly what arrived.
	if r.cfg.Fault != FaultTrustCloseReady {
		errs = append(errs, r.matchesArrived(spent, rc.Units, false)...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("payment-close-ready: %w", errors.Join(errs...))
	}
	// A close echoing an expired challenge would be refused, and with it
	// the settlement.
	if err := r.refresh(ctx); err != nil {
		return err
	}
	p, err := r.signed("close", spent)
	if err != nil {
		return err
	}
	r.b.await(pendingCred{action: "close", amount: spent, challengeID: r.current.ID})
	return r.sendCredential(ctx, p, r.source())
}

// answersFor reports whether a close-ready may carry challenge id: the
// newest acknowledged credential's, or one still awaiting its receipt (the
// server may have applied it before the receipt went out).
func (r *run) answersFor(id string) bool {
	if id == r.b.acked {
		return true
	}
	for _, p := range r.b.pending {
		if p.challengeID == id {
			return true
		}
	}
	return false
}

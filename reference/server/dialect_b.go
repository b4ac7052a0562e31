package server

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	jsonv2 "github.com/go-json-experiment/json"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// Dialect B (mppx): the challenge comes from an HTTP 402 probe of the
// WebSocket URL, every accepted authorization is acknowledged with a
// payment-receipt, a rejection is a payment-error followed by close 1008,
// and a session ends with close-request, close-ready, a close credential,
// its receipt and close 1000 (ws-dialects.md §2).

// probe answers an HTTP GET or HEAD of the WebSocket URL with 402 and a
// session challenge, as the mppx session route does.
func (s *Server) probe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "GET the URL for a payment challenge, or upgrade to a WebSocket", http.StatusMethodNotAllowed)
		return
	}
	ch, err := mpp.NewChallenge(s.cfg.Secret, mpp.ChallengeParams{
		Realm:   s.cfg.Realm,
		Method:  s.method,
		Intent:  s.cfg.Intent,
		Request: s.request,
		Expires: s.cfg.Now().Add(s.cfg.ChallengeTTL),
	})
	if err == nil {
		var h string
		if h, err = mpp.FormatChallenge(s.issued(ch)); err == nil {
			w.Header().Set("WWW-Authenticate", h)
		}
	}
	if err != nil {
		http.Error(w, "challenge: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPaymentRequired)
}

// sessionActions are the payload actions of the session intent.
var sessionActions = map[string]bool{"open": true, "topUp": true, "voucher": true, "close": true}

// authorization verifies one dialect B authorization frame and applies it.
// Any rejection ends the connection.
func (c *conn) authorization(ctx context.Context, raw string) {
	cred, err := c.s.parseCredential(raw)
	if err != nil {
		c.failWith(ctx, websocket.StatusPolicyViolation, http.StatusBadRequest, asProblem(err).Detail, "invalid payment message")
		return
	}
	var head struct {
		Action    string  `json:"action"`
		ChannelID *string `json:"channelId"`
	}
	if jsonv2.Unmarshal(cred.Payload, &head) != nil || head.ChannelID == nil || !sessionActions[head.Action] {
		c.failWith(ctx, websocket.StatusPolicyViolation, http.StatusBadRequest, "No session credential context available.", "invalid payment message")
		return
	}
	if head.Action == "close" {
		c.requestClose()
	}
	if c.s.cfg.PinAmount {
		var req struct{ Amount string }
		if mpp.DecodeJSON(cred.Challenge.Request, &req) != nil || req.Amount != c.s.cfg.Tick.String() {
			const msg = "credential amount does not match this endpoint"
			c.failWith(ctx, websocket.StatusPolicyViolation, http.StatusPaymentRequired, msg, msg)
			return
		}
	}
	if err := c.s.checkRouteChallenge(cred.Challenge); err != nil {
		c.failProblem(ctx, err)
		return
	}
	var (
		id      tempo.Hash
		txHash  string
		first   bool
		settled *big.Int // the close amount: what the settlement receipt reports as accepted
	)
	if head.Action == "voucher" {
		c.ack.Lock()
		defer c.ack.Unlock()
	}
	switch head.Action {
	case "voucher":
		first, err = c.voucher(ctx, cred)
		id = c.meteredOr(*head.ChannelID)
	case "topUp":
		id, txHash, err = c.topUp(cred)
	case "close":
		id, txHash, settled, err = c.closeChannel(ctx, cred)
	case "open":
		err = mpp.NewProblem(mpp.SlugInvalidPayload, "open is not supported: the channels are pre-opened, send a voucher")
	}
	if err != nil {
		c.failProblem(ctx, err)
		return
	}
	// Receipts answer for the newest credential: a voucher paid against a
	// refreshed challenge moves the stream to it (wevm/mppx#709).
	c.mu.Lock()
	c.state.challengeID = cred.Challenge.ID
	c.mu.Unlock()
	if first && c.s.cfg.Fault == FaultMessageBeforeReceipt {
		c.paid <- struct{}{}
		time.Sleep(10 * time.Millisecond) // let a message overtake the receipt
		first = false
	}
	rc, err := c.sessionReceipt(id, cred.Challenge.ID, txHash)
	if err == nil && settled != nil {
		rc, err = withAccepted(rc, settled)
	}
	if err != nil {
		c.failProblem(ctx, storeProblem(err))
		return
	}
	if c.send(ctx, frame.Frame{Kind: frame.KindReceipt, Receipt: rc}) != nil {
		return
	}
	switch {
	case head.Action == "close":
		c.finish("payment session closed")
	case first:
		// The stream starts strictly after the first receipt.
		c.paid <- struct{}{}
	}
}

// meteredOr is the metered channel, or the payload's channel when none is
// metered yet (a voucher that failed to bind never gets here).
func (c *conn) meteredOr(payload string) tempo.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.bound {
		return c.state.channelID
	}
	id, _ := tempo.ParseHash(payload)
	return id
}

// checkRouteChallenge verifies a dialect B echo: the challenge came from a
// probe, not from this connection, so it must verify by HMAC, match what
// this route issues (realm, method, intent, request: mppx's pinned fields)
// and not have expired.
func (s *Server) checkRouteChallenge(echo mpp.Challenge) error {
	switch s.cfg.Fault {
	case FaultForgedID:
	case FaultSkipEcho:
		// The defect: recompute the id from this route's own parameters and
		// the echoed expires, and never look at the rest of the echo.
		own := mpp.Challenge{Realm: s.cfg.Realm, Method: s.method, Intent: s.cfg.Intent, Request: s.requestB64,
			Expires: echo.Expires, Digest: echo.Digest, Opaque: echo.Opaque}
		if subtle.ConstantTimeCompare([]byte(mpp.ComputeID(s.cfg.Secret, own)), []byte(echo.ID)) != 1 {
			return mpp.NewProblem(mpp.SlugInvalidChallenge, "challenge id does not verify: not issued by this server")
		}
	default:
		if !s.verifyID(echo) {
			return mpp.NewProblem(mpp.SlugInvalidChallenge, "challenge id does not verify: not issued by this server")
		}
		if echo.Realm != s.cfg.Realm || echo.Method != s.method || echo.Intent != s.cfg.Intent || echo.Request != s.requestB64 {
			return mpp.NewProblem(mpp.SlugInvalidChallenge, "credential does not match this route's requirements")
		}
	}
	if s.cfg.Fault == FaultExpired || (s.cfg.Fault == FaultLooseBinding && echo.Expires == "") {
		return nil
	}
	exp, err := echo.ExpiresAt()
	if err != nil {
		return mpp.NewProblem(mpp.SlugInvalidChallenge, fmt.Sprintf("challenge expires: %v", err))
	}
	if s.cfg.Now().After(exp) {
		return mpp.NewProblem(mpp.SlugPaymentExpired, fmt.Sprintf("challenge expired at %s", echo.Expires))
	}
	return nil
}

// requestClose aborts a running stream; it ends by sending close-ready. A
// close request before any stream changes nothing: the connection stays
// usable (mppx bug B10 makes it unusable).
func (c *conn) requestClose() {
	c.mu.Lock()
	cancel := c.state.streamCancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// awaitClose sends close-ready once the stream has ended and waits for the
// close credential (handled by the verifier, which closes with 1000), the
// peer's close, or the voucher timeout.
func (c *conn) awaitClose(ctx context.Context) {
	c.closeReadyOnce(ctx)
	t := time.NewTimer(c.s.cfg.Limits.VoucherTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		c.fail(ctx, websocket.StatusPolicyViolation, http.StatusRequestTimeout, fmt.Sprintf("close timeout: no close credential within %s", c.s.cfg.Limits.VoucherTimeout))
	}
}

// closeReadyOnce sends payment-close-ready with the channel's totals, at
// most once per connection.
func (c *conn) closeReadyOnce(ctx context.Context) {
	c.mu.Lock()
	sent, id, ch := c.state.closeReady, c.state.channelID, c.state.challengeID
	c.state.closeReady = true
	c.mu.Unlock()
	if sent {
		return
	}
	rc, err := c.sessionReceipt(id, ch, "")
	if err != nil {
		c.failProblem(ctx, storeProblem(err))
		return
	}
	if c.s.cfg.Fault == FaultCloseReadySpent {
		rc = bumpSpent(rc, c.s.cfg.Tick)
	}
	_ = c.send(ctx, frame.Frame{Kind: frame.KindCloseReady, Receipt: rc})
}

// streamEnded waits until a started stream has ended.
func (c *conn) streamEnded(ctx context.Context) {
	c.mu.Lock()
	done := c.state.streamDone
	c.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// sessionChannel resolves a payload's channel and checks it against the
// offer and, for v2, its descriptor.
func (c *conn) sessionChannel(channelID string, desc *tempo.Descriptor) (tempo.Channel, error) {
	id, err := tempo.ParseHash(channelID)
	if err != nil {
		return tempo.Channel{}, mpp.NewProblem(mpp.SlugInvalidPayload, fmt.Sprintf("channelId: %v", err))
	}
	ch, ok := c.s.store.Channel(id)
	if !ok {
		return tempo.Channel{}, mpp.NewProblem(mpp.SlugChannelNotFound, fmt.Sprintf("channel %s is not known to this server", id))
	}
	if !c.s.offer.matches(ch) {
		return tempo.Channel{}, mpp.NewProblem(mpp.SlugVerificationFailed, fmt.Sprintf("channel %s does not match this server's terms (payee, token, chain, escrow, protocol)", id))
	}
	if ch.Protocol == tempo.V2 && (desc == nil || !sameDescriptor(*desc, tempo.DescriptorOf(ch))) {
		return tempo.Channel{}, mpp.NewProblem(mpp.SlugVerificationFailed, "missing or wrong v2 channel descriptor")
	}
	return ch, nil
}

// topUp raises a channel's deposit. The payload carries the signed top-up
// transaction; offline nothing can broadcast it, so the reference records
// the deposit the transaction claims to add and answers with the
// transaction's keccak hash, as a chain would after inclusion.
func (c *conn) topUp(cred mpp.Credential) (tempo.Hash, string, error) {
	p, err := tempo.DecodeTopUpPayload(cred.Payload)
	if err != nil {
		return tempo.Hash{}, "", mpp.NewProblem(mpp.SlugInvalidPayload, err.Error())
	}
	ch, err := c.sessionChannel(p.ChannelID, p.Descriptor)
	if err != nil {
		return tempo.Hash{}, "", err
	}
	tx, err := hexBytes(p.Transaction)
	if p.Type != "transaction" || err != nil || len(tx) == 0 {
		return tempo.Hash{}, "", mpp.NewProblem(mpp.SlugInvalidPayload, "topUp needs type \"transaction\" and a 0x-hex signed transaction")
	}
	add, err := tempo.ParseAmount(p.AdditionalDeposit, ch.Protocol)
	if err != nil || add.Sign() == 0 {
		return tempo.Hash{}, "", mpp.NewProblem(mpp.SlugInvalidPayload, fmt.Sprintf("additionalDeposit %q: want a positive decimal amount", p.AdditionalDeposit))
	}
	st, err := c.s.store.State(ch.ID)
	if err != nil {
		return tempo.Hash{}, "", storeProblem(err)
	}
	deposit := new(big.Int).Add(st.Deposit, add)
	if deposit.Cmp(ch.Protocol.MaxAmount()) > 0 {
		return tempo.Hash{}, "", mpp.NewProblem(mpp.SlugInvalidPayload, fmt.Sprintf("deposit %s would exceed the %s amount range", deposit, ch.Protocol))
	}
	if _, err := c.s.store.TopUp(ch.ID, deposit); err != nil {
		return tempo.Hash{}, "", storeProblem(err)
	}
	return ch.ID, tempo.Keccak256(tx).String(), nil
}

// closeChannel settles the channel with the close voucher: it must be the
// channel signer's voucher for an amount that covers what was spent and
// stays within the deposit. The stream is stopped first so spent is final.
// Offline nothing is broadcast: txHash is the keccak hash of the close
// voucher's signature, a stable stand-in for the settlement transaction.
func (c *conn) closeChannel(ctx context.Context, cred mpp.Credential) (tempo.Hash, string, *big.Int, error) {
	p, err := tempo.DecodeVoucherPayload(cred.Payload)
	if err != nil {
		return tempo.Hash{}, "", nil, mpp.NewProblem(mpp.SlugInvalidPayload, "close: "+err.Error())
	}
	ch, err := c.sessionChannel(p.ChannelID, p.Descriptor)
	if err != nil {
		return tempo.Hash{}, "", nil, err
	}
	amount, err := tempo.ParseAmount(p.CumulativeAmount, ch.Protocol)
	if err != nil {
		return tempo.Hash{}, "", nil, mpp.NewProblem(mpp.SlugInvalidPayload, fmt.Sprintf("cumulativeAmount: %v", err))
	}
	sig, err := tempo.ParseSignature(p.Signature)
	if err == nil {
		err = c.s.verifySigner(ch, amount, sig)
	}
	if err != nil {
		return tempo.Hash{}, "", nil, mpp.NewProblem(mpp.SlugInvalidSignature, fmt.Sprintf("close signature: %v", err))
	}
	c.streamEnded(ctx)
	if _, err := c.s.store.Close(ch.ID, amount); err != nil {
		return tempo.Hash{}, "", nil, storeProblem(err)
	}
	return ch.ID, tempo.Keccak256(ch.ID[:], sig).String(), amount, nil
}

// hexBytes decodes a 0x-prefixed hex string of bounded size.
func hexBytes(s string) ([]byte, error) {
	if !strings.HasPrefix(s, "0x") || len(s) > 2+2*mpp.MaxHeaderBytes {
		return nil, fmt.Errorf("want 0x-prefixed hex of at most %d bytes", mpp.MaxHeaderBytes)
	}
	return hex.DecodeString(s[2:])
}

// withAccepted sets a receipt's acceptedCumulative: a settlement receipt
// reports the close voucher's amount, which the mppx client checks against
// the amount it signed (ws-dialects.md §2.6).
func withAccepted(rc json.RawMessage, amount *big.Int) (json.RawMessage, error) {
	var r mpp.SessionReceipt
	if err := json.Unmarshal(rc, &r); err != nil {
		return nil, err
	}
	r.AcceptedCumulative = amount.String()
	return json.Marshal(r)
}

// bumpSpent is FaultCloseReadySpent: close-ready claims one tick more than
// was spent.
func bumpSpent(rc json.RawMessage, tick *big.Int) json.RawMessage {
	var r mpp.SessionReceipt
	if json.Unmarshal(rc, &r) != nil {
		return rc
	}
	if spent, ok := new(big.Int).SetString(r.Spent, 10); ok {
		r.Spent = spent.Add(spent, tick).String()
	}
	b, _ := json.Marshal(r)
	return b
}

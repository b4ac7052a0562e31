package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/channel"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// voucher verifies a session credential and applies it to the channel
// store. The first accepted voucher binds the connection to its channel
// (first is true: the caller starts the stream); later ones fund it.
func (c *conn) voucher(ctx context.Context, cred mpp.Credential) (first bool, err error) {
	p, err := tempo.DecodeVoucherPayload(cred.Payload)
	if err != nil {
		return false, mpp.NewProblem(mpp.SlugInvalidPayload, err.Error())
	}
	switch p.Action {
	case "voucher":
	case "open", "topUp", "close":
		return false, mpp.NewProblem(mpp.SlugInvalidPayload, fmt.Sprintf("action %q is not supported here: channels are pre-opened, send a voucher", p.Action))
	default:
		return false, mpp.NewProblem(mpp.SlugInvalidPayload, fmt.Sprintf("unknown session action %q", p.Action))
	}
	id, err := tempo.ParseHash(p.ChannelID)
	if err != nil {
		return false, mpp.NewProblem(mpp.SlugInvalidPayload, fmt.Sprintf("channelId: %v", err))
	}
	ch, ok := c.s.store.Channel(id)
	if !ok {
		notFound := mpp.NewProblem(mpp.SlugChannelNotFound, fmt.Sprintf("channel %s is not known to this server", id))
		if c.s.cfg.Fault == FaultUnknownChannel {
			return c.unknownChannel(p, notFound)
		}
		return false, notFound
	}
	if !c.s.offer.matches(ch) {
		return false, mpp.NewProblem(mpp.SlugVerificationFailed, fmt.Sprintf("channel %s does not match this server's terms (payee, token, chain, escrow, protocol)", id))
	}
	c.mu.Lock()
	bound, metered := c.state.bound, c.state.channelID
	c.mu.Unlock()
	otherChannel := bound && id != metered
	if otherChannel && c.s.cfg.Fault != FaultWrongChannel {
		return false, mpp.NewProblem(mpp.SlugVerificationFailed, fmt.Sprintf("voucher for channel %s, but this connection meters channel %s", id, metered))
	}
	if ch.Protocol == tempo.V2 {
		if p.Descriptor == nil {
			return false, mpp.NewProblem(mpp.SlugInvalidPayload, "v2 voucher without descriptor")
		}
		if !sameDescriptor(*p.Descriptor, tempo.DescriptorOf(ch)) {
			return false, mpp.NewProblem(mpp.SlugVerificationFailed, "descriptor does not match the channel")
		}
	}
	amount, err := c.s.parseAmount(p.CumulativeAmount, ch.Protocol)
	if err != nil {
		return false, mpp.NewProblem(mpp.SlugInvalidPayload, fmt.Sprintf("cumulativeAmount: %v", err))
	}
	sig, err := tempo.ParseSignature(p.Signature)
	if err != nil {
		return false, mpp.NewProblem(mpp.SlugInvalidSignature, fmt.Sprintf("signature: %v", err))
	}
	if err := c.s.verifySigner(ch, amount, sig); err != nil {
		return false, mpp.NewProblem(mpp.SlugInvalidSignature, fmt.Sprintf("signature: %v", err))
	}
	res, err := c.s.store.Accept(channel.Voucher{ChannelID: id, Amount: amount, Signer: ch.Signer(), Signature: sig})
	switch {
	case err == nil && res.Idempotent && bound && c.s.cfg.Fault == FaultNonIncreasing:
		c.grantFree()
		return false, nil
	case err == nil && otherChannel: // FaultWrongChannel
		c.grantFree()
		return false, nil
	case err != nil && bound && c.s.cfg.Fault == FaultNonIncreasing && (errors.Is(err, channel.ErrNotIncreasing) || errors.Is(err, channel.ErrDeltaTooSmall)):
		c.grantFree()
		return false, nil
	case err != nil:
		return false, storeProblem(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.funded++
	if c.state.bound {
		return false, nil
	}
	c.state.bound, c.state.channelID = true, id
	return true, nil
}

// verifySigner checks that sig is the channel signer's voucher for amount.
// The Verifier recovers a signer's key once and then checks against a
// precomputed table, several times faster than recovery.
func (s *Server) verifySigner(ch tempo.Channel, amount *big.Int, sig []byte) error {
	switch s.cfg.Fault {
	case FaultWrongSigner:
		// The defect: a well-formed signature by anyone will do.
		_, err := tempo.RecoverVoucherSigner(ch.Domain(), ch.ID, amount, sig)
		return err
	case FaultHighS:
		sig = lowS(sig)
	case FaultAnyChain:
		return s.verifyAnyChain(ch, amount, sig)
	}
	return s.verifier.Verify(ch.Domain(), ch.ID, amount, sig, ch.Signer())
}

// sameDescriptor compares descriptors field by field, hex case-insensitively.
func sameDescriptor(a, b tempo.Descriptor) bool {
	return strings.EqualFold(a.Payer, b.Payer) && strings.EqualFold(a.Payee, b.Payee) &&
		strings.EqualFold(a.Operator, b.Operator) && strings.EqualFold(a.Token, b.Token) &&
		strings.EqualFold(a.Salt, b.Salt) && strings.EqualFold(a.AuthorizedSigner, b.AuthorizedSigner) &&
		strings.EqualFold(a.ExpiringNonceHash, b.ExpiringNonceHash)
}

// storeProblem maps a channel-store rejection to its problem type.
func storeProblem(err error) error {
	var ce *channel.Error
	if errors.As(err, &ce) {
		return mpp.NewProblem(ce.Problem, ce.Detail)
	}
	return mpp.NewProblem(mpp.SlugVerificationFailed, err.Error())
}

// streamSession meters the stream: every message is charged before it is
// sent, so no unit leaves unpaid. When the balance runs out it sends one
// needVoucher per shortage and sleeps until the channel gains funds: a
// voucher accepted on any connection wakes it at once.
//
// Dialect A ends with the receipt; dialect B ends by sending close-ready and
// waiting for the close credential (run's awaitClose), also when a close
// request aborts the stream through stop. stop ends the stream between
// units: a unit is charged only while the stream runs, and a charged unit
// is delivered (under the connection's ctx), so close-ready's spent counts
// exactly the units delivered.
func (c *conn) streamSession(ctx, stop context.Context) {
	c.mu.Lock()
	id := c.state.channelID
	c.mu.Unlock()
	tick := c.s.cfg.Tick
	cost := tick
	if c.s.cfg.Fault == FaultDoubleCharge {
		cost = new(big.Int).Lsh(tick, 1)
	}
	overDelivered := false
	for i := 1; i <= c.s.cfg.Messages; i++ {
		if stop.Err() != nil || !c.payUnit(stop, id, tick, cost, &overDelivered) || c.send(ctx, c.s.message(i)) != nil {
			c.refundDropped(ctx, id, i-1)
			return
		}
	}
	if !c.b {
		c.receipt(ctx, id)
	}
}

// payUnit charges one unit, waiting for vouchers as long as the balance is
// short. It reports false when the connection ended instead.
func (c *conn) payUnit(ctx context.Context, id tempo.Hash, tick, cost *big.Int, overDelivered *bool) bool {
	asked, askedAt := false, 0
	var deadline <-chan time.Time
	for !c.takeFree() {
		// A connection that ended while it waited must not take funds: a
		// voucher paid on another connection would buy a unit nobody gets.
		if ctx.Err() != nil {
			return false
		}
		// Counted before the charge: a voucher of this connection counted
		// after the charge's snapshot must still prompt a fresh ask, or
		// the stream waits silently for a voucher the client thinks paid.
		funded := c.fundedCount()
		st, changed, err := c.s.store.Charge(id, cost)
		if err == nil {
			return true
		}
		if !errors.Is(err, channel.ErrInsufficientBalance) {
			c.failWith(ctx, websocket.StatusInternalError, http.StatusInternalServerError, "stream failed: "+problemText(storeProblem(err)), "websocket session failed")
			return false
		}
		if c.chargeRest(id, st) {
			return true
		}
		if c.s.cfg.Fault == FaultOverDeliver && !*overDelivered {
			*overDelivered = true
			return true
		}
		if deadline == nil {
			t := time.NewTimer(c.s.cfg.Limits.VoucherTimeout)
			defer t.Stop()
			deadline = t.C
		}
		// One needVoucher per shortage, and a fresh one only when this
		// connection's own voucher fell short: vouchers of other
		// connections sharing the channel are not this client's business.
		if (!asked || funded != askedAt) && c.s.cfg.Fault != FaultNoNeedVoucher {
			ask := frame.Frame{Kind: frame.KindNeedVoucher, NeedVoucher: c.needVoucher(st, tick)}
			if c.rechallenge(ctx) != nil || c.send(ctx, ask) != nil {
				return false
			}
			asked, askedAt = true, funded
			if c.s.cfg.Fault == FaultUnitAfterAsk && !*overDelivered {
				*overDelivered = true
				return true
			}
		}
		select {
		case <-changed:
			// A barrier: the voucher that woke us may not have had its
			// receipt sent yet.
			c.ack.RLock()
			c.ack.RUnlock()
		case <-c.free:
		case <-deadline:
			c.fail(ctx, websocket.StatusPolicyViolation, http.StatusPaymentRequired, fmt.Sprintf("voucher timeout: no sufficient voucher within %s", c.s.cfg.Limits.VoucherTimeout))
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (c *conn) fundedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.funded
}

// needVoucher states a shortage as mpp-rs does: required = spent + tick.
func (c *conn) needVoucher(st channel.State, tick *big.Int) frame.NeedVoucher {
	required := new(big.Int).Add(st.Spent, tick)
	if c.s.cfg.Fault == FaultWrongRequired {
		required.Set(st.Spent)
	}
	return frame.NeedVoucher{
		ChannelID:          st.Channel.ID.String(),
		RequiredCumulative: required.String(),
		AcceptedCumulative: st.Accepted.String(),
		Deposit:            st.Deposit.String(),
	}
}

// rechallenge issues a fresh challenge before asking for a voucher when the
// current one is about to expire, so a long stream can always be topped up
// (mpp-rs bug A3: an expired challenge makes every later voucher fail).
// Dialect B has no challenge frame and issues none on the connection: its
// client re-probes over HTTP instead (wevm/mppx#709).
func (c *conn) rechallenge(ctx context.Context) error {
	if c.b {
		return nil
	}
	cur := c.current()
	exp, err := cur.ExpiresAt()
	if err != nil {
		return err
	}
	margin := min(5*time.Second, c.s.cfg.ChallengeTTL/2)
	if c.s.cfg.Now().Add(margin).Before(exp) {
		return nil
	}
	return c.challenge(ctx)
}

// receipt sends the final dialect-A session receipt and closes.
func (c *conn) receipt(ctx context.Context, id tempo.Hash) {
	raw, err := c.sessionReceipt(id, c.challengeID(), "")
	if err != nil {
		c.fail(ctx, websocket.StatusInternalError, http.StatusInternalServerError, "stream failed: "+err.Error())
		return
	}
	if c.send(ctx, frame.Frame{Kind: frame.KindReceipt, Receipt: raw}) == nil {
		c.finish("session complete")
	}
}

// sessionReceipt is the session receipt of the channel's totals
// (protocol.md §4.2): spent and units are the channel's running totals, as
// both SDKs report them.
func (c *conn) sessionReceipt(id tempo.Hash, challengeID, txHash string) (json.RawMessage, error) {
	st, err := c.s.store.State(id)
	if err != nil {
		return nil, err
	}
	spent := st.Spent
	if c.s.cfg.Fault == FaultWrongSpent {
		spent = new(big.Int).Sub(spent, c.s.cfg.Tick)
	}
	units := st.Units
	return json.Marshal(mpp.SessionReceipt{
		Method:             SessionMethod,
		Intent:             IntentSession,
		Status:             "success",
		Timestamp:          c.s.timestamp(),
		Reference:          id.String(),
		ChallengeID:        challengeID,
		ChannelID:          id.String(),
		AcceptedCumulative: st.Accepted.String(),
		Spent:              spent.String(),
		Units:              &units,
		TxHash:             txHash,
	})
}

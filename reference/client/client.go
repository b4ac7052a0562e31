// Package client is the reference MPP WebSocket client: it reads the
// challenge, pays it (a test-method payload for charge, a voucher on a
// fixture channel for session), answers every need-voucher, collects the
// stream and checks the closing receipt against its own accounting.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// Config configures a client run. Zero values get defaults.
type Config struct {
	// Channels are the fixture channels the client can sign for.
	// Default fixtures.Default().
	Channels []fixtures.Channel
	// Channel restricts the client to the fixture channel of that name.
	Channel string
	// Ledger remembers what was signed; share one across runs that use the
	// same channels. Default: a fresh ledger.
	Ledger *Ledger
	// VoucherUnits is how many units each voucher pays for. Default 100.
	VoucherUnits int
	// Prepay is how many voucher steps the client keeps paid ahead of what
	// has arrived, so a stream does not stop for a needVoucher. It must
	// cover the frames in flight. Default 0: the client pays only when asked.
	Prepay int
	// Timeout bounds the whole run. Default 60s.
	Timeout time.Duration
	// Now is the clock for challenge expiry. Default time.Now.
	Now func() time.Time
}

// Result is what a successful run saw.
type Result struct {
	Intent       string              `json:"intent"`
	Method       string              `json:"method"`
	ChallengeID  string              `json:"challengeId"`
	Channel      string              `json:"channel,omitempty"` // fixture name
	ChannelID    string              `json:"channelId,omitempty"`
	Messages     []string            `json:"-"`
	VouchersSent int                 `json:"vouchersSent"`
	NeedVouchers int                 `json:"needVouchers"`
	Receipt      json.RawMessage     `json:"receipt"`
	Session      *mpp.SessionReceipt `json:"-"`
}

// Error is a deviation from the protocol, with what the server sent.
type Error struct {
	Step string // "connect", "challenge", "pay", "stream", "receipt"
	Err  error
}

func (e *Error) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func stepErr(step string, format string, args ...any) error {
	return &Error{Step: step, Err: fmt.Errorf(format, args...)}
}

// Run connects to url (dialect A), pays and consumes one stream.
func Run(ctx context.Context, url string, cfg Config) (Result, error) {
	if cfg.Channels == nil {
		cfg.Channels = fixtures.Default()
	}
	if cfg.Ledger == nil {
		cfg.Ledger = NewLedger()
	}
	if cfg.VoucherUnits <= 0 {
		cfg.VoucherUnits = 100
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return Result{}, &Error{Step: "connect", Err: err}
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	r := &run{cfg: cfg, ws: ws}
	res, err := r.do(ctx)
	if err != nil {
		return Result{}, err
	}
	ws.Close(websocket.StatusNormalClosure, "done")
	return res, nil
}

type run struct {
	cfg Config
	ws  *websocket.Conn
	res Result

	current mpp.Challenge // newest challenge: vouchers echo it
	ch      fixtures.Channel
	tick    *big.Int
	sent    *big.Int // highest amount this run signed
	owed    *big.Int // highest voucher the server needed: it must have accepted it
	before  Account  // the ledger's view of the channel at the start
}

func (r *run) read(ctx context.Context) (frame.Frame, error) {
	typ, b, err := r.ws.Read(ctx)
	if err != nil {
		return frame.Frame{}, err
	}
	if typ != websocket.MessageText {
		return frame.Frame{}, fmt.Errorf("binary frame from server")
	}
	f, err := frame.A.Decode(b, frame.FromServer)
	if err != nil {
		return frame.Frame{}, fmt.Errorf("%w: %s", err, truncate(b))
	}
	return f, nil
}

func (r *run) send(ctx context.Context, f frame.Frame) error {
	b, err := frame.A.Encode(f)
	if err != nil {
		return err
	}
	return r.ws.Write(ctx, websocket.MessageText, b)
}

func (r *run) do(ctx context.Context) (Result, error) {
	f, err := r.read(ctx)
	if err != nil {
		return Result{}, stepErr("challenge", "first frame: %v", err)
	}
	if f.Kind != frame.KindChallenge {
		return Result{}, stepErr("challenge", "first frame is %s, want challenge", f.Kind)
	}
	if err := r.takeChallenge(f); err != nil {
		return Result{}, &Error{Step: "challenge", Err: err}
	}
	r.res.Intent, r.res.Method, r.res.ChallengeID = r.current.Intent, r.current.Method, r.current.ID
	switch r.current.Intent {
	case "charge":
		err = r.payCharge(ctx)
	case "session":
		err = r.openSession(ctx)
	default:
		err = fmt.Errorf("intent %q is not supported", r.current.Intent)
	}
	if err != nil {
		return Result{}, &Error{Step: "pay", Err: err}
	}
	for {
		f, err := r.read(ctx)
		if err != nil {
			return Result{}, stepErr("stream", "after %d messages: %v", len(r.res.Messages), err)
		}
		switch f.Kind {
		case frame.KindMessage:
			s, _ := f.Text()
			r.res.Messages = append(r.res.Messages, s)
			if err := r.prepay(ctx); err != nil {
				return Result{}, &Error{Step: "stream", Err: err}
			}
		case frame.KindChallenge:
			if err := r.takeChallenge(f); err != nil {
				return Result{}, &Error{Step: "stream", Err: err}
			}
		case frame.KindNeedVoucher:
			if err := r.needVoucher(ctx, f.NeedVoucher); err != nil {
				return Result{}, &Error{Step: "stream", Err: err}
			}
		case frame.KindError:
			return Result{}, stepErr("stream", "server error: %s", f.Error)
		case frame.KindReceipt:
			r.res.Receipt = f.Receipt
			if err := r.checkReceipt(f.Receipt); err != nil {
				return Result{}, &Error{Step: "receipt", Err: err}
			}
			return r.res, nil
		default:
			return Result{}, stepErr("stream", "unexpected %s frame", f.Kind)
		}
	}
}

// takeChallenge adopts a challenge frame after checking that it is usable.
func (r *run) takeChallenge(f frame.Frame) error {
	if f.ChallengeError != "" {
		return fmt.Errorf("challenge carries error %q", f.ChallengeError)
	}
	var c mpp.Challenge
	if err := json.Unmarshal(f.Challenge, &c); err != nil {
		return fmt.Errorf("challenge object: %w", err)
	}
	if c.ID == "" || c.Realm == "" || c.Method == "" || c.Intent == "" || c.Request == "" {
		return fmt.Errorf("challenge lacks a required param: %s", truncate(f.Challenge))
	}
	exp, err := c.ExpiresAt()
	if err != nil {
		return fmt.Errorf("challenge expires: %w", err)
	}
	if !exp.After(r.cfg.Now()) {
		return fmt.Errorf("challenge already expired at %s", c.Expires)
	}
	if r.current.ID != "" && (c.Method != r.current.Method || c.Intent != r.current.Intent) {
		return fmt.Errorf("re-challenge changed method/intent from %s/%s to %s/%s", r.current.Method, r.current.Intent, c.Method, c.Intent)
	}
	r.current = c
	return nil
}

func (r *run) credential(ctx context.Context, payload any, source string) error {
	raw, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	auth, err := mpp.FormatAuthorization(mpp.Credential{Challenge: r.current, Source: source, Payload: raw})
	if err != nil {
		return err
	}
	r.res.VouchersSent++
	return r.send(ctx, frame.Frame{Kind: frame.KindCredential, Credential: auth})
}

func (r *run) payCharge(ctx context.Context) error {
	return r.credential(ctx, map[string]string{"proof": "mpp-conformance reference client"}, "")
}

// openSession picks the fixture channel the challenge can be paid from and
// sends the opening voucher.
func (r *run) openSession(ctx context.Context) error {
	var req tempo.SessionRequest
	if err := mpp.DecodeJSON(r.current.Request, &req); err != nil {
		return fmt.Errorf("session request: %w", err)
	}
	ch, err := Pick(r.cfg.Channels, req, r.cfg.Channel)
	if err != nil {
		return err
	}
	tick, err := tempo.ParseAmount(req.Amount, ch.Protocol)
	if err != nil || tick.Sign() == 0 {
		return fmt.Errorf("request amount %q: want a positive tick cost", req.Amount)
	}
	r.ch, r.tick, r.sent, r.owed = ch, tick, new(big.Int), new(big.Int)
	r.before = r.cfg.Ledger.Snapshot(ch.ID)
	r.res.Channel, r.res.ChannelID = ch.Name, ch.ID.String()
	want := new(big.Int).Add(r.before.Signed, r.units(r.cfg.VoucherUnits))
	if err := r.voucher(ctx, want); err != nil {
		return err
	}
	r.owed.Set(r.sent)
	return nil
}

func (r *run) units(n int) *big.Int { return new(big.Int).Mul(r.tick, big.NewInt(int64(n))) }

// voucher signs and sends a voucher for at least want.
func (r *run) voucher(ctx context.Context, want *big.Int) error {
	amount, err := r.cfg.Ledger.next(r.ch.ID, want, r.tick, r.ch.Deposit)
	if err != nil {
		return err
	}
	sig, err := tempo.SignVoucher(r.ch.SignerKey, r.ch.Domain(), r.ch.ID, amount)
	if err != nil {
		return fmt.Errorf("sign voucher: %w", err)
	}
	p := tempo.VoucherPayload{
		Action:           "voucher",
		ChannelID:        r.ch.ID.String(),
		CumulativeAmount: amount.String(),
		Signature:        tempo.FormatSignature(sig),
	}
	if r.ch.Protocol == tempo.V2 {
		d := tempo.DescriptorOf(r.ch.Channel)
		p.Descriptor = &d
	}
	r.sent = amount
	return r.credential(ctx, p, fmt.Sprintf("did:pkh:eip155:%d:%s", r.ch.ChainID, r.ch.Payer))
}

// needVoucher answers a shortage with a voucher for requiredCumulative plus
// the units of one more voucher step.
func (r *run) needVoucher(ctx context.Context, nv frame.NeedVoucher) error {
	r.res.NeedVouchers++
	if r.ch.SignerKey == nil {
		return fmt.Errorf("needVoucher on a charge connection")
	}
	if !strings.EqualFold(nv.ChannelID, r.ch.ID.String()) {
		return fmt.Errorf("needVoucher for channel %s, paying %s", nv.ChannelID, r.ch.ID)
	}
	required, err := tempo.ParseAmount(nv.RequiredCumulative, r.ch.Protocol)
	if err != nil {
		return fmt.Errorf("needVoucher requiredCumulative: %w", err)
	}
	if required.Cmp(r.ch.Deposit) > 0 {
		return fmt.Errorf("server requires %s, over the deposit %s; dialect A has no top-up", required, r.ch.Deposit)
	}
	if required.Cmp(r.sent) <= 0 {
		// Already covered by a voucher in flight: a repeated needVoucher
		// (mpp-rs re-sends every poll) must not make us sign twice.
		return nil
	}
	want := new(big.Int).Add(required, r.units(r.cfg.VoucherUnits-1))
	if err := r.voucher(ctx, want); err != nil {
		return err
	}
	r.owed.Set(r.sent)
	return nil
}

// prepay keeps Config.Prepay voucher steps paid ahead of what has arrived.
// Frames in flight mean the server has spent more than the client has read,
// so the window must be wider than one step. Spent is estimated from the
// ledger, so a stale ledger only makes the client pay later, never twice.
func (r *run) prepay(ctx context.Context) error {
	if r.cfg.Prepay <= 0 || r.ch.SignerKey == nil || len(r.res.Messages)%max(1, r.cfg.VoucherUnits/4) != 0 {
		return nil
	}
	spent := new(big.Int).Add(r.before.Spent, r.units(len(r.res.Messages)))
	ahead := new(big.Int).Sub(r.sent, spent)
	if ahead.Cmp(r.units(r.cfg.Prepay*r.cfg.VoucherUnits)) >= 0 || r.sent.Cmp(r.ch.Deposit) >= 0 {
		return nil
	}
	return r.voucher(ctx, new(big.Int).Add(r.sent, r.units(r.cfg.VoucherUnits)))
}

// checkReceipt compares the receipt with what this client paid and got.
func (r *run) checkReceipt(raw json.RawMessage) error {
	if r.current.Intent == "charge" {
		var rc mpp.Receipt
		if err := json.Unmarshal(raw, &rc); err != nil {
			return fmt.Errorf("receipt: %w", err)
		}
		if rc.Status != "success" || rc.Method != r.current.Method {
			return fmt.Errorf("receipt status %q method %q, want success %s", rc.Status, rc.Method, r.current.Method)
		}
		return nil
	}
	var rc mpp.SessionReceipt
	if err := json.Unmarshal(raw, &rc); err != nil {
		return fmt.Errorf("session receipt: %w", err)
	}
	r.res.Session = &rc
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(rc.Method == "tempo" && rc.Intent == "session" && rc.Status == "success", "method/intent/status %s/%s/%s, want tempo/session/success", rc.Method, rc.Intent, rc.Status)
	check(strings.EqualFold(rc.ChannelID, r.ch.ID.String()), "channelId %s, paid on %s", rc.ChannelID, r.ch.ID)
	check(rc.ChallengeID == r.res.ChallengeID, "challengeId %s, opened with %s", rc.ChallengeID, r.res.ChallengeID)
	accepted, err1 := tempo.ParseAmount(rc.AcceptedCumulative, r.ch.Protocol)
	spent, err2 := tempo.ParseAmount(rc.Spent, r.ch.Protocol)
	if err := errors.Join(err1, err2); err != nil || rc.Units == nil {
		return errors.Join(append(errs, fmt.Errorf("receipt amounts: %v (units present: %t)", err, rc.Units != nil))...)
	}
	units := *rc.Units
	n := uint64(len(r.res.Messages))
	signed := r.cfg.Ledger.Snapshot(r.ch.ID).Signed
	// A prepaid voucher may still be in flight when the stream ends; one the
	// server asked for must have been accepted.
	check(accepted.Cmp(r.owed) >= 0 && accepted.Cmp(signed) <= 0, "acceptedCumulative %s, want between the voucher the server needed %s and the most we signed %s", accepted, r.owed, signed)
	check(spent.Cmp(accepted) <= 0, "spent %s exceeds acceptedCumulative %s", spent, accepted)
	check(units >= r.before.Units+n, "units %d, want at least %d before + %d delivered", units, r.before.Units, n)
	minSpent := new(big.Int).Add(r.before.Spent, r.units(int(n)))
	check(spent.Cmp(minSpent) >= 0, "spent %s, want at least %s (%s before + %d messages x %s)", spent, minSpent, r.before.Spent, n, r.tick)
	check(new(big.Int).Mul(r.tick, new(big.Int).SetUint64(units)).Cmp(spent) == 0, "spent %s is not units %d x tick %s", spent, units, r.tick)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	r.cfg.Ledger.settle(r.ch.ID, spent, units)
	return nil
}

// Pick returns the fixture channel that can pay a session request: same
// protocol (absent means v1), chain, escrow, payee and token. name, when
// set, selects among them.
func Pick(chs []fixtures.Channel, req tempo.SessionRequest, name string) (fixtures.Channel, error) {
	p := req.MethodDetails.SessionProtocol
	if p == "" {
		p = tempo.V1
	}
	var candidates []string
	for _, ch := range chs {
		if ch.Protocol != p || ch.ChainID != req.MethodDetails.ChainID ||
			!strings.EqualFold(ch.Escrow.String(), req.MethodDetails.EscrowContract) ||
			!strings.EqualFold(ch.Payee.String(), req.Recipient) || !strings.EqualFold(ch.Token.String(), req.Currency) {
			continue
		}
		if name == "" || ch.Name == name {
			return ch, nil
		}
		candidates = append(candidates, ch.Name)
	}
	if name != "" && len(candidates) > 0 {
		return fixtures.Channel{}, fmt.Errorf("channel %q does not match the challenge; matching channels: %s", name, strings.Join(candidates, ", "))
	}
	return fixtures.Channel{}, fmt.Errorf("no fixture channel matches the challenge (protocol %s, chainId %d, escrow %s, recipient %s, currency %s)",
		p, req.MethodDetails.ChainID, req.MethodDetails.EscrowContract, req.Recipient, req.Currency)
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

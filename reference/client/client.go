// Package client is the reference MPP WebSocket client: it reads the
// challenge, pays it (a test-method payload for charge, a voucher on a
// fixture channel for session), answers every need-voucher, collects the
// stream and checks the closing receipt against its own accounting.
//
// It speaks both dialects (ws-dialects.md): A, where the server sends the
// challenge in-band and ends with a receipt, and B (client_b.go), where the
// challenge comes from an HTTP 402 probe, every credential is acknowledged
// and the session ends with a signed close. It reads server frames, the
// challenge and receipts as the SDK clients do: member names match
// exactly, and a repeated name is an error rather than a guess.
package client

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
	jsonv2 "github.com/go-json-experiment/json"

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
	// Dialect is the WebSocket framing the server speaks. Default frame.A.
	Dialect frame.Dialect
	// Messages, when positive, makes a dialect B client stop early: once
	// that many messages have arrived it sends payment-close-request and
	// settles. Default 0: consume the whole stream. Dialect A has no close
	// request, so it must be 0 there.
	Messages int
	// Fault injects one deliberate defect (a mutant), for proving that the
	// client conformance suite catches it. Default FaultNone.
	Fault Fault
	// Dial is how the WebSocket is dialled: its HTTPClient's TLS trust,
	// extra headers, Host and offered subprotocols. Default: websocket.Dial's.
	Dial *websocket.DialOptions
	// HTTP sends dialect B's probes, with the same TLS trust and headers
	// as Dial. Its redirect policy is replaced: the probe must answer 402
	// itself. Default: a client of the run's own.
	HTTP *http.Client
}

// Result is what a successful run saw.
type Result struct {
	Dialect      string   `json:"dialect"`
	Intent       string   `json:"intent"`
	Method       string   `json:"method"`
	ChallengeID  string   `json:"challengeId"`
	Channel      string   `json:"channel,omitempty"` // fixture name
	ChannelID    string   `json:"channelId,omitempty"`
	Messages     []string `json:"-"`
	VouchersSent int      `json:"vouchersSent"`
	NeedVouchers int      `json:"needVouchers"`
	// Reprobes counts dialect B's HTTP re-probes for a fresh challenge.
	Reprobes int `json:"reprobes,omitempty"`
	// Receipt is the final receipt: dialect A's stream receipt, dialect B's
	// settlement receipt (with txHash). Session is its parsed form.
	Receipt json.RawMessage     `json:"receipt"`
	Session *mpp.SessionReceipt `json:"-"`
	// CloseReady is dialect B's payment-close-ready receipt.
	CloseReady json.RawMessage `json:"closeReady,omitempty"`
	// Receipts are dialect B's payment-receipts in arrival order, one per
	// credential sent: the vouchers', then the settlement receipt.
	Receipts []json.RawMessage `json:"-"`
}

// Error is a deviation from the protocol, with what the server sent.
type Error struct {
	// Step is where it happened: "config" (an unusable Config), "connect"
	// (the server is unreachable), "challenge" (A), "probe" (B), "pay",
	// "stream", "receipt", "close" (B).
	Step string
	Err  error
}

func (e *Error) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func stepErr(step string, format string, args ...any) error {
	return &Error{Step: step, Err: fmt.Errorf(format, args...)}
}

// Run connects to url, pays and consumes one stream in cfg.Dialect.
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
	if cfg.Dialect == nil {
		cfg.Dialect = frame.A
	}
	var cancel context.CancelFunc
	if cfg.Fault == FaultNoTimeout {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
	}
	defer cancel()
	if cfg.Fault != FaultNone && !cfg.Fault.Valid() {
		return Result{}, &Error{Step: "config", Err: fmt.Errorf("fault %q is unknown", cfg.Fault)}
	}
	switch cfg.Dialect.Name() {
	case frame.A.Name():
		if cfg.Messages != 0 {
			return Result{}, &Error{Step: "config", Err: errors.New("Messages needs dialect B: dialect A has no close request")}
		}
	case frame.B.Name():
		return runB(ctx, url, cfg)
	default:
		return Result{}, &Error{Step: "config", Err: fmt.Errorf("dialect %q is not supported", cfg.Dialect.Name())}
	}

	ws, _, err := websocket.Dial(ctx, url, cfg.Dial)
	if err != nil {
		return Result{}, &Error{Step: "connect", Err: err}
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	r := &run{cfg: cfg, dialect: frame.A, ws: ws}
	r.res.Dialect = frame.A.Name()
	defer r.count()
	res, err := r.do(ctx)
	if err != nil {
		return Result{}, err
	}
	ws.Close(websocket.StatusNormalClosure, "done")
	return res, nil
}

type run struct {
	cfg     Config
	dialect frame.Dialect
	ws      *websocket.Conn
	res     Result

	current mpp.Challenge // newest challenge: vouchers echo it
	ch      fixtures.Channel
	tick    *big.Int
	sent    *big.Int // highest amount this run signed
	owed    *big.Int // highest voucher the server needed: it must have accepted it
	asked   *big.Int // the newest requiredCumulative: it never decreases
	before  Account  // the ledger's view of the channel at the start

	b bState // dialect B only
}

func (r *run) read(ctx context.Context) (frame.Frame, error) {
	typ, b, err := r.ws.Read(ctx)
	if err != nil {
		return frame.Frame{}, err
	}
	if typ != websocket.MessageText {
		return frame.Frame{}, fmt.Errorf("binary frame from server")
	}
	f, err := r.dialect.Decode(b, frame.FromServer)
	if err != nil && r.cfg.Fault == FaultCrashOnGarbage {
		panic(fmt.Sprintf("undecodable frame: %v", err))
	}
	if err != nil {
		return frame.Frame{}, fmt.Errorf("%w: %s", err, truncate(b))
	}
	return f, nil
}

func (r *run) send(ctx context.Context, f frame.Frame) error {
	b, err := r.dialect.Encode(f)
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
			if r.cfg.Fault == FaultStaleChallenge {
				continue
			}
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
	if err := jsonv2.Unmarshal(f.Challenge, &c); err != nil {
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

// credential sends one paying credential (a charge proof or a voucher)
// echoing the current challenge.
func (r *run) credential(ctx context.Context, payload any, source string) error {
	r.res.VouchersSent++
	return r.sendCredential(ctx, payload, source)
}

func (r *run) sendCredential(ctx context.Context, payload any, source string) error {
	raw, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	echo := r.current
	if r.cfg.Fault == FaultDropOpaque {
		echo.Opaque, echo.Digest = "", ""
	}
	auth, err := mpp.FormatAuthorization(mpp.Credential{Challenge: echo, Source: source, Payload: raw})
	if err != nil {
		return err
	}
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
	ch, err := r.pick(r.cfg.Channels, req, r.cfg.Channel)
	if err != nil {
		return err
	}
	tick, err := tempo.ParseAmount(req.Amount, ch.Protocol)
	if err != nil || tick.Sign() == 0 {
		return fmt.Errorf("request amount %q: want a positive tick cost", req.Amount)
	}
	r.ch, r.tick, r.sent, r.owed, r.asked = ch, tick, new(big.Int), new(big.Int), new(big.Int)
	r.before = r.cfg.Ledger.Snapshot(ch.ID)
	r.res.Channel, r.res.ChannelID = ch.Name, ch.ID.String()
	want := new(big.Int).Add(r.before.Signed, r.units(r.cfg.VoucherUnits))
	if r.cfg.Fault == FaultIgnoreLedger {
		want = r.units(r.cfg.VoucherUnits)
	}
	if err := r.voucher(ctx, want, r.limit(ch.Deposit)); err != nil {
		return err
	}
	r.owed.Set(r.sent)
	return nil
}

func (r *run) units(n int) *big.Int { return new(big.Int).Mul(r.tick, big.NewInt(int64(n))) }

// voucher signs and sends a voucher for at least want and at most limit.
func (r *run) voucher(ctx context.Context, want, limit *big.Int) error {
	amount, err := r.cfg.Ledger.next(r.ch.ID, want, r.tick, limit)
	if err != nil {
		return err
	}
	if r.cfg.Fault == FaultIgnoreLedger && r.sent.Sign() == 0 {
		amount = want // the opening voucher, as if nothing had been signed
	}
	p, err := r.signed("voucher", amount)
	if err != nil {
		return err
	}
	r.sent = amount
	if r.isB() {
		r.b.await(pendingCred{action: "voucher", amount: amount, challengeID: r.current.ID})
	}
	return r.credential(ctx, p, r.source())
}

// signed is the payload of a voucher or close action: the channel signer's
// EIP-712 voucher for amount, with the descriptor v2 requires.
func (r *run) signed(action string, amount *big.Int) (tempo.VoucherPayload, error) {
	domain := r.ch.Domain()
	if r.cfg.Fault == FaultWrongDomain {
		domain.Protocol = map[tempo.Protocol]tempo.Protocol{tempo.V1: tempo.V2, tempo.V2: tempo.V1}[domain.Protocol]
	}
	sig, err := tempo.SignVoucher(r.ch.SignerKey, domain, r.ch.ID, amount)
	if err != nil {
		return tempo.VoucherPayload{}, fmt.Errorf("sign %s: %w", action, err)
	}
	if r.cfg.Fault == FaultHighS {
		sig = highS(sig)
	}
	p := tempo.VoucherPayload{
		Action:           action,
		ChannelID:        r.ch.ID.String(),
		CumulativeAmount: amount.String(),
		Signature:        tempo.FormatSignature(sig),
	}
	if r.ch.Protocol == tempo.V2 && r.cfg.Fault != FaultNoDescriptor {
		d := tempo.DescriptorOf(r.ch.Channel)
		p.Descriptor = &d
	}
	return p, nil
}

// source is the payer DID the session SDK clients put in every credential.
func (r *run) source() string {
	if r.cfg.Fault == FaultNoSource {
		return ""
	}
	return fmt.Sprintf("did:pkh:eip155:%d:%s", r.ch.ChainID, r.ch.Payer)
}

// needVoucher answers a shortage with a voucher for requiredCumulative plus
// the units of one more voucher step, never above the deposit.
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
	limit := r.limit(r.ch.Deposit)
	if r.isB() {
		// The server's deposit bounds what it accepts; more than the
		// channel's would need a top-up, which this client does not do.
		deposit, err := tempo.ParseAmount(nv.Deposit, r.ch.Protocol)
		if err != nil {
			return fmt.Errorf("payment-need-voucher deposit: %w", err)
		}
		if deposit.Cmp(limit) < 0 && r.cfg.Fault != FaultOverDeposit {
			limit = deposit
		}
		if required.Cmp(limit) > 0 {
			return fmt.Errorf("server requires %s, over the deposit %s; top-up is out of scope for the reference client", required, limit)
		}
	} else if required.Cmp(limit) > 0 {
		return fmt.Errorf("server requires %s, over the deposit %s; dialect A has no top-up", required, limit)
	}
	if required.Cmp(r.asked) < 0 && r.cfg.Fault != FaultAllowDecreasing {
		// Spent only grows, and requiredCumulative with it.
		return fmt.Errorf("requiredCumulative %s is below the %s asked before", required, r.asked)
	}
	r.asked.Set(required)
	// The server charges a unit before it sends it, so it asks for at most
	// the units that arrived and the next one: anything further ahead than
	// one voucher step is a claim for units it never delivered.
	n := int64(len(r.res.Messages))
	ahead := new(big.Int).Add(r.before.Spent, r.units(int(n)+1+r.cfg.VoucherUnits))
	if required.Cmp(ahead) > 0 && r.cfg.Fault != FaultOverSign {
		return fmt.Errorf("server requires %s after %d messages (%s spent before): more than %d units ahead of what arrived", required, n, r.before.Spent, r.cfg.VoucherUnits+1)
	}
	if required.Cmp(r.sent) <= 0 && r.cfg.Fault != FaultPayTwice {
		// Already covered by a voucher in flight: a repeated needVoucher
		// (mpp-rs re-sends every poll) must not make us sign twice.
		return nil
	}
	if r.isB() {
		if err := r.refresh(ctx); err != nil {
			return err
		}
	}
	want := new(big.Int).Add(required, r.units(r.cfg.VoucherUnits-1))
	if err := r.voucher(ctx, want, limit); err != nil {
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
	if ahead.Cmp(r.units(r.cfg.Prepay*r.cfg.VoucherUnits)) >= 0 || r.sent.Cmp(r.limit(r.ch.Deposit)) >= 0 {
		return nil
	}
	return r.voucher(ctx, new(big.Int).Add(r.sent, r.units(r.cfg.VoucherUnits)), r.limit(r.ch.Deposit))
}

// checkReceipt compares the receipt with what this client paid and got.
func (r *run) checkReceipt(raw json.RawMessage) error {
	if r.current.Intent == "charge" {
		var rc mpp.Receipt
		if err := jsonv2.Unmarshal(raw, &rc); err != nil {
			return fmt.Errorf("receipt: %w", err)
		}
		if rc.Status != "success" || rc.Method != r.current.Method {
			return fmt.Errorf("receipt status %q method %q, want success %s", rc.Status, rc.Method, r.current.Method)
		}
		return nil
	}
	var rc mpp.SessionReceipt
	if err := jsonv2.Unmarshal(raw, &rc); err != nil {
		return fmt.Errorf("session receipt: %w", err)
	}
	r.res.Session = &rc
	if r.cfg.Fault == FaultIgnoreReceipts {
		return nil
	}
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
	signed := r.cfg.Ledger.Snapshot(r.ch.ID).Signed
	// A prepaid voucher may still be in flight when the stream ends; one the
	// server asked for must have been accepted.
	check(accepted.Cmp(r.owed) >= 0 && accepted.Cmp(signed) <= 0, "acceptedCumulative %s, want between the voucher the server needed %s and the most we signed %s", accepted, r.owed, signed)
	check(spent.Cmp(accepted) <= 0, "spent %s exceeds acceptedCumulative %s", spent, accepted)
	errs = append(errs, r.matchesArrived(spent, &units, false)...)
	check(new(big.Int).Mul(r.tick, new(big.Int).SetUint64(units)).Cmp(spent) == 0, "spent %s is not units %d x tick %s", spent, units, r.tick)
	return errors.Join(errs...)
}

// matchesArrived checks a receipt's totals against what arrived: the
// ledger's totals from before this run plus the messages read. At the end
// of a stream they must be equal. A receipt mid-stream is a snapshot the
// server took while it went on streaming, so it may count fewer, and at
// most one unit more: the one it has charged and not yet sent. units may
// be nil where the receipt leaves it out.
func (r *run) matchesArrived(spent *big.Int, units *uint64, midStream bool) []error {
	n := len(r.res.Messages)
	want := new(big.Int).Add(r.before.Spent, r.units(n))
	wantUnits := r.before.Units + uint64(n)
	low, high := want, want
	lowUnits, highUnits := wantUnits, wantUnits
	if midStream {
		low, high = r.before.Spent, new(big.Int).Add(want, r.tick)
		lowUnits, highUnits = r.before.Units, wantUnits+1
	}
	var errs []error
	if spent.Cmp(low) < 0 || spent.Cmp(high) > 0 {
		errs = append(errs, fmt.Errorf("spent %s, but %d messages arrived (%s spent before, tick %s): want %s to %s", spent, n, r.before.Spent, r.tick, low, high))
	}
	if units != nil && (*units < lowUnits || *units > highUnits) {
		errs = append(errs, fmt.Errorf("units %d, but %d messages arrived (%d units before): want %d to %d", *units, n, r.before.Units, lowUnits, highUnits))
	}
	return errs
}

// count records in the ledger what arrived on the channel, whatever the
// end of the run: the payer's own count, which every receipt must match.
func (r *run) count() {
	if r.ch.SignerKey == nil {
		return
	}
	n := len(r.res.Messages)
	r.cfg.Ledger.settle(r.ch.ID, new(big.Int).Add(r.before.Spent, r.units(n)), r.before.Units+uint64(n))
}

// limit is the most the client signs on a channel: its deposit.
func (r *run) limit(deposit *big.Int) *big.Int {
	if r.cfg.Fault == FaultOverDeposit {
		return r.ch.Protocol.MaxAmount()
	}
	return deposit
}

// pick is Pick, or under FaultAnyTerms the first channel of the protocol.
func (r *run) pick(chs []fixtures.Channel, req tempo.SessionRequest, name string) (fixtures.Channel, error) {
	if r.cfg.Fault == FaultAnyTerms {
		for _, ch := range chs {
			if p := req.MethodDetails.SessionProtocol; ch.Protocol == p || p == "" && ch.Protocol == tempo.V1 {
				return ch, nil
			}
		}
	}
	return Pick(chs, req, name)
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

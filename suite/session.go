package suite

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	. "github.com/onsi/ginkgo/v2"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
	"github.com/mppws/conformance/suite/peer"
)

// wallet is the suite's memory of every fixture channel across cases: a
// real target keeps channel state across connections, so the suite tracks
// what it signed and what the target reported, and never assumes a channel
// is fresh except at the start of a run.
type wallet struct {
	mu       sync.Mutex
	accounts map[tempo.Hash]*account
}

// account is what the suite knows of one channel.
type account struct {
	signed   *big.Int // highest amount the suite signed
	accepted *big.Int // highest acceptedCumulative the target reported
	spent    *big.Int // spent as last reported by the target
	units    uint64
	// exact is true while spent is known exactly: false after a case that
	// dropped a connection mid-stream (a unit may be charged, not delivered).
	exact bool
	// closed is set once a case has closed the channel for good.
	closed bool
}

func newWallet() *wallet { return &wallet{accounts: map[tempo.Hash]*account{}} }

func (w *wallet) account(id tempo.Hash) *account {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.accounts[id]
	if !ok {
		// A freshly started target: nothing accepted or spent.
		a = &account{signed: new(big.Int), accepted: new(big.Int), spent: new(big.Int), exact: true}
		w.accounts[id] = a
	}
	return a
}

// Session is a connection paying from one fixture channel.
type Session struct {
	*Conn
	Ch   fixtures.Channel
	Tick *big.Int
	acct *account
	// Delivered counts messages received on this session.
	Delivered int
	// paid is the last voucher this session paid with on purpose: a
	// needVoucher that reports less was queued before it landed.
	paid *big.Int
}

// ChannelFilter chooses among the target's fixture channels.
type ChannelFilter func(fixtures.Channel) bool

// AnyChannel accepts every channel.
func AnyChannel(fixtures.Channel) bool { return true }

// Delegated accepts channels with a separate authorized signer.
func Delegated(ch fixtures.Channel) bool { return !ch.AuthorizedSigner.IsZero() }

// channel picks the first matching channel of the session target.
func (c *C) channel(t *Target, f ChannelFilter) fixtures.Channel {
	for _, ch := range t.OpenChannels() {
		if f(ch) {
			return ch
		}
	}
	c.NotApplicable("no open fixture channel of the target fits this case (e.g. one with a separate authorized signer)")
	return fixtures.Channel{}
}

// OpenChannels are the target's fixture channels no case has closed.
func (t *Target) OpenChannels() []fixtures.Channel {
	var out []fixtures.Channel
	for _, ch := range t.Channels {
		if !current.wallet.account(ch.ID).closed {
			out = append(out, ch)
		}
	}
	return out
}

// Connect dials the session target for channel ch without paying.
func (c *C) Connect(ch fixtures.Channel) *Session {
	t := c.TargetFor(NeedsSession)
	cn := c.Dial(t)
	return &Session{Conn: cn, Ch: ch, Tick: t.Tick, acct: current.wallet.account(ch.ID)}
}

// OpenSession connects to the session target and pays until the channel's
// balance is exactly zero: it pays one tick more than anything signed so
// far, takes every unit the target delivers, and stops at the needVoucher,
// whose numbers then are the channel's state. Every case starts from this
// known state whatever earlier cases left behind.
func (c *C) OpenSession(f ChannelFilter) *Session {
	t := c.TargetFor(NeedsSession)
	s := c.Connect(c.channel(t, f))
	a := s.acct
	// A case that fails, counted or not, may leave units paid and not
	// delivered, or delivered and not recorded: later cases must not count
	// on an exact balance for this channel.
	DeferCleanup(func() {
		r := CurrentSpecReport()
		failed := r.Failed()
		for _, e := range r.ReportEntries {
			failed = failed || e.Name == entryNonStrict
		}
		if failed {
			a.exact = false
		}
	})
	before := new(big.Int).Set(a.spent)
	exact := a.exact
	var (
		amount *big.Int
		n      int
		nv     frame.NeedVoucher
	)
	// A balance left over by an earlier case may outlast one connection's
	// stream (the target streams a bounded number of messages): drain it
	// over as many connections as it takes.
	for attempt := 0; ; attempt++ {
		amount = s.nextAmount()
		s.Send(s.Voucher(amount))
		s.paid = amount
		var ended bool
		if n, nv, ended = s.readUntilNeedVoucher(); !ended {
			break
		}
		if exact || attempt == 20 {
			s.c.NotApplicable("the target ended the stream after %d messages, before the balance ran out; start it with more messages per connection (at least 40)", s.Delivered)
		}
		s.T.Note("stream ended before the leftover balance ran out; draining on a new connection")
		s.Close()
		s = c.Connect(s.Ch)
	}
	// The accounting invariant: the target delivered exactly what the
	// channel's balance paid for.
	if exact {
		paid := new(big.Int).Sub(amount, before)
		want := new(big.Int).Quo(paid, s.Tick).Int64()
		c.Check(int64(n) == want, fmt.Sprintf("%d messages for a voucher of %s over spent %s at tick %s", want, amount, before, s.Tick),
			"%d messages before needVoucher", n)
	}
	s.checkNeedVoucher(nv, amount)
	return s
}

// Voucher builds a voucher payload for amount, signed by the channel's key.
func (s *Session) Voucher(amount *big.Int) tempo.VoucherPayload {
	return s.VoucherSignedBy(amount, s.Ch.SignerKey, s.Ch.Domain(), s.Ch.ID)
}

// VoucherSignedBy builds a voucher with any key, domain and channel id.
func (s *Session) VoucherSignedBy(amount *big.Int, key *secp256k1.PrivateKey, d tempo.Domain, id tempo.Hash) tempo.VoucherPayload {
	sig, err := tempo.SignVoucher(key, d, id, amount)
	if err != nil {
		s.c.Failf([]string{"a voucher the suite can sign"}, "%v", err)
	}
	if id == s.Ch.ID && amount.Cmp(s.acct.signed) > 0 {
		// Whatever the suite signs, a target may accept: stay above it.
		s.acct.signed.Set(amount)
	}
	p := tempo.VoucherPayload{Action: "voucher", ChannelID: id.String(), CumulativeAmount: amount.String(), Signature: tempo.FormatSignature(sig)}
	if s.Ch.Protocol == tempo.V2 {
		desc := tempo.DescriptorOf(s.Ch.Channel)
		p.Descriptor = &desc
	}
	return p
}

// Send sends a voucher credential echoing the newest challenge.
func (s *Session) Send(p tempo.VoucherPayload) { s.SendPayload(p) }

// finished reports whether the connection is of no more use: closed, or
// (dialect B) past a payment-error, after which the server stops serving
// it even when its close fails (mppx bug B1 leaves such a socket open; only
// WS-REPLAY-019 pins that).
func (s *Session) finished() bool {
	select {
	case <-s.Done():
		return true
	default:
		return s.Target.B() && s.Seen[frame.KindError] > 0
	}
}

// SendBad sends a voucher credential the target must refuse. A dialect B
// target closes the connection on every rejection, so there each one goes
// on a connection of its own, which must deliver nothing before it closes.
func (s *Session) SendBad(payload any) {
	if !s.Target.B() {
		s.SendPayload(payload)
		return
	}
	t := s.c.Connect(s.Ch)
	t.SendPayload(payload)
	t.ExpectNoUnits("a refused voucher on a connection of its own")
}

// nextAmount is one tick above anything the target may have accepted.
func (s *Session) nextAmount() *big.Int {
	return new(big.Int).Add(maxInt(s.acct.signed, s.acct.accepted), s.Tick)
}

// SendPayload sends any payload as a session credential.
func (s *Session) SendPayload(payload any) {
	s.SendCredential(s.Authorization(s.Challenge, payload))
}

// PayUnits sends a voucher for k ticks over what the target accepted.
func (s *Session) PayUnits(k int) *big.Int {
	amount := new(big.Int).Add(s.acct.accepted, s.units(k))
	if amount.Cmp(s.acct.signed) <= 0 {
		// Something signed earlier was never accepted; stay above it so
		// the voucher is new funds.
		amount.Add(s.acct.signed, s.units(k))
	}
	s.Send(s.Voucher(amount))
	s.paid = amount
	return amount
}

func (s *Session) units(k int) *big.Int { return new(big.Int).Mul(s.Tick, big.NewInt(int64(k))) }

// ReadUntilNeedVoucher takes messages until a needVoucher and returns how
// many arrived. A receipt first means the target's stream is too short for
// the case; silence means it never asked to be paid.
func (s *Session) ReadUntilNeedVoucher() (int, frame.NeedVoucher) {
	n, nv, ended := s.readUntilNeedVoucher()
	if ended {
		s.c.NotApplicable("the target ended the stream after %d messages, before the balance ran out; start it with more messages per connection (at least 40)", s.Delivered)
	}
	return n, nv
}

// readUntilNeedVoucher is ReadUntilNeedVoucher that reports the end of the
// stream instead of skipping the case.
func (s *Session) readUntilNeedVoucher() (n int, nv frame.NeedVoucher, ended bool) {
	for {
		e, ok := s.Next(current.t.Reply)
		switch {
		case !ok:
			s.c.Failf([]string{"message frames, then a needVoucher when the balance runs out"}, "silence after %d messages", n)
		case e.IsFrame(frame.KindMessage):
			n++
			s.Delivered++
		case e.IsFrame(frame.KindNeedVoucher) && s.stale(e.Frame.NeedVoucher):
			// A target that repeats needVoucher every poll (mpp-rs) may
			// have queued this one before the voucher landed.
			s.T.Note("stale needVoucher ignored: acceptedCumulative below the %s just paid", s.paid)
		case e.IsFrame(frame.KindNeedVoucher):
			return n, e.Frame.NeedVoucher, false
		case s.isAck(e):
			// Dialect B acknowledges every voucher with a receipt.
		case s.isEnd(e):
			return n, frame.NeedVoucher{}, true
		case e.IsFrame(frame.KindChallenge) && e.Frame.ChallengeError == "":
			// A re-challenge: later vouchers echo it.
		case e.IsFrame(frame.KindError) && s.Delivered == 0 && s.paid != nil && s.paid.Cmp(s.acct.signed) == 0:
			s.c.Failf([]string{"message frames for a voucher one tick above everything the suite signed on this channel"},
				"%s (the suite assumes a freshly started target: was this one used before this run?)", e)
		default:
			s.c.Failf([]string{"message frames, then a needVoucher"}, "%s after %d messages", e, n)
		}
	}
}

// stale reports whether nv predates the last voucher paid on purpose.
func (s *Session) stale(nv frame.NeedVoucher) bool {
	acc, ok := new(big.Int).SetString(nv.AcceptedCumulative, 10)
	return ok && s.paid != nil && acc.Cmp(s.paid) < 0
}

// checkNeedVoucher checks a needVoucher against the suite's accounting and
// adopts its numbers: requiredCumulative = spent + tick, acceptedCumulative
// = the highest accepted voucher, deposit = the channel deposit.
func (s *Session) checkNeedVoucher(nv frame.NeedVoucher, accepted *big.Int) {
	c := s.c
	p := s.Ch.Protocol
	req, err1 := tempo.ParseAmount(nv.RequiredCumulative, p)
	acc, err2 := tempo.ParseAmount(nv.AcceptedCumulative, p)
	dep, err3 := tempo.ParseAmount(nv.Deposit, p)
	c.Check(err1 == nil && err2 == nil && err3 == nil, "needVoucher amounts as decimal strings", "%+v", nv)
	c.Check(strings.EqualFold(nv.ChannelID, s.Ch.ID.String()), "needVoucher for the paying channel "+s.Ch.ID.String(), "channelId %s", nv.ChannelID)
	c.Check(acc.Cmp(accepted) == 0, "acceptedCumulative "+accepted.String()+" (the voucher just paid)", "acceptedCumulative %s", acc)
	c.Check(dep.Cmp(s.Ch.Deposit) == 0, "deposit "+s.Ch.Deposit.String()+" (the fixture channel's)", "deposit %s", dep)
	spent := new(big.Int).Sub(req, s.Tick)
	c.Check(spent.Cmp(acc) <= 0 && new(big.Int).Sub(acc, spent).Cmp(s.Tick) < 0,
		"requiredCumulative = spent + tick, with less than one tick left of "+acc.String(), "requiredCumulative %s (spent %s, tick %s)", req, spent, s.Tick)
	s.acct.accepted.Set(acc)
	s.acct.spent.Set(spent)
	s.acct.exact = true
}

// ExpectUnits expects exactly k messages, then a needVoucher whose numbers
// match the accounting. It returns the needVoucher.
func (s *Session) ExpectUnits(k int, accepted *big.Int) frame.NeedVoucher {
	before := new(big.Int).Set(s.acct.spent)
	n, nv := s.ReadUntilNeedVoucher()
	s.c.Check(n == k, fmt.Sprintf("exactly %d messages, then needVoucher", k), "%d messages, then needVoucher", n)
	s.checkNeedVoucher(nv, accepted)
	want := new(big.Int).Add(before, s.units(k))
	s.c.Check(s.acct.spent.Cmp(want) == 0, "spent "+want.String()+" after "+fmt.Sprint(k)+" units",
		"needVoucher implies spent %s", s.acct.spent)
	return nv
}

// ExpectNoUnits asserts that a bad voucher buys nothing: no message or
// receipt within the quiet window. It returns what the target did instead.
func (s *Session) ExpectNoUnits(what string) []peer.Event {
	forbid := Paid
	if s.Target.B() {
		// Dialect B may acknowledge a voucher that adds nothing (an equal
		// one is an idempotent retry): only data would be paid for.
		forbid = []Outcome{DataFrame}
	}
	seen := s.Quiet(current.t.Quiet+current.t.Reply/2, forbid)
	var kinds []string
	for _, e := range seen {
		kinds = append(kinds, e.String())
	}
	if len(kinds) == 0 {
		kinds = []string{"silence"}
	}
	s.c.Observe("%s: no data; target sent %s", what, strings.Join(kinds, ", "))
	return seen
}

func maxInt(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

// RunToReceipt pays batch ticks at every needVoucher until the stream ends
// (dialect A's receipt, dialect B's close-ready, both a session receipt),
// and checks every round against the accounting: exactly the paid units
// before a needVoucher, at most them before the receipt. The receipt's spent
// must be the last known spent plus what arrived since, its
// acceptedCumulative the last voucher, and it must carry units. It adopts the
// receipt and returns it, raw and decoded, with the messages delivered
// during the call.
func (s *Session) RunToReceipt(batch int) (mpp.SessionReceipt, json.RawMessage, int) {
	c := s.c
	delivered := 0
	for round := 0; round < 1000; round++ {
		before := new(big.Int).Set(s.acct.spent)
		paid := s.PayUnits(batch)
		want := unitsBetween(s, paid, before)
		for n := 0; ; {
			e, ok := s.Next(current.t.Stream)
			switch {
			case !ok:
				c.Failf([]string{"messages, then a needVoucher or the receipt"}, "silence after %d messages", n)
			case e.IsFrame(frame.KindMessage):
				n++
				delivered++
				s.Delivered++
				continue
			case e.IsFrame(frame.KindChallenge) && e.Frame.ChallengeError == "", s.isAck(e):
				continue
			case e.IsFrame(frame.KindNeedVoucher):
				c.Check(n == want, fmt.Sprintf("exactly %d messages for a voucher of %s over spent %s, then needVoucher", want, paid, before),
					"%d messages, then needVoucher", n)
				s.checkNeedVoucher(e.Frame.NeedVoucher, paid)
			case s.isEnd(e):
				c.Check(n <= want, fmt.Sprintf("at most the %d paid messages before the receipt", want), "%d messages", n)
				r := s.adoptReceipt(e.Frame.Receipt)
				spent, acc := s.acct.spent, s.acct.accepted
				wantSpent := plusTicks(s, before, n)
				c.Check(spent.Cmp(wantSpent) == 0, fmt.Sprintf("receipt spent %s: spent %s before the last voucher plus %d messages since", wantSpent, before, n),
					"receipt spent %s", spent)
				c.Check(acc.Cmp(paid) == 0, "receipt acceptedCumulative "+paid.String()+" (the highest voucher sent)", "acceptedCumulative %s", acc)
				c.Check(r.Units != nil, "receipt units (the channel's running unit count)", "no units in %s", e.Frame.Receipt)
				return r, e.Frame.Receipt, delivered
			default:
				c.Failf([]string{"messages, then a needVoucher or the receipt"}, "%s after %d messages", e, n)
			}
			break
		}
	}
	c.Failf([]string{"a receipt within 1000 vouchers"}, "no receipt")
	return mpp.SessionReceipt{}, nil, 0
}

// plusTicks is a + k ticks of s.
func plusTicks(s *Session, a *big.Int, k int) *big.Int { return new(big.Int).Add(a, s.units(k)) }

// unitsBetween is how many whole ticks hi - lo holds (0 when hi <= lo).
func unitsBetween(s *Session, hi, lo *big.Int) int {
	d := new(big.Int).Sub(hi, lo)
	if d.Sign() <= 0 {
		return 0
	}
	return int(d.Quo(d, s.Tick).Int64())
}

// adoptReceipt takes the receipt's totals as the channel's state.
func (s *Session) adoptReceipt(raw json.RawMessage) mpp.SessionReceipt {
	var r mpp.SessionReceipt
	if err := json.Unmarshal(raw, &r); err != nil {
		s.c.Failf([]string{"a session receipt object"}, "%s: %v", raw, err)
	}
	spent, err1 := tempo.ParseAmount(r.Spent, s.Ch.Protocol)
	acc, err2 := tempo.ParseAmount(r.AcceptedCumulative, s.Ch.Protocol)
	s.c.Check(err1 == nil && err2 == nil, "decimal spent and acceptedCumulative", "spent %q, acceptedCumulative %q", r.Spent, r.AcceptedCumulative)
	s.acct.spent.Set(spent)
	s.acct.accepted.Set(acc)
	if r.Units != nil {
		s.acct.units = *r.Units
	}
	return r
}

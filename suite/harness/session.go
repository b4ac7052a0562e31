package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
	"github.com/mppws/conformance/suite/peer"
)

// wallet is the suite's memory of every fixture channel across cases, and
// the pool that leases channels to cases. A real target keeps channel state
// across connections, so each case learns a channel's state from the
// target when it starts paying on it, and holds the channel alone while it
// runs: cases on different channels run side by side, cases on one channel
// take turns.
type wallet struct {
	mu       sync.Mutex
	accounts map[accountKey]*account
	signed   map[tempo.Hash]*signatures
	busy     map[tempo.Hash]bool
	wake     chan struct{} // closed and replaced whenever a lease ends
}

// account is what the suite knows of one channel on one target. What the
// suite signed belongs to the channel (a voucher pays on any server that
// knows the channel); what was accepted and spent belongs to the target.
type account struct {
	*signatures
	// Accepted and Spent are the target's numbers, as last reported. Spent
	// never decreases, so it bounds what a later connection can find.
	Accepted, Spent *big.Int
	units           uint64
	// Closed is set once the target confirmed a close of the channel.
	Closed bool
}

// signatures are the amounts the suite put in vouchers for one channel.
type signatures struct {
	// Signed is the highest amount Signed in a voucher a target might
	// accept: every new voucher goes above it.
	Signed *big.Int
	// ceiling is the highest amount sent in any voucher, including ones no
	// correct target accepts (over the deposit).
	ceiling *big.Int
}

// accountKey names a channel on a target.
type accountKey struct {
	target string
	id     tempo.Hash
}

// raise records a voucher a target might accept: later ones go above it.
func (a *account) raise(amount *big.Int) {
	if amount.Cmp(a.Signed) > 0 {
		a.Signed.Set(amount)
	}
	a.Sent(amount)
}

// Sent records any voucher amount Sent for the channel.
func (a *account) Sent(amount *big.Int) {
	if amount.Cmp(a.ceiling) > 0 {
		a.ceiling.Set(amount)
	}
}

func newWallet() *wallet {
	return &wallet{accounts: map[accountKey]*account{}, signed: map[tempo.Hash]*signatures{}, busy: map[tempo.Hash]bool{}, wake: make(chan struct{})}
}

func (w *wallet) account(t *Target, id tempo.Hash) *account {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := accountKey{t.URL, id}
	a, ok := w.accounts[k]
	if !ok {
		sig, ok := w.signed[id]
		if !ok {
			sig = &signatures{Signed: new(big.Int), ceiling: new(big.Int)}
			w.signed[id] = sig
		}
		// A freshly started target: nothing accepted or spent.
		a = &account{signatures: sig, Accepted: new(big.Int), Spent: new(big.Int)}
		w.accounts[k] = a
	}
	return a
}

// lease is the set of channels one case holds.
type lease struct {
	w   *wallet
	chs []fixtures.Channel
}

// acquire leases n of the candidate channels, all at once, waiting while
// other cases hold them. Taking a case's whole need in one step means no
// case waits while holding a channel, so leases never deadlock.
func (w *wallet) acquire(ctx context.Context, candidates []fixtures.Channel, n int) (*lease, error) {
	for {
		w.mu.Lock()
		var free []fixtures.Channel
		for _, ch := range candidates {
			if !w.busy[ch.ID] {
				free = append(free, ch)
			}
		}
		if len(free) >= n {
			l := &lease{w: w, chs: free[:n]}
			for _, ch := range l.chs {
				w.busy[ch.ID] = true
			}
			w.mu.Unlock()
			return l, nil
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a free fixture channel: %w", context.Cause(ctx))
		}
	}
}

func (l *lease) release() {
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range l.chs {
		delete(w.busy, ch.ID)
	}
	close(w.wake)
	w.wake = make(chan struct{})
}

// Session is a connection paying from one fixture channel.
type Session struct {
	*Conn
	Ch   fixtures.Channel
	Tick *big.Int
	Acct *account
	// Delivered counts messages received on this session.
	Delivered int
	// Extra counts the messages paid for beyond the case's own, to go on
	// on a new connection after the target ended a stream early.
	Extra int
	// Paid is the last voucher this session Paid with on purpose, sent at
	// paidAt: a needVoucher that reports less was queued before it landed.
	Paid   *big.Int
	paidAt time.Time
	// timed says the next read may time the voucher sent at paidAt.
	timed bool
	// after names the refused variant a barrier follows, for failures.
	after string
}

// ChannelFilter chooses among the target's fixture channels.
type ChannelFilter struct {
	Name  string // what the case needs, for the not-applicable reason
	Match func(fixtures.Channel) bool
}

// AnyChannel accepts every channel.
var AnyChannel = ChannelFilter{"an open fixture channel", func(fixtures.Channel) bool { return true }}

// Delegated accepts channels whose authorized signer is not the payer.
var Delegated = ChannelFilter{"a fixture channel whose authorizedSigner differs from its payer (add one to --channels)", func(ch fixtures.Channel) bool {
	return !ch.AuthorizedSigner.IsZero() && ch.AuthorizedSigner != ch.Payer
}}

// Only accepts one channel.
func Only(want fixtures.Channel) ChannelFilter {
	return ChannelFilter{"fixture channel " + want.Name, func(ch fixtures.Channel) bool { return ch.ID == want.ID }}
}

// openChannels are the target's fixture channels no case has closed.
func (c *C) openChannels(t *Target) []fixtures.Channel {
	var out []fixtures.Channel
	for _, ch := range t.Channels {
		if !c.r.wallet.account(t, ch.ID).Closed {
			out = append(out, ch)
		}
	}
	return out
}

// Channel returns a leased Channel matching f. The case's first call leases
// as many channels as its catalogue entry says (one by default, every open
// one for AllChannels); later calls choose among them.
func (c *C) Channel(t *Target, f ChannelFilter) fixtures.Channel {
	c.mu.Lock()
	l := c.lease
	c.mu.Unlock()
	if l == nil {
		var cands []fixtures.Channel
		for _, ch := range c.openChannels(t) {
			if f.Match(ch) {
				cands = append(cands, ch)
			}
		}
		n := max(1, c.Meta.Channels)
		if c.Meta.Channels == AllChannels {
			n = len(cands)
		}
		switch {
		case len(cands) == 0 && len(t.Channels) > 0 && len(c.openChannels(t)) == 0:
			c.NotApplicable("every fixture channel of the target has been closed by an earlier case")
		case len(cands) == 0:
			c.NotApplicable("this case needs %s; the target has none among its %d fixture channels", f.Name, len(t.Channels))
		case n > len(cands):
			c.NotApplicable("this case needs %d fixture channels at once; the target has %d (pass --channels with more channels the target knows)", n, len(cands))
		}
		var err error
		if l, err = c.r.wallet.acquire(c.Ctx, cands, n); err != nil {
			c.Failf([]string{"a fixture channel within the case timeout"}, "%v", err)
		}
		c.mu.Lock()
		c.lease = l
		c.mu.Unlock()
	}
	for _, ch := range l.chs {
		if f.Match(ch) {
			return ch
		}
	}
	c.NotApplicable("this case needs %s among the channels it holds", f.Name)
	return fixtures.Channel{}
}

// Leased returns the channels the case holds.
func (c *C) Leased() []fixtures.Channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease == nil {
		return nil
	}
	return c.lease.chs
}

// SessionOn is a session paying from ch on the connection cn.
func (c *C) SessionOn(cn *Conn, ch fixtures.Channel) *Session {
	return &Session{Conn: cn, Ch: ch, Tick: cn.Target.Tick, Acct: c.r.wallet.account(cn.Target, ch.ID)}
}

// Connect dials the session target for channel ch without paying.
func (c *C) Connect(ch fixtures.Channel) *Session {
	t := c.TargetFor(NeedsSession)
	return c.SessionOn(c.Dial(t), ch)
}

// OpenSession connects to the session target on a leased channel and
// learns the channel's state from the target: it pays one tick above
// everything the suite ever signed for the channel, takes every unit the
// target delivers and stops at the needVoucher, whose numbers are then the
// channel's state. What an earlier case left behind (a balance, a unit in
// flight) is drained here and bounded, never counted exactly: exact counts
// are for what a case buys itself.
func (c *C) OpenSession(f ChannelFilter) *Session {
	t := c.TargetFor(NeedsSession)
	if c.leaseBeforeDial(t) {
		c.Channel(t, f) // before Dial leases any channel, which may not match f
	}
	cn := c.Dial(t)
	ch := c.Channel(t, f)
	s := c.SessionOn(cn, ch)
	a := s.Acct
	floor := new(big.Int).Set(a.Spent)
	// A balance left over by an earlier case may outlast one connection's
	// stream (the target streams a bounded number of messages): drain it
	// over as many connections as it takes.
	for conns := 1; ; conns++ {
		amount := s.NextAmount()
		if amount.Cmp(s.Ch.Deposit) > 0 {
			c.NotApplicable("fixture channel %s has used up its deposit of %s in this run (next voucher %s); give the target channels with larger deposits", s.Ch.Name, s.Ch.Deposit, amount)
		}
		s.pay(amount)
		bound := UnitsBetween(s, amount, floor)
		n, nv, end, e := s.read(-1, bound)
		switch end {
		case endNeedVoucher:
			c.Check(n <= bound, fmt.Sprintf("at most %d messages for a voucher of %s: spent was at least %s (the target said so earlier), tick %s", bound, amount, floor, s.Tick),
				"%d messages before needVoucher", n)
			s.learn(nv, amount, floor)
			return s
		case endStream:
			if conns == 20 {
				c.NotApplicable("the target ended 20 streams in a row before the balance ran out (%d messages on the last); start it with more messages per connection", n)
			}
			s.T.Note("stream ended before the leftover balance ran out; draining on a new connection")
			s.Close()
			s = c.Connect(ch)
		case endRefused:
			if e.Closed && e.Code < 0 {
				// A dropped socket refuses nothing: the target went away
				// (crashed, or something between cut it), which says
				// nothing about what it knows of the channel.
				c.Failf([]string{fmt.Sprintf("messages for a voucher of %s, one tick above everything the suite signed, then a needVoucher", amount)}, "%s", e)
			}
			if a.ceiling.Cmp(a.Signed) <= 0 {
				c.SetupFailed("the target refused a voucher of %s on channel %s, one tick above everything this run signed for it (%s): was the target used before this run, or does it not know the channel? Start it fresh, and pass --channels with the channels it knows", amount, s.Ch.ID, e)
			}
			// An earlier case sent a voucher no correct target accepts; if
			// the target took it anyway (that case fails for it), pay above.
			if a.ceiling.Cmp(s.Ch.Deposit) >= 0 {
				c.NotApplicable("channel %s can no longer pay: an earlier case sent it a voucher of %s, over its deposit %s, and the target refused the next one (%s); that case reports the defect", s.Ch.Name, a.ceiling, s.Ch.Deposit, e)
			}
			a.Signed.Set(a.ceiling)
			s.Close()
			s = c.Connect(ch)
		}
	}
}

// learn checks the needVoucher that ends a drain and adopts its numbers.
// The target's spent below what it reported earlier means it lost the
// channel's state between connections: a setup error, not a verdict.
func (s *Session) learn(nv frame.NeedVoucher, accepted, floor *big.Int) {
	if spent, ok := tempo.ParseAmount(nv.RequiredCumulative, s.Ch.Protocol); ok == nil {
		spent.Sub(spent, s.Tick)
		if spent.Cmp(floor) < 0 {
			s.C.SetupFailed("channel %s: the target reports spent %s, below the %s it reported earlier in this run: its channel state went backwards between connections. The suite needs a target that keeps channel state across connections, as real servers do (%s)",
				s.Ch.Name, spent, floor, s.C.r.wallet.describe(s.Target, s.Ch.ID))
		}
	}
	s.CheckNeedVoucher(nv, accepted)
}

func (w *wallet) describe(t *Target, id tempo.Hash) string {
	a := w.account(t, id)
	return fmt.Sprintf("the suite signed up to %s; the target last reported accepted %s, spent %s", a.Signed, a.Accepted, a.Spent)
}

// Voucher builds a voucher payload for amount, signed by the channel's key.
func (s *Session) Voucher(amount *big.Int) tempo.VoucherPayload {
	return s.VoucherSignedBy(amount, s.Ch.SignerKey, s.Ch.Domain(), s.Ch.ID)
}

// VoucherSignedBy builds a voucher with any key, domain and channel id.
func (s *Session) VoucherSignedBy(amount *big.Int, key *secp256k1.PrivateKey, d tempo.Domain, id tempo.Hash) tempo.VoucherPayload {
	sig, err := tempo.SignVoucher(key, d, id, amount)
	if err != nil {
		s.C.Failf([]string{"a voucher the suite can sign"}, "%v", err)
	}
	if id == s.Ch.ID {
		// Whatever the suite signs, a target may accept: stay above it.
		s.Acct.raise(amount)
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

// NextAmount is one tick above anything the target may have accepted.
func (s *Session) NextAmount() *big.Int {
	return new(big.Int).Add(maxInt(s.Acct.Signed, s.Acct.Accepted), s.Tick)
}

// SendPayload sends any payload as a session credential.
func (s *Session) SendPayload(payload any) {
	s.SendCredential(s.Authorization(s.Echo(), payload))
}

// PayUnits sends a voucher for k ticks over what the target accepted.
func (s *Session) PayUnits(k int) *big.Int {
	amount := new(big.Int).Add(s.Acct.Accepted, s.Units(k))
	if amount.Cmp(s.Acct.Signed) <= 0 {
		// Something signed earlier was never accepted; stay above it so
		// the voucher is new funds.
		amount.Add(s.Acct.Signed, s.Units(k))
	}
	s.pay(amount)
	return amount
}

// pay sends a voucher of amount on purpose: what it buys is due from now.
func (s *Session) pay(amount *big.Int) {
	s.Send(s.Voucher(amount))
	s.paying(amount)
}

// paying records the voucher of amount just sent on purpose.
func (s *Session) paying(amount *big.Int) {
	s.Paid, s.paidAt, s.timed = amount, time.Now(), true
}

func (s *Session) Units(k int) *big.Int { return new(big.Int).Mul(s.Tick, big.NewInt(int64(k))) }

// streamEnd is how a metered read ended.
type streamEnd int

const (
	endNeedVoucher streamEnd = iota // the target asked for a voucher
	endStream                       // the stream ended (receipt, close-ready)
	endRefused                      // the target refused the last voucher
)

// read is the event loop of a metered stream: it counts messages until the
// target asks for a voucher, ends the stream, or refuses the last voucher.
// It fails at the first frame a metered stream must not send, at the first
// message beyond limit (when limit >= 0), and when nothing decisive arrives
// within the stream timeout, however many stale frames keep coming. A
// silent target fails sooner, by what it owes: once owed messages have
// arrived (owed >= 0: the balance is spent), the needVoucher or the end of
// the stream within the reply timeout plus its pace (the slowest it has
// been to deliver a message in this run, this read included); after any
// message, or a voucher just sent, the next frame within the reply timeout
// plus four times its pace.
func (s *Session) read(limit, owed int) (n int, nv frame.NeedVoucher, end streamEnd, last peer.Event) {
	t := s.C.r.t
	start := time.Now()
	stop := start.Add(t.Stream)
	timed := s.timed
	s.timed = false
	prev := start
	if timed {
		prev = s.paidAt
	}
	var deadline time.Time
	due := func(now time.Time) {
		switch {
		case n == owed:
			deadline = s.C.r.due(now, 1, stop)
		case n > 0 || timed:
			deadline = s.C.r.due(now, 4, stop)
		default:
			deadline = stop
		}
	}
	due(start)
	for {
		e, ok := s.Next(time.Until(deadline))
		switch {
		case !ok && deadline.Before(stop) && n == owed:
			s.C.Failf([]string{fmt.Sprintf("a needVoucher (or the end of the stream) once the %d messages paid for had arrived", owed)},
				"nothing for %s after message %d%s", time.Since(prev).Round(time.Millisecond), n, s.afterNote())
		case !ok && deadline.Before(stop):
			s.C.Failf([]string{"message frames, then a needVoucher when the balance runs out, with no pause in the stream over " + (t.Reply + 4*s.C.r.pace()).Round(time.Millisecond).String() + " (the reply timeout plus four times the target's pace; --timeout-scale for slower streams)"},
				"the stream stalled: nothing for %s after %s%s", time.Since(prev).Round(time.Millisecond), s.since(n), s.afterNote())
		case !ok:
			s.C.Failf([]string{"message frames, then a needVoucher when the balance runs out"}, "no needVoucher within %s; %d messages", t.Stream, n)
		case e.IsFrame(frame.KindMessage):
			now := time.Now()
			if n > 0 || timed {
				s.C.r.served(now.Sub(prev))
			}
			prev = now
			n++
			due(now)
			s.Delivered++
			if limit >= 0 && n > limit {
				s.C.Failf([]string{fmt.Sprintf("exactly %d messages for the voucher of %s, then a needVoucher", limit, s.Paid)}, "message %d: %s%s", n, e, s.afterNote())
			}
		case e.IsFrame(frame.KindNeedVoucher) && s.stale(e.Frame.NeedVoucher):
			// A target that repeats needVoucher every poll (mpp-rs) may have
			// queued this one before the voucher landed; not for long.
			if time.Since(s.paidAt) > t.Reply {
				s.C.Failf([]string{"a needVoucher showing the voucher of " + s.Paid.String() + " accepted"},
					"needVoucher still reports acceptedCumulative %s %s after the voucher was sent: %s%s", e.Frame.NeedVoucher.AcceptedCumulative, time.Since(s.paidAt).Round(time.Millisecond), e, s.afterNote())
			}
			s.T.Note("stale needVoucher ignored: acceptedCumulative below the %s just paid", s.Paid)
		case e.IsFrame(frame.KindNeedVoucher):
			return n, e.Frame.NeedVoucher, endNeedVoucher, e
		case s.IsAck(e):
			// Dialect B acknowledges every voucher with a receipt.
		case s.IsEnd(e):
			return n, frame.NeedVoucher{}, endStream, e
		case e.IsFrame(frame.KindChallenge) && e.Frame.ChallengeError == "":
			// A re-challenge: later vouchers echo it.
		case e.IsFrame(frame.KindError), e.IsFrame(frame.KindChallenge), e.Closed:
			return n, frame.NeedVoucher{}, endRefused, e
		default:
			s.C.Failf([]string{"message frames, then a needVoucher"}, "%s after %d messages", e, n)
		}
	}
}

// since names what a stall followed: message n, or the voucher paid.
func (s *Session) since(n int) string {
	if n == 0 && s.Paid != nil {
		return "the voucher of " + s.Paid.String()
	}
	return fmt.Sprintf("message %d", n)
}

// afterNote names the refused variant a barrier follows, if any.
func (s *Session) afterNote() string {
	if s.after == "" {
		return ""
	}
	return " (after " + s.after + ", which the target must have taken)"
}

// ReadUntilNeedVoucher takes messages until a needVoucher and returns how
// many arrived, across connections if the target ends streams early, and
// the needVoucher's event; a refusal fails the case.
func (s *Session) ReadUntilNeedVoucher() (int, peer.Event) {
	n, _, end, e := s.stream(-1, -1)
	s.mustContinue(end, e, n)
	return n, e
}

// mustContinue fails the case if a read ended with a refusal.
func (s *Session) mustContinue(end streamEnd, e peer.Event, n int) {
	if end == endRefused {
		s.C.Failf([]string{"message frames for the voucher of " + s.Paid.String() + ", then a needVoucher"}, "%s after %d messages", e, n)
	}
}

// stream is read across connections: a target may end a connection's
// stream after a bounded number of messages (a final receipt in dialect A,
// close-ready in B), even with a paid balance left. The channel stays
// reusable (ws-dialects.md §5 scenario 18), so the stream goes on on a new
// connection, opened with a voucher above every one signed: the balance
// left, and the messages the new voucher adds. Limits and counts are over
// all the connections; Extra counts the added messages.
func (s *Session) stream(limit, owed int) (n int, nv frame.NeedVoucher, end streamEnd, last peer.Event) {
	left := func(k int) int {
		if k < 0 {
			return k
		}
		return k - n
	}
	for conns := 1; ; conns++ {
		m, nv, end, e := s.read(left(limit), left(owed))
		n += m
		if end != endStream {
			return n, nv, end, e
		}
		if conns == maxStreams {
			s.C.NotApplicable("the target ended %d streams in a row before the balance this case bought ran out (%d messages on the last connection); start it with more messages per connection (the reference streams 60)", conns, m)
		}
		extra := s.resume(m)
		if limit >= 0 {
			limit += extra
		}
		if owed >= 0 {
			owed += extra
		}
	}
}

// maxStreams bounds the connections one metered read may take.
const maxStreams = 20

// resume reopens on a new connection a session whose stream the target
// ended after n messages, and returns how many messages the new voucher
// adds over the last one paid.
func (s *Session) resume(n int) int {
	amount := s.NextAmount()
	if amount.Cmp(s.Ch.Deposit) > 0 {
		s.C.NotApplicable("the target ended the stream after %d messages on one connection, and fixture channel %s cannot pay the next voucher (%s, over its deposit %s) to go on on a new one; start the target with more messages per connection (the reference streams 60)", n, s.Ch.Name, amount, s.Ch.Deposit)
	}
	last := s.Paid
	if last == nil {
		last = s.Acct.Accepted
	}
	extra := UnitsBetween(s, amount, last)
	s.C.Observe("the target ended a stream after %d messages on one connection; the case went on on a new connection, paying %d ticks more", n, extra)
	s.CloseNormally()
	s.Conn = s.C.Dial(s.Target)
	s.pay(amount)
	s.Extra += extra
	return extra
}

// stale reports whether nv predates the last voucher paid on purpose.
func (s *Session) stale(nv frame.NeedVoucher) bool {
	acc, ok := new(big.Int).SetString(nv.AcceptedCumulative, 10)
	return ok && s.Paid != nil && acc.Cmp(s.Paid) < 0
}

// CheckNeedVoucher checks a needVoucher against the suite's accounting and
// adopts its numbers: requiredCumulative = spent + tick, acceptedCumulative
// = the highest accepted voucher, deposit = the channel deposit.
func (s *Session) CheckNeedVoucher(nv frame.NeedVoucher, accepted *big.Int) {
	c := s.C
	p := s.Ch.Protocol
	req, err1 := tempo.ParseAmount(nv.RequiredCumulative, p)
	acc, err2 := tempo.ParseAmount(nv.AcceptedCumulative, p)
	dep, err3 := tempo.ParseAmount(nv.Deposit, p)
	c.Check(err1 == nil && err2 == nil && err3 == nil, "needVoucher amounts as decimal strings", "%+v", nv)
	c.Check(strings.EqualFold(nv.ChannelID, s.Ch.ID.String()), "needVoucher for the paying channel "+s.Ch.ID.String(), "channelId %s", nv.ChannelID)
	c.Check(acc.Cmp(accepted) == 0, "acceptedCumulative "+accepted.String()+" (the voucher just paid)", "acceptedCumulative %s%s", acc, s.afterNote())
	c.Check(dep.Cmp(s.Ch.Deposit) == 0, "deposit "+s.Ch.Deposit.String()+" (the fixture channel's)", "deposit %s", dep)
	spent := new(big.Int).Sub(req, s.Tick)
	c.Check(spent.Cmp(acc) <= 0 && new(big.Int).Sub(acc, spent).Cmp(s.Tick) < 0,
		"requiredCumulative = spent + tick, with less than one tick left of "+acc.String(), "requiredCumulative %s (spent %s, tick %s)", req, spent, s.Tick)
	s.Acct.Accepted.Set(acc)
	s.Acct.Spent.Set(spent)
}

// ExpectUnits expects exactly k messages, then a needVoucher whose numbers
// match the accounting (plus the messages paid to go on after a stream the
// target ended early). It returns the needVoucher.
func (s *Session) ExpectUnits(k int, accepted *big.Int) frame.NeedVoucher {
	before := new(big.Int).Set(s.Acct.Spent)
	extra := s.Extra
	n, nv, end, e := s.stream(k, k)
	s.mustContinue(end, e, n)
	if s.Extra > extra {
		k += s.Extra - extra
		accepted = s.Paid
	}
	s.C.Check(n == k, fmt.Sprintf("exactly %d messages, then needVoucher", k), "%d messages, then needVoucher", n)
	s.CheckNeedVoucher(nv, accepted)
	want := new(big.Int).Add(before, s.Units(k))
	s.C.Check(s.Acct.Spent.Cmp(want) == 0, "spent "+want.String()+" after "+fmt.Sprint(k)+" units",
		"needVoucher implies spent %s", s.Acct.Spent)
	return nv
}

// ExpectNoUnits asserts that a bad voucher buys nothing: no message or
// receipt within the quiet window. It returns what the target did instead.
func (s *Session) ExpectNoUnits(what string) []peer.Event {
	seen := s.Quiet(s.C.NoData(), s.Target.Dialect.Unbought())
	var kinds []string
	for _, e := range seen {
		kinds = append(kinds, e.String())
	}
	if len(kinds) == 0 {
		kinds = []string{"silence"}
	}
	s.C.Observe("%s: no data; target sent %s", what, strings.Join(kinds, ", "))
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
	c := s.C
	delivered := 0
	for round := 0; round < 1000; round++ {
		before := new(big.Int).Set(s.Acct.Spent)
		paid := s.PayUnits(batch)
		want := UnitsBetween(s, paid, before)
		for n := 0; ; {
			e, ok := s.Next(s.C.r.t.Stream)
			switch {
			case !ok:
				c.Failf([]string{"messages, then a needVoucher or the receipt"}, "silence after %d messages", n)
			case e.IsFrame(frame.KindMessage):
				n++
				delivered++
				s.Delivered++
				continue
			case e.IsFrame(frame.KindChallenge) && e.Frame.ChallengeError == "", s.IsAck(e):
				continue
			case e.IsFrame(frame.KindNeedVoucher):
				c.Check(n == want, fmt.Sprintf("exactly %d messages for a voucher of %s over spent %s, then needVoucher", want, paid, before),
					"%d messages, then needVoucher", n)
				s.CheckNeedVoucher(e.Frame.NeedVoucher, paid)
			case s.IsEnd(e):
				c.Check(n <= want, fmt.Sprintf("at most the %d paid messages before the receipt", want), "%d messages", n)
				r := s.AdoptReceipt(e.Frame.Receipt)
				spent, acc := s.Acct.Spent, s.Acct.Accepted
				wantSpent := PlusTicks(s, before, n)
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

// PlusTicks is a + k ticks of s.
func PlusTicks(s *Session, a *big.Int, k int) *big.Int { return new(big.Int).Add(a, s.Units(k)) }

// UnitsBetween is how many whole ticks hi - lo holds (0 when hi <= lo).
func UnitsBetween(s *Session, hi, lo *big.Int) int {
	d := new(big.Int).Sub(hi, lo)
	if d.Sign() <= 0 {
		return 0
	}
	return int(d.Quo(d, s.Tick).Int64())
}

// AdoptReceipt takes the receipt's totals as the channel's state.
func (s *Session) AdoptReceipt(raw json.RawMessage) mpp.SessionReceipt {
	var r mpp.SessionReceipt
	if err := json.Unmarshal(raw, &r); err != nil {
		s.C.Failf([]string{"a session receipt object"}, "%s: %v", raw, err)
	}
	spent, err1 := tempo.ParseAmount(r.Spent, s.Ch.Protocol)
	acc, err2 := tempo.ParseAmount(r.AcceptedCumulative, s.Ch.Protocol)
	s.C.Check(err1 == nil && err2 == nil, "decimal spent and acceptedCumulative", "spent %q, acceptedCumulative %q", r.Spent, r.AcceptedCumulative)
	s.Acct.Spent.Set(spent)
	s.Acct.Accepted.Set(acc)
	if r.Units != nil {
		s.Acct.units = *r.Units
	}
	return r
}

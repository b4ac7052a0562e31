package harness

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// Refuse sends a voucher payload the target must refuse, on s, and proves
// with no silence window that it bought nothing: a valid voucher for one
// tick over the accepted amount follows at once and must buy exactly one
// message and a needVoucher showing it accepted. A variant taken anyway
// shows as more messages, another acceptedCumulative, or the valid voucher
// refused, and the failure names the variant. So that it shows, a
// variant's amount is at most the accepted one or at least two ticks above
// it (badAmount). A target that closes the connection on the refusal is
// paid on a new connection. Refuse returns the session to go on with.
//
// A dialect that answers every credential (B) is given the variant's answer
// before the valid voucher: a payment-error ends the connection there, and
// mppx leaves it open but unserved (bug B1), so the valid voucher goes on a
// new connection; a receipt is allowed for an idempotent retry of the
// accepted voucher, or for a voucher credited to another channel.
func (s *Session) Refuse(variant string, payload any) *Session {
	c := s.C
	s.SendPayload(payload)
	if !s.Target.Dialect.answersEach() {
		return s.Barrier(variant, true)
	}
	answer := Receive(ErrorFrame, Closed, ReceiptFrame).Within(c.r.t.Stream).Forbidding(DataFrame)
	if ok, _ := answer.Match(s.Conn); !ok {
		c.Failf([]string{"a payment-error for " + variant + " (or a receipt for a retry of the accepted voucher), and no data"}, "%s: the target took %s", answer.actual, variant)
	}
	e, o := answer.Event()
	c.Observe("%s: %s", variant, e)
	if o.Name != ReceiptFrame.Name {
		return c.Connect(s.Ch).Barrier(variant, false)
	}
	var r mpp.SessionReceipt
	_ = json.Unmarshal(e.Frame.Receipt, &r)
	if strings.EqualFold(r.ChannelID, s.Ch.ID.String()) {
		c.Check(r.AcceptedCumulative == s.Acct.Accepted.String(),
			"a payment-error for "+variant+", or for a retry of the accepted voucher a receipt with acceptedCumulative "+s.Acct.Accepted.String(),
			"payment-receipt with acceptedCumulative %q: the target took %s", r.AcceptedCumulative, variant)
	}
	return s.Barrier(variant, false)
}

// Barrier pays one tick over the accepted amount on s and expects exactly
// one message, then a needVoucher showing that voucher accepted. When the
// variant went on s (here), one refusal frame and the close of s are
// allowed before; the channel then pays on a new connection.
func (s *Session) Barrier(variant string, here bool) *Session {
	c := s.C
	g := PlusTicks(s, s.Acct.Accepted, 1)
	auth := s.Authorization(s.Echo(), s.Voucher(g))
	if err := s.Peer.Send(c.Ctx, frame.Frame{Kind: frame.KindCredential, Credential: auth}); err != nil {
		if !here {
			c.Failf([]string{"the connection open for the valid voucher of " + g.String()}, "%v", err)
		}
		// The target closed the connection on the refusal already.
		c.Observe("%s: connection closed (%v)", variant, err)
		return c.Connect(s.Ch).Barrier(variant, false)
	}
	s.paying(g)
	s.after = variant
	defer func() { s.after = "" }()
	n, refusals, extra := 0, 0, s.Extra
	for {
		m, nv, end, e := s.stream(1-n, 1-n)
		n += m
		if end == endNeedVoucher {
			want := 1 + s.Extra - extra
			c.Check(n == want, fmt.Sprintf("exactly %d message for the valid voucher of %s sent after %s", want, s.Paid, variant), "%d messages, then %s", n, e)
			s.CheckNeedVoucher(nv, s.Paid)
			return s
		}
		switch {
		case here && e.Closed && n == 0:
			// The target closed the connection on the refusal: the channel
			// must still pay, on a new connection. The valid voucher sent
			// behind the variant may have been taken before the close, and
			// a unit charged to the closed socket (protocol.md §6.8 keeps
			// it spent), so the new connection learns the state first.
			c.Observe("%s: %s", variant, e)
			return c.OpenSession(Only(s.Ch)).Barrier(variant, false)
		case e.Closed:
			c.Failf([]string{"a needVoucher after exactly 1 message for the valid voucher of " + g.String() + " sent after " + variant}, "%s after %d messages", e, n)
		case !here || refusals > 0:
			// One refusal frame is the variant's; another is the valid voucher's.
			c.Failf([]string{"the valid voucher of " + g.String() + " accepted after " + variant + " was refused"},
				"%s: the valid voucher was refused, so the target must have taken %s", e, variant)
		}
		refusals++
		c.Observe("%s: %s", variant, e)
	}
}

// BadAmount is the amount a refused variant carries when it goes above the
// accepted one: two ticks over it, so that a variant taken anyway makes the
// one-tick barrier voucher after it decrease.
func BadAmount(s *Session) *big.Int { return PlusTicks(s, s.Acct.Accepted, 2) }

// meter counts what several connections metering one channel deliver
// together, reading them in turn. A voucher accepted on one connection may
// be spent by any of them, so only the total is exact.
type meter struct {
	c    *C
	ss   []*Session
	n    []int
	last []*frame.NeedVoucher
	// ended marks connections whose stream the target ended (its limit of
	// messages per connection): the channel's balance goes on on the others.
	ended []bool
}

func NewMeter(c *C, ss ...*Session) *meter {
	m := &meter{c: c}
	for _, s := range ss {
		m.Add(s)
	}
	return m
}

func (m *meter) Add(s *Session) {
	m.ss = append(m.ss, s)
	m.n = append(m.n, 0)
	m.last = append(m.last, nil)
	m.ended = append(m.ended, false)
}

func (m *meter) Total() int {
	t := 0
	for _, n := range m.n {
		t += n
	}
	return t
}

func (m *meter) String() string {
	var parts []string
	for i, s := range m.ss {
		nv := "no needVoucher"
		if m.last[i] != nil {
			nv = fmt.Sprintf("last needVoucher %+v", *m.last[i])
		}
		parts = append(parts, fmt.Sprintf("%s: %d messages, %s", s.Name, m.n[i], nv))
	}
	return strings.Join(parts, "; ")
}

// poll takes what each connection has ready, waiting a short slice on each,
// and fails on frames a metered stream must not send.
func (m *meter) poll() {
	slice := m.c.Timeouts.Quiet / 64
	for i, s := range m.ss {
		for !m.ended[i] {
			e, ok := s.Next(slice)
			if !ok {
				break
			}
			switch {
			case e.IsFrame(frame.KindMessage):
				m.n[i]++
				s.Delivered++
			case e.IsFrame(frame.KindNeedVoucher):
				nv := e.Frame.NeedVoucher
				m.last[i] = &nv
			case e.IsFrame(frame.KindChallenge) && e.Frame.ChallengeError == "":
				// A re-challenge: later vouchers echo it.
			case s.IsAck(e):
				// Dialect B acknowledges every voucher with a receipt.
			case s.IsEnd(e):
				m.ended[i] = true
				s.T.Note("the target ended the stream on %s; the channel's balance goes on on its other connections", s.Name)
				if !slices.Contains(m.ended, false) {
					m.c.NotApplicable("the target ended the stream on every connection of the channel (%s), before the balance ran out; start it with more messages per connection (the reference streams 60)", m)
				}
			default:
				m.c.Failf([]string{"message and needVoucher frames on every connection of the channel"}, "[%s] %s (%s)", s.Name, e, m)
			}
		}
	}
}

// Shows reports whether a connection's newest needVoucher has
// acceptedCumulative = paid.
func (m *meter) Shows(i int, paid *big.Int) bool {
	if m.last[i] == nil {
		return false
	}
	acc, err := tempo.ParseAmount(m.last[i].AcceptedCumulative, m.ss[i].Ch.Protocol)
	return err == nil && acc.Cmp(paid) == 0
}

// Settled reports whether some connection has asked for a voucher with
// acceptedCumulative = paid: a target asks only when a charge fails, so the
// funds are used up and every unit delivered anywhere is charged. Which
// connections ask differs (mpp-rs every one, every poll; the reference only
// the one whose own voucher fell short), so one is enough.
func (m *meter) Settled(paid *big.Int) bool {
	for i := range m.ss {
		if m.Shows(i, paid) {
			return true
		}
	}
	return false
}

// Adopt checks every needVoucher that shows paid accepted against the
// accounting, and takes its numbers as the channel's state.
func (m *meter) Adopt(paid *big.Int) {
	for i, s := range m.ss {
		if m.Shows(i, paid) {
			s.CheckNeedVoucher(*m.last[i], paid)
		}
	}
}

// Until polls Until done holds, failing after the Stream timeout.
func (m *meter) Until(what string, done func() bool) {
	deadline := time.Now().Add(m.c.Timeouts.Stream)
	for !done() {
		if time.Now().After(deadline) {
			m.c.Failf([]string{what + " within " + m.c.Timeouts.Stream.String()}, "%s", m)
		}
		m.poll()
	}
}

// Quiet keeps counting for d: units charged before the funds ran out may
// still be on their way on the connections that did not ask.
func (m *meter) Quiet(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		m.poll()
	}
}

// PayAcross pays k ticks on payer, reads every connection of the channel
// until one asks for more with the voucher accepted, keeps counting for the
// quiet window, and checks that together they delivered exactly what the
// voucher adds over the known spent amount. It adopts the final state.
func PayAcross(c *C, payer *Session, k int, all ...*Session) {
	before := new(big.Int).Set(payer.Acct.Spent)
	paid := payer.PayUnits(k)
	want := UnitsBetween(payer, paid, before)
	m := NewMeter(c, all...)
	m.Until("a needVoucher with acceptedCumulative "+paid.String()+" on a connection of the channel", func() bool { return m.Settled(paid) })
	m.Quiet(c.Timeouts.Quiet)
	c.Check(m.Total() == want, fmt.Sprintf("exactly %d messages in all for a voucher of %s over spent %s at tick %s", want, paid, before, payer.Tick),
		"%d messages (%s)", m.Total(), m)
	m.Adopt(paid)
}

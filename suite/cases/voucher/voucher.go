package voucher

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
	"github.com/mppws/conformance/suite/harness"
)

// anvilKeys are the well-known Anvil/Hardhat development keys #0 to #9:
// PUBLIC TEST KEYS, never used with real funds. The suite signs with them
// where a case needs a key other than a channel's own.
var anvilKeys = []string{
	"0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", // 0xf39F…2266
	"0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d", // 0x7099…79C8
	"0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a", // 0x3C44…93BC
	"0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6", // 0x90F7…b906
	"0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a", // 0x15d3…6A65
	"0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba", // 0x9965…A4dc
	"0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e", // 0x976E…0aa9
	"0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356", // 0x14dC…9955
	"0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97", // 0x2361…1E8f
	"0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6", // 0xa0Ee…9720
}

// publicTestKeys are the keys the suite may sign with: the configured and
// embedded fixture signer keys, then the Anvil keys.
func publicTestKeys(c *harness.C) []*secp256k1.PrivateKey {
	var out []*secp256k1.PrivateKey
	for _, ch := range append(append([]fixtures.Channel(nil), c.FixtureChannels()...), fixtures.Default()...) {
		if ch.SignerKey != nil {
			out = append(out, ch.SignerKey)
		}
	}
	for _, h := range anvilKeys {
		if k, err := tempo.ParsePrivateKey(h); err == nil {
			out = append(out, k)
		}
	}
	return out
}

// voucherKeyOf finds the public test key of addr.
func voucherKeyOf(c *harness.C, addr tempo.Address) (*secp256k1.PrivateKey, bool) {
	for _, k := range publicTestKeys(c) {
		if tempo.AddressOf(k.PubKey()) == addr {
			return k, true
		}
	}
	return nil, false
}

// voucherKeyOutside returns a public test key whose address is none of not.
func voucherKeyOutside(c *harness.C, not ...tempo.Address) *secp256k1.PrivateKey {
next:
	for _, k := range publicTestKeys(c) {
		a := tempo.AddressOf(k.PubKey())
		for _, n := range not {
			if a == n {
				continue next
			}
		}
		return k
	}
	c.NotApplicable("every public test key the suite knows belongs to this channel")
	return nil
}

// signUnrecorded signs a voucher without telling the wallet, for amounts no
// correct target may accept and the wallet must not adopt: recording an
// amount over the deposit would make every later voucher on the channel
// unpayable.
func signUnrecorded(c *harness.C, key *secp256k1.PrivateKey, d tempo.Domain, id tempo.Hash, amount *big.Int) string {
	sig, err := tempo.SignVoucher(key, d, id, amount)
	if err != nil {
		c.Failf([]string{"a voucher the suite can sign"}, "%v", err)
	}
	return tempo.FormatSignature(sig)
}

// overDeposit is a voucher of the channel's signer for one base unit over
// the deposit, signed without telling the wallet (no target may take it).
func overDeposit(s *harness.Session) (*big.Int, tempo.VoucherPayload) {
	over := new(big.Int).Add(s.Ch.Deposit, big.NewInt(1))
	s.Acct.Sent(over)
	return over, voucherPayloadFor(s, s.Ch.ID, over.String(), signUnrecorded(s.C, s.Ch.SignerKey, s.Ch.Domain(), s.Ch.ID, over))
}

// voucherPayloadFor builds a voucher payload with s's channel descriptor and
// any channel id, amount text and signature text. It records nothing.
func voucherPayloadFor(s *harness.Session, id tempo.Hash, amount, sig string) tempo.VoucherPayload {
	p := tempo.VoucherPayload{Action: "voucher", ChannelID: id.String(), CumulativeAmount: amount, Signature: sig}
	if s.Ch.Protocol == tempo.V2 {
		desc := tempo.DescriptorOf(s.Ch.Channel)
		p.Descriptor = &desc
	}
	return p
}

// withV returns sig with its recovery byte replaced.
func withV(sig []byte, v byte) string {
	out := append([]byte(nil), sig...)
	out[64] = v
	return tempo.FormatSignature(out)
}

// highS returns the malleated twin of a low-s signature: s' = N - s with the
// recovery id flipped, which recovers the same key under a lenient verifier.
func highS(sig []byte) string {
	out := append([]byte(nil), sig...)
	s := new(big.Int).SetBytes(sig[32:64])
	new(big.Int).Sub(secp256k1.S256().N, s).FillBytes(out[32:64])
	out[64] = 27 + 28 - sig[64]
	return tempo.FormatSignature(out)
}

// exponentForm writes v as <mantissa>e<exponent>, e.g. 2000 as "2e3".
func exponentForm(v *big.Int) string {
	d := v.String()
	m := strings.TrimRight(d, "0")
	if m == "" {
		m = "0"
	}
	return m + "e" + strconv.Itoa(len(d)-len(m))
}

// Cases are the voucher exhaustion cases, each with its catalogue entry.
func Cases() []harness.Case {
	return []harness.Case{voucher001, voucher002, voucher003, voucher004, voucher005, voucher006, voucher007, voucher008, voucher009, voucher010, voucher011, voucher012, voucher013, voucher014, voucher015, voucher016, voucher017, voucher018, voucher019, voucher020, voucher021}
}

var voucher001 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-001", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "k paid ticks buy exactly k messages, then needVoucher",
	Requirement: "With a voucher for exactly k more ticks the target delivers exactly k messages, then asks for a voucher with requiredCumulative = spent + tick, acceptedCumulative = the voucher, deposit = the channel deposit.",
	Source:      "protocol.md §6.8, §6.9; ws-dialects.md §1.4"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		const k = 5
		paid := s.PayUnits(k)
		s.ExpectUnits(k, paid)
		// The same on a fresh connection, whose first shortage comes after
		// these k units. The drained connection stays open and is counted
		// too: closing it could let a target charge a unit to the dead
		// socket (ws-dialects.md §5 scenario 18).
		t := c.Connect(s.Ch)
		harness.PayAcross(c, t, k, s, t)
	}}

var voucher002 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-002", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession, Long: true,
	Title:       "silence until paid",
	Requirement: "After a needVoucher the target sends no message while the client withholds its voucher (3 s, scaled), and a late voucher for k ticks then buys exactly k messages.",
	Source:      "protocol.md §6.9 (pause delivery)"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		// The late voucher must echo a live challenge. A short-lived one
		// (a target serving the expired-challenge case too) is renewed by a
		// probe in dialect B (Echo); dialect A binds it to the connection,
		// where it cannot be renewed.
		at, err := s.Challenge.ExpiresAt()
		expires := err == nil && time.Until(at) < c.Timeouts.Withhold+c.Timeouts.Reply
		if expires && !s.Target.B() {
			c.NotApplicable("the target's challenge expires in %s, before the %s this case withholds its voucher and a reply are over, and a dialect A challenge cannot be renewed on its connection; give the target a challenge TTL over %s (the expired-challenge case can use a second target URL with a short one)",
				time.Until(at).Round(time.Millisecond), c.Timeouts.Withhold, c.Timeouts.Withhold+c.Timeouts.Reply)
		}
		seen := s.Quiet(c.Timeouts.Withhold, s.Target.Dialect.Unbought())
		c.Observe("voucher withheld for %s: %d other frames (repeated needVoucher allowed)", c.Timeouts.Withhold, len(seen))
		// The pause was a pause: a late voucher resumes the stream,
		// with exactly what it pays.
		const k = 3
		paid := s.PayUnits(k)
		s.ExpectUnits(k, paid)
	}}

var voucher003 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-003", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "a voucher for m more ticks resumes exactly m messages",
	Requirement: "After a needVoucher, a voucher for m more ticks resumes the stream with exactly m messages.",
	Source:      "protocol.md §6.6, §6.8; ws-dialects.md §5 scenario 7"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		for _, m := range []int{1, 4, 7} {
			paid := s.PayUnits(m)
			s.ExpectUnits(m, paid)
		}
	}}

var voucher004 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-004", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "voucher above accepted but below required buys nothing",
	Requirement: "A voucher above acceptedCumulative but below requiredCumulative delivers no message.",
	Source:      "ws-dialects.md §5 scenario 8"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		accepted := new(big.Int).Set(s.Acct.Accepted)
		required := new(big.Int).Add(s.Acct.Spent, s.Tick)
		gap := new(big.Int).Sub(required, accepted)
		if gap.Cmp(big.NewInt(2)) < 0 {
			c.NotApplicable("no amount lies strictly between acceptedCumulative %s and requiredCumulative %s", accepted, required)
		}
		short := new(big.Int).Add(accepted, gap.Rsh(gap, 1))
		s.Send(s.Voucher(short))
		s.ExpectNoUnits(fmt.Sprintf("voucher of %s (accepted %s, required %s)", short, accepted, required))
		// Topping it up to the required amount buys the one unit.
		paid := s.PayUnits(1)
		s.ExpectUnits(harness.UnitsBetween(s, paid, s.Acct.Spent), paid)
	}}

var voucher005 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-005", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "equal voucher adds no funds",
	Requirement: "A voucher equal to acceptedCumulative delivers no message.",
	Source:      "protocol.md §6.6 (amount == H); ws-dialects.md §5 scenario 9"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		accepted := new(big.Int).Set(s.Acct.Accepted)
		// Signatures are deterministic: this is the accepted voucher, byte for byte.
		s.Refuse("the voucher equal to acceptedCumulative "+accepted.String(), s.Voucher(accepted))
	}}

var voucher006 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-006", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "decreasing voucher is rejected",
	Requirement: "A voucher below acceptedCumulative delivers no message.",
	Source:      "protocol.md §6.6 (amount < H)"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		accepted := new(big.Int).Set(s.Acct.Accepted)
		for _, lower := range []*big.Int{new(big.Int).Sub(accepted, big.NewInt(1)), new(big.Int).Sub(accepted, s.Tick)} {
			if lower.Sign() >= 0 {
				s = s.Refuse(fmt.Sprintf("the voucher of %s below acceptedCumulative %s", lower, accepted), s.Voucher(lower))
			}
		}
	}}

var voucher007 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-007", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "voucher over the deposit is rejected",
	Requirement: "A voucher above the channel deposit delivers no message.",
	Source:      "protocol.md §6.6 (amount > D)"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		over, p := overDeposit(s)
		s.Refuse(fmt.Sprintf("the voucher of %s over the deposit %s", over, s.Ch.Deposit), p)
	}}

var voucher008 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-008", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "voucher from the wrong signer is rejected",
	Requirement: "A voucher signed by a key other than the channel's authorizedSigner (or payer) delivers no message.",
	Source:      "protocol.md §6.5 (expected signer), §6.6"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		key := voucherKeyOutside(c, s.Ch.Signer(), s.Ch.Payer)
		amount := harness.BadAmount(s)
		s.Refuse(fmt.Sprintf("the voucher of %s signed by %s (channel signer %s)", amount, tempo.AddressOf(key.PubKey()), s.Ch.Signer()),
			s.VoucherSignedBy(amount, key, s.Ch.Domain(), s.Ch.ID))
	}}

var voucher009 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-009", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession, Channels: 2,
	Title:       "voucher for another channel does not pay this stream",
	Requirement: "A valid voucher for a different channel delivers no message on the metered channel.",
	Source:      "ws-dialects.md §1.4 (no channel-match check in mpp-rs), §6 A3"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		// The second leased channel (catalogue: Channels 2). A voucher valid
		// in every respect for it: a target may credit that channel, so it
		// goes through that channel's account.
		other := c.Leased()[1]
		o := c.SessionOn(s.Conn, other)
		amount := o.NextAmount()
		s.Refuse(fmt.Sprintf("a voucher of %s for channel %s on a stream metering %s", amount, other.ID, s.Ch.ID), o.Voucher(amount))
	}}

var voucher010 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-010", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "malformed voucher signatures are rejected",
	Requirement: "Vouchers whose signature is not 65 bytes, has v outside 27/28, is high-s, or is not hex deliver no message.",
	Source:      "protocol.md §6.5"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		variants := []struct {
			name   string
			mangle func(sig []byte, text string) string
		}{
			{"64 bytes (r‖s, no v)", func(sig []byte, _ string) string { return tempo.FormatSignature(sig[:64]) }},
			{"v=0", func(sig []byte, _ string) string { return withV(sig, 0) }},
			{"v=1", func(sig []byte, _ string) string { return withV(sig, 1) }},
			{"v=29", func(sig []byte, _ string) string { return withV(sig, 29) }},
			{"high-s (N-s, v flipped)", func(sig []byte, _ string) string { return highS(sig) }},
			{"not hex", func(_ []byte, text string) string { return text[:2] + "zz" + text[4:] }},
		}
		for _, v := range variants {
			amount := harness.BadAmount(s)
			// Recorded as signed: a lenient verifier may take this form.
			p := s.Voucher(amount)
			sig, err := tempo.ParseSignature(p.Signature)
			c.Check(err == nil, "a signature the suite can parse", "%v", err)
			p.Signature = v.mangle(sig, p.Signature)
			s = s.Refuse(fmt.Sprintf("the voucher of %s with a %s signature", amount, v.name), p)
		}
	}}

var voucher011 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-011", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "final receipt matches what was delivered and paid",
	Requirement: "The session receipt's spent and units grow by exactly what was delivered and acceptedCumulative equals the highest accepted voucher.",
	Source:      "protocol.md §4.2, §6.8"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		// spent is known exactly from the needVoucher: the receipt's spent
		// and acceptedCumulative are checked absolutely.
		r1, _, n1 := s.RunToReceipt(9)
		c.Observe("first stream: %d messages after the drain, receipt spent %s, units %d", n1, r1.Spent, *r1.Units)
		// units is the channel's running count: a second stream on the
		// channel must add exactly what it delivered.
		t := c.Connect(s.Ch)
		r2, _, n2 := t.RunToReceipt(9)
		grew := int64(*r2.Units) - int64(*r1.Units)
		c.Check(grew == int64(n2), fmt.Sprintf("receipt units grow by the %d messages of the second stream (from %d)", n2, *r1.Units),
			"units %d, grew by %d", *r2.Units, grew)
	}}

var voucher012 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-012", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "reconnect keeps accepted funds and does not refund delivered units",
	Requirement: "After a disconnect mid-stream, a new connection on the same channel cannot reuse an accepted voucher, and its first new voucher buys no more than it adds over what was spent.",
	Source:      "ws-dialects.md §5 scenario 18; protocol.md §6.7"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		// The drain took messages of that connection's stream, which may
		// end before the disconnect this case makes mid-stream (a target
		// streaming ten messages per connection): the case streams on a
		// connection of its own. The drain left no balance to take.
		s.CloseNormally()
		s = c.Connect(s.Ch)
		spent0 := new(big.Int).Set(s.Acct.Spent)
		// k, and left + j after it, fit in ten messages per connection.
		const k, r, j = 8, 2, 4
		v := s.PayUnits(k)
		for i := 0; i < r; i++ {
			s.Expect(c.Timeouts.Reply, []harness.Outcome{harness.DataFrame}, []harness.Outcome{s.End(), harness.ErrorFrame, harness.ChallengeError})
			s.Delivered++
		}
		s.Close()
		// Whatever the harness had already read off the socket reached the
		// suite: the target charged at least those units, at most the k paid.
		d, asked := r, false
		for {
			e, ok := s.Next(c.Timeouts.Reply)
			if !ok || e.Closed {
				break
			}
			switch {
			case e.IsFrame(frame.KindMessage):
				d++
			case e.IsFrame(frame.KindNeedVoucher):
				asked = true
			}
		}
		left := harness.UnitsBetween(s, v, harness.PlusTicks(s, spent0, d))
		c.Observe("dropped the connection after reading %d of %d paid units; %d had arrived (needVoucher seen: %t); at most %d paid units undelivered", r, k, d, asked, left)

		t := c.Connect(s.Ch)
		// Signatures are deterministic: the accepted voucher, byte for byte.
		t.Send(t.Voucher(v))
		seen := t.Quiet(c.NoData(), nil)
		m1, closed := 0, false
		for _, e := range seen {
			if e.IsFrame(frame.KindMessage) {
				m1++
			}
			if t.IsEnd(e) {
				c.NotApplicable("the target ended the stream after %d messages on one connection; this case leaves up to %d paid units to resend on a new connection (start it with more messages per connection)", m1, left)
			}
			closed = closed || e.Closed
		}
		t.Delivered += m1
		c.Check(m1 <= left, fmt.Sprintf("the accepted voucher %s buys nothing new on a new connection: at most the %d paid units that had not arrived", v, left),
			"%d messages", m1)
		c.Observe("accepted voucher resent on a new connection: %d messages, then %v", m1, seen)
		if closed {
			t = c.Connect(s.Ch)
		}

		// The first new voucher adds j ticks to what remained. The target
		// may have charged up to k units, and a stream of the dropped
		// connection that has not yet noticed the drop may charge one more
		// to the dead socket (at most one unit per race, ws-dialects.md §5
		// scenario 18): at least j-1 messages. Funds are never refunded or
		// counted twice: at most left + j.
		w := harness.PlusTicks(s, v, j)
		t.Send(t.Voucher(w))
		t.Paid = w
		n2, nv := t.ReadUntilNeedVoucher()
		// Less what was paid to go on after a stream the target ended early.
		total := m1 + n2 - t.Extra
		c.Check(total >= j-1 && total <= left+j,
			fmt.Sprintf("between %d and %d messages on the new connection for a voucher of %s (accepted %s, at least %d units charged of the %d paid)", j-1, left+j, w, v, d, k),
			"%d messages", total)
		t.CheckNeedVoucher(nv.Frame.NeedVoucher, t.Paid)
	}}

var voucher013 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-013", Area: harness.AreaVoucher, Level: harness.SHOULD, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "one needVoucher per shortage",
	Requirement: "While waiting for a voucher the target does not repeat an identical needVoucher.",
	Source:      "ws-dialects.md §2.4 (mppx once), §6 A2 (mpp-rs repeats every poll and breaks its own client)"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		p := s.Ch.Protocol
		window := 2 * c.Timeouts.Quiet
		seen := s.Quiet(window, harness.Paid)
		repeats, others := 0, 0
		for _, e := range seen {
			if !e.IsFrame(frame.KindNeedVoucher) {
				continue
			}
			nv := e.Frame.NeedVoucher
			req, err1 := tempo.ParseAmount(nv.RequiredCumulative, p)
			acc, err2 := tempo.ParseAmount(nv.AcceptedCumulative, p)
			if err1 == nil && err2 == nil && acc.Cmp(s.Acct.Accepted) == 0 && req.Cmp(new(big.Int).Add(s.Acct.Spent, s.Tick)) == 0 {
				repeats++
			} else {
				others++
			}
		}
		c.Observe("%d identical and %d other needVoucher frames within %s of the first", repeats, others, window)
		c.Check(repeats == 0, "no repeat of the needVoucher within "+window.String()+" while no voucher is sent",
			"%d identical needVoucher frames", repeats)
	}}

var voucher014 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-014", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "two connections on one channel never exceed its funds",
	Requirement: "Two concurrent streams on one channel together deliver exactly the units the accepted vouchers pay for.",
	Source:      "protocol.md §6.6 (linearizable stores), §6.8"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		before := new(big.Int).Set(s.Acct.Spent)
		// The drained connection stays open and is counted too: closing it
		// could let a target charge a unit to the dead socket.
		a, b := c.Connect(s.Ch), c.Connect(s.Ch)
		const x, y = 6, 6
		m := harness.NewMeter(c, s, a)
		v1 := a.PayUnits(x)
		m.Until("a message or a needVoucher showing the voucher "+v1.String()+" accepted", func() bool {
			return m.Total() > 0 || m.Shows(0, v1) || m.Shows(1, v1)
		})
		// The second voucher arrives while the first one's units stream.
		v2 := b.PayUnits(y)
		m.Add(b)
		m.Until("a needVoucher with acceptedCumulative "+v2.String()+" on a connection", func() bool { return m.Settled(v2) })
		m.Quiet(c.Timeouts.Quiet)
		want := harness.UnitsBetween(s, v2, before)
		c.Check(m.Total() == want, fmt.Sprintf("exactly %d messages in all: vouchers of %s (on %s) and %s (on %s) over spent %s", want, v1, a.Name, v2, b.Name, before),
			"%d messages (%s)", m.Total(), m)
		m.Adopt(v2)
		c.Observe("%s", m)
	}}

var voucher015 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-015", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "opening voucher over the deposit is rejected",
	Requirement: "A first voucher above the deposit opens no stream.",
	Source:      "protocol.md §6.6"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		t := c.Connect(s.Ch)
		over, p := overDeposit(s)
		t.Send(p)
		what := fmt.Sprintf("the opening voucher of %s over the deposit %s", over, s.Ch.Deposit)
		t.ExpectNoUnits(what)
		// The channel still pays, and the refused connection, which opened
		// no stream, takes no part in it.
		s.Barrier(what, false)
	}}

var voucher016 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-016", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "voucher for an unknown channel is rejected",
	Requirement: "A voucher for a channel the target does not know opens no stream.",
	Source:      "protocol.md §5 session/channel-not-found"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		// A well-formed channel nobody opened: the fixture channel with a
		// random salt, so its id derives correctly from its descriptor.
		unknown := s.Ch.Channel
		_, err := rand.Read(unknown.Salt[:])
		c.Check(err == nil, "random bytes", "%v", err)
		unknown.ID, err = unknown.DeriveID()
		c.Check(err == nil, "a derivable channel id", "%v", err)
		p := tempo.VoucherPayload{Action: "voucher", ChannelID: unknown.ID.String(), CumulativeAmount: s.Tick.String(),
			Signature: signUnrecorded(c, s.Ch.SignerKey, unknown.Domain(), unknown.ID, s.Tick)}
		if unknown.Protocol == tempo.V2 {
			desc := tempo.DescriptorOf(unknown)
			p.Descriptor = &desc
		}
		t := c.Connect(s.Ch)
		t.Send(p)
		what := "the opening voucher for unknown channel " + unknown.ID.String()
		t.ExpectNoUnits(what)
		// The channel still pays, and the refused connection, which opened
		// no stream, takes no part in it.
		s.Barrier(what, false)
	}}

var voucher017 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-017", Area: harness.AreaVoucher, Level: harness.SHOULD, Dialects: harness.A, Needs: harness.NeedsSession,
	Title:       "rejected vouchers are reported",
	Requirement: "A rejected voucher gets an error frame, so the client learns why the stream does not resume.",
	Source:      "ws-dialects.md §6 A3 (mpp-rs discards verification results)"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		_, overPayload := overDeposit(s)
		other := voucherKeyOutside(c, s.Ch.Signer(), s.Ch.Payer)
		rejected := []struct {
			what string
			p    tempo.VoucherPayload
		}{
			{"voucher equal to acceptedCumulative", s.Voucher(new(big.Int).Set(s.Acct.Accepted))},
			{"voucher from the wrong signer", s.VoucherSignedBy(harness.BadAmount(s), other, s.Ch.Domain(), s.Ch.ID)},
			{"voucher over the deposit", overPayload},
		}
		for _, r := range rejected {
			s.Send(r.p)
			e, o := s.Expect(c.Timeouts.Reply, []harness.Outcome{harness.ErrorFrame, harness.ChallengeError}, harness.Paid)
			c.Observe("%s: %s (%s)", r.what, o.Name, e)
		}
	}}

var voucher018 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-018", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "non-decimal voucher amounts are rejected",
	Requirement: "A voucher whose cumulativeAmount is not a decimal string (signed number, exponent, JSON number) delivers no message.",
	Source:      "protocol.md §6.3 (decimal strings)"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		forms := []func(*big.Int) string{
			func(*big.Int) string { return "-1" },
			func(a *big.Int) string { return "+" + a.String() },
			exponentForm,
			func(a *big.Int) string { return " " + a.String() },
			func(a *big.Int) string { return "0x" + a.Text(16) },
		}
		for _, form := range forms {
			// Signed over the amount the form spells, so a lenient parser
			// finds a valid voucher; recorded as signed for the same reason.
			amount := harness.BadAmount(s)
			p := s.Voucher(amount)
			p.CumulativeAmount = form(amount)
			s = s.Refuse(fmt.Sprintf("cumulativeAmount %s (for %s)", strconv.Quote(p.CumulativeAmount), amount), p)
		}
		amount := harness.BadAmount(s)
		raw, err := json.Marshal(s.Voucher(amount))
		c.Check(err == nil, "a payload the suite can encode", "%v", err)
		var number map[string]any
		c.Check(json.Unmarshal(raw, &number) == nil, "a payload object", "%s", raw)
		number["cumulativeAmount"] = json.Number(amount.String())
		s.Refuse("cumulativeAmount as the JSON number "+amount.String(), number)
	}}

var voucher019 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-019", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "voucher signed for another domain is rejected",
	Requirement: "A voucher signed by the right key over another EIP-712 domain (chainId) delivers no message.",
	Source:      "protocol.md §6.5 (domain binds chainId and escrow)"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		right := s.Ch.Domain()
		chain := right
		chain.ChainID = 42431
		if right.ChainID == chain.ChainID {
			chain.ChainID = 4217
		}
		escrow := right
		escrow.VerifyingContract[19] ^= 0x01
		proto := right
		proto.Protocol = tempo.V1
		if right.Protocol == tempo.V1 {
			proto.Protocol = tempo.V2
		}
		domains := []struct {
			what string
			d    tempo.Domain
		}{
			{fmt.Sprintf("chainId %d (channel's %d)", chain.ChainID, right.ChainID), chain},
			{fmt.Sprintf("verifyingContract %s (channel's %s)", escrow.VerifyingContract, right.VerifyingContract), escrow},
			{fmt.Sprintf("the %s domain name (channel is %s)", proto.Protocol, right.Protocol), proto},
		}
		for _, d := range domains {
			amount := harness.BadAmount(s)
			s = s.Refuse(fmt.Sprintf("the voucher of %s signed by the channel signer over %s", amount, d.what), s.VoucherSignedBy(amount, s.Ch.SignerKey, d.d, s.Ch.ID))
		}
	}}

var voucher020 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-020", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "delegated signer pays",
	Requirement: "On a channel with an authorizedSigner, a voucher signed by that signer is accepted and one signed by the payer is not.",
	Source:      "protocol.md §6.5"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.Delegated)
		payer, ok := voucherKeyOf(c, s.Ch.Payer)
		if !ok || s.Ch.Payer == s.Ch.Signer() {
			c.NotApplicable("the payer %s of delegated channel %s has no public test key the suite knows", s.Ch.Payer, s.Ch.Name)
		}
		amount := harness.BadAmount(s)
		// The barrier after the refusal is the authorized signer paying.
		s.Refuse(fmt.Sprintf("the voucher of %s signed by the payer %s (authorizedSigner %s)", amount, s.Ch.Payer, s.Ch.AuthorizedSigner),
			s.VoucherSignedBy(amount, payer, s.Ch.Domain(), s.Ch.ID))
	}}

var voucher021 = harness.Case{Meta: harness.Meta{ID: "WS-VOUCHER-021", Area: harness.AreaVoucher, Level: harness.MUST, Dialects: harness.B, Needs: harness.NeedsSession, Schedule: harness.Closing,
	Title:       "close handshake settles exactly what was delivered",
	Requirement: "payment-close-request stops the stream; payment-close-ready reports spent equal to the units delivered; a close credential for that amount gets a payment-receipt with a txHash, then close 1000.",
	Source:      "ws-dialects.md §2.2 step 7, §5 scenario 19; protocol.md §6.10 (never capture more than delivered)"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		paid := s.PayUnits(2)
		s.ExpectUnits(harness.UnitsBetween(s, paid, s.Acct.Spent), paid)
		spent := new(big.Int).Set(s.Acct.Spent)
		s.Conn.Send(frame.Frame{Kind: frame.KindCloseRequest})
		e, _ := s.Expect(c.Timeouts.Reply, []harness.Outcome{harness.CloseReady}, []harness.Outcome{harness.DataFrame, harness.Closed})
		var ready mpp.SessionReceipt
		c.Check(json.Unmarshal(e.Frame.Receipt, &ready) == nil, "a session receipt in close-ready", "%s", e.Frame.Receipt)
		c.Check(ready.Spent == spent.String(), "close-ready spent "+spent.String()+": exactly what was delivered", "spent %q", ready.Spent)
		c.Check(strings.EqualFold(ready.ChannelID, s.Ch.ID.String()), "close-ready for channel "+s.Ch.ID.String(), "channelId %q", ready.ChannelID)
		closeVoucher := s.Voucher(spent)
		closeVoucher.Action = "close"
		s.SendPayload(closeVoucher)
		e, _ = s.Expect(c.Timeouts.Reply, []harness.Outcome{harness.ReceiptFrame}, []harness.Outcome{harness.DataFrame, harness.ErrorFrame, harness.Closed})
		var final mpp.SessionReceipt
		_ = json.Unmarshal(e.Frame.Receipt, &final)
		c.Check(final.TxHash != "", "a settlement receipt with a txHash", "%s", e.Frame.Receipt)
		// The target confirmed the close: the channel is spent for good.
		s.Acct.Closed = true
		c.Check(final.Spent == spent.String(), "settlement spent "+spent.String(), "spent %q", final.Spent)
		c.Check(final.AcceptedCumulative == spent.String(), "settlement acceptedCumulative "+spent.String()+": the close amount, which the mppx client checks", "acceptedCumulative %q", final.AcceptedCumulative)
		e, _ = s.Expect(c.Timeouts.Reply, []harness.Outcome{harness.Closed}, []harness.Outcome{harness.DataFrame})
		c.Check(e.Code == websocket.StatusNormalClosure, "close 1000 after the settlement receipt", "%s", e)
		c.Observe("closed at spent %s: txHash %s, then %s", spent, final.TxHash, e)
	}}

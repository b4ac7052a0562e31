package clients

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// Case is one client conformance case, declared in one place: what it is
// (ID, level, dialects, source, requirement), what the scripted server does
// (Does, and the Script that does it) and how the client is graded (Checks
// over the record, and Exit, the end the process must come to). IDs are
// stable: never renumbered, never reused.
type Case struct {
	ID          string
	Title       string
	Level       Level
	Dialects    []string // "A", "B"
	Area        string   // wire, metering, cheat, lifecycle, hostile
	Source      string   // spec section or SDK behaviour
	Requirement string   // the sentence a failure quotes
	Does        string   // what the scripted server does
	Exit        Expect
	// Runs is how many times the client is launched on the case's URL, one
	// after the other (default 1); the channel state carries over.
	Runs int
	// Protocol of the offer (default v2); Offer may change its terms.
	Protocol tempo.Protocol
	Offer    func(o *Offer, chs []fixtures.Channel)
	// Challenge may change every challenge's parameters.
	Challenge func(p *mpp.ChallengeParams)
	// ProbeTTL is the lifetime of the nth dialect B probe's challenge
	// (before scaling); nil is the SDK default.
	ProbeTTL func(n int) time.Duration
	// Messages is the length of the default honest stream (default 20).
	Messages int
	// Script is the server's side of each connection (default honest).
	Script func(c *Conn)
	Checks []Check
}

// Expect is the end the client process must come to.
type Expect int

const (
	// ExitAny: either end is fine; the case grades the wire (and that the
	// client neither crashed nor hung).
	ExitAny Expect = iota
	// ExitZero: the session was honest; the client must succeed.
	ExitZero
	// ExitError: the server cheated or failed; the client must end with an
	// error, not report success.
	ExitError
)

func (e Expect) String() string {
	switch e {
	case ExitZero:
		return "exit status 0"
	case ExitError:
		return "a non-zero exit status (an orderly error)"
	}
	return "any orderly exit"
}

// Areas are the selectable groups of cases, in report order.
var Areas = []string{"wire", "metering", "cheat", "lifecycle", "hostile"}

var (
	dA  = []string{"A"}
	dB  = []string{"B"}
	dAB = []string{"A", "B"}
)

func (c *Case) runs() int { return max(1, c.Runs) }

func (c *Case) messages() int {
	if c.Messages > 0 {
		return c.Messages
	}
	return 20
}

func (c *Case) protocol() tempo.Protocol {
	if c.Protocol == "" {
		return tempo.V2
	}
	return c.Protocol
}

// offerOf is the case's offer over the run's channels.
func (c *Case) offerOf(o *options) Offer {
	off, _ := offerFor(c.protocol(), o.channels)
	if c.Offer != nil {
		c.Offer(&off, o.channels)
	}
	return off
}

// appliesTo reports whether the case runs in dialect d ("A" or "B").
func (c *Case) appliesTo(d string) bool { return slices.Contains(c.Dialects, d) }

// notApplicable says why the case cannot run with these options, if so.
func (c *Case) notApplicable(o *options) string {
	if !c.appliesTo(o.dialect.Name()) {
		return fmt.Sprintf("a dialect %s case; the client speaks dialect %s", strings.Join(c.Dialects, "/"), o.dialect.Name())
	}
	if _, ok := offerFor(c.protocol(), o.channels); !ok {
		return fmt.Sprintf("no %s channel in the channels file: the case offers a %s session", c.protocol(), c.protocol())
	}
	return ""
}

// Catalogue returns every case, by area then ID.
func Catalogue() []*Case {
	out := slices.Clone(catalogue)
	slices.SortStableFunc(out, func(a, b *Case) int {
		if ra, rb := slices.Index(Areas, a.Area), slices.Index(Areas, b.Area); ra != rb {
			return ra - rb
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func lookup(id string) (*Case, bool) {
	for _, c := range catalogue {
		if c.ID == id {
			return c, true
		}
	}
	return nil, false
}

// validate rejects duplicate IDs and incomplete entries.
func validate() error {
	seen := map[string]bool{}
	for _, c := range catalogue {
		switch {
		case seen[c.ID]:
			return fmt.Errorf("client catalogue: duplicate ID %s", c.ID)
		case !strings.HasPrefix(c.ID, "WS-CLIENT-") || len(c.ID) != len("WS-CLIENT-000"):
			return fmt.Errorf("client catalogue: ID %q is not WS-CLIENT-NNN", c.ID)
		case c.Title == "" || c.Requirement == "" || c.Source == "" || c.Does == "" || len(c.Dialects) == 0 || len(c.Checks) == 0 && c.Exit == ExitAny:
			return fmt.Errorf("client catalogue: %s lacks a title, requirement, source, description, dialect or grading", c.ID)
		case c.Level != MUST && c.Level != SHOULD && c.Level != INFO:
			return fmt.Errorf("client catalogue: %s has level %q", c.ID, c.Level)
		case !slices.Contains(Areas, c.Area):
			return fmt.Errorf("client catalogue: %s is in unknown area %q", c.ID, c.Area)
		}
		seen[c.ID] = true
	}
	return nil
}

// Timing of the scripts, before --timeout-scale.
const (
	// reply is how long a cheating server lets the client react before it
	// goes on as if nothing happened.
	reply = 2 * time.Second
	// shortTTL is the lifetime of a challenge a case lets expire.
	shortTTL = 2 * time.Second
)

// openPaid opens the session and delivers what the opening voucher paid;
// it reports whether the connection is still up.
func openPaid(c *Conn) bool {
	if !c.Open(0) {
		return false
	}
	c.DeliverPaid(1000)
	return !c.Gone()
}

// cheatThenEnd marks the cheat, lets the client react and, if it is still
// there, ends the session as if nothing had happened: a client that let
// the cheat pass then exits 0.
func cheatThenEnd(c *Conn, cheat func()) {
	c.cr.rec.Mark("cheat")
	cheat()
	c.Await(reply)
	c.End()
}

// otherChannel is a fixture channel other than the metered one, of the same
// terms when there is one.
func otherChannel(c *Conn) tempo.Hash {
	var fallback tempo.Hash
	for _, ch := range c.cr.o.channels {
		if ch.ID == c.st.ch.ID {
			continue
		}
		if c.cr.offer.matches(ch) {
			return ch.ID
		}
		fallback = ch.ID
	}
	if fallback == (tempo.Hash{}) {
		fallback[31] = 0xff
	}
	return fallback
}

// deepTick prices a unit so that the smallest channel of the offer buys 65
// units: a stream spends a whole deposit quickly, and a deposit is rarely a
// whole number of a client's voucher steps, so capping at it is tested.
func deepTick(o *Offer, chs []fixtures.Channel) {
	var least *big.Int
	for _, ch := range chs {
		if o.matches(ch) && (least == nil || ch.Deposit.Cmp(least) < 0) {
			least = ch.Deposit
		}
	}
	if least != nil {
		o.Tick = new(big.Int).Div(least, big.NewInt(65))
	}
}

// allTheDeposit is how many units the metered channel's deposit buys.
func allTheDeposit(c *Conn) int {
	return int(new(big.Int).Div(c.Deposit(), c.Tick()).Int64())
}

// hostile sends frames the dialect does not define (or should not carry)
// in the middle of an honest stream, then finishes it honestly.
func hostile(send func(c *Conn)) func(*Conn) {
	return func(c *Conn) {
		if !c.Open(0) || !c.Deliver(3) {
			return
		}
		c.cr.rec.Mark("cheat")
		send(c)
		if c.Deliver(7) {
			c.End()
		}
	}
}

var catalogue = []*Case{
	// ---- wire ----
	{
		ID: "WS-CLIENT-001", Title: "dialect A: a credential frame answers the challenge", Level: MUST, Dialects: dA, Area: "wire",
		Source:      "ws-dialects.md §1.2 (the server speaks first; the client answers with a credential frame)",
		Requirement: "In dialect A the client waits for the challenge frame and answers it with a credential frame before anything else.",
		Does:        "sends a challenge frame, streams 20 paid messages, ends with the receipt",
		Exit:        ExitZero,
		Checks: []Check{checkPaid, checkFrames, {"the first frame the client sends is a credential", func(j *judge) []string {
			return firstFrameIsCredential(j)
		}}},
	},
	{
		ID: "WS-CLIENT-002", Title: "dialect B: probe, then an authorization frame first", Level: MUST, Dialects: dB, Area: "wire",
		Source:      "ws-dialects.md §2.2 (HTTP 402 probe of the ws URL's twin, then the client speaks first)",
		Requirement: "In dialect B the client GETs the URL's HTTP twin for the 402 challenge before the upgrade, and its first frame is the authorization.",
		Does:        "answers the probe with 402 and a session challenge, acknowledges the authorization, streams 20 messages, settles",
		Exit:        ExitZero,
		Checks: []Check{checkPaid, checkFrames, {"an HTTP probe before the upgrade", func(j *judge) []string {
			p := j.rec.Probes()
			j.rec.mu.Lock()
			defer j.rec.mu.Unlock()
			if len(p) == 0 || len(j.rec.conns) == 0 || p[0].At > j.rec.conns[0] {
				return []string{fmt.Sprintf("%d probes, the first WebSocket at %v", len(p), j.rec.conns)}
			}
			return nil
		}}, {"the first frame the client sends is an authorization", firstFrameIsCredential}},
	},
	{
		ID: "WS-CLIENT-003", Title: "the challenge is echoed exactly", Level: MUST, Dialects: dAB, Area: "wire",
		Source:      "protocol.md §3.2 (echo every auth-param; request unchanged; opaque and digest kept), §2 (the id is an HMAC over them)",
		Requirement: "The credential echoes the challenge exactly: the request string unchanged and every auth-param, opaque and digest included.",
		Does:        "issues challenges with opaque, digest and description, streams 20 paid messages, ends",
		Exit:        ExitZero,
		Challenge: func(p *mpp.ChallengeParams) {
			p.Digest = "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
			p.Description = "client conformance: echo every parameter"
		},
		Checks: []Check{checkPaid, checkEcho},
	},
	{
		ID: "WS-CLIENT-004", Title: "dialect B: the credential names its payer as source", Level: MUST, Dialects: dB, Area: "wire",
		Source:      "protocol.md §3.2 (mppx's v2 session server requires source on vouchers: payer or authorizedSigner, same chainId)",
		Requirement: "Every dialect B session credential carries source did:pkh:eip155:<chainId>:<payer or authorized signer>.",
		Does:        "streams 20 paid messages, settles",
		Exit:        ExitZero,
		Checks:      []Check{checkPaid, checkSource},
	},
	{
		ID: "WS-CLIENT-005", Title: "v2 vouchers verify in the TIP20 Channel Reserve domain with the descriptor", Level: MUST, Dialects: dAB, Area: "wire",
		Source:      "protocol.md §6.3, §6.5 (v2: domain TIP20 Channel Reserve, uint96; descriptor on every action)",
		Requirement: "On a v2 channel every voucher is the channel signer's EIP-712 signature in the TIP20 Channel Reserve domain (chain and escrow of the challenge) and carries the channel descriptor.",
		Does:        "offers a v2 session, streams 150 messages paying as asked, ends",
		Exit:        ExitZero, Messages: 150,
		Checks: []Check{checkPaid, checkSigner, checkDescriptor},
	},
	{
		ID: "WS-CLIENT-006", Title: "v1 vouchers verify in the Tempo Stream Channel domain", Level: MUST, Dialects: dAB, Area: "wire",
		Source:      "protocol.md §6.1, §6.5 (no sessionProtocol means v1: domain Tempo Stream Channel, uint128)",
		Requirement: "On a v1 channel (a challenge without sessionProtocol) every voucher is the channel signer's EIP-712 signature in the Tempo Stream Channel domain.",
		Does:        "offers a v1 session (no sessionProtocol, as mpp-rs servers), streams 150 messages paying as asked, ends",
		Exit:        ExitZero, Messages: 150, Protocol: tempo.V1,
		Checks: []Check{checkPaid, checkSigner},
	},
	{
		ID: "WS-CLIENT-007", Title: "voucher signatures are low-s", Level: MUST, Dialects: dAB, Area: "wire",
		Source:      "protocol.md §6.5 (the session spec requires rejecting s > N/2)",
		Requirement: "Every voucher and close signature has s ≤ N/2, the only encoding a conformant server accepts.",
		Does:        "streams 150 messages paying as asked, ends",
		Exit:        ExitZero, Messages: 150,
		Checks: []Check{checkPaid, checkLowS},
	},
	{
		ID: "WS-CLIENT-008", Title: "client frames are well-formed", Level: MUST, Dialects: dAB, Area: "wire",
		Source:      "ws-dialects.md §1.1, §2.1 (frame catalogues); protocol.md §6.3 (session payloads)",
		Requirement: "Every frame the client sends is a text frame its dialect defines, and every credential is a session voucher or close on its channel.",
		Does:        "streams 150 messages paying as asked, ends",
		Exit:        ExitZero, Messages: 150,
		Checks: []Check{checkPaid, checkFrames, checkPayloads},
	},

	// ---- metering ----
	{
		ID: "WS-CLIENT-010", Title: "the opening voucher pays at least a unit and stays within the prepay window", Level: MUST, Dialects: dAB, Area: "metering",
		Source:      "protocol.md §6.2 (amount is the price of a unit), §6.9",
		Requirement: "The opening voucher pays for at least one unit and for no more units than the prepay window.",
		Does:        "streams 20 messages paying as asked, ends",
		Exit:        ExitZero,
		Checks: []Check{checkPaid, checkWindow(), {"the opening voucher pays at least one unit", func(j *judge) []string {
			for _, c := range j.rec.Creds() {
				if c.IsVoucher() {
					if c.Amount.Cmp(j.tick()) < 0 {
						return []string{fmt.Sprintf("%s, below one unit (%s)", c, j.tick())}
					}
					return nil
				}
			}
			return nil
		}}},
	},
	{
		ID: "WS-CLIENT-011", Title: "a voucher covers requiredCumulative and no more than the window", Level: MUST, Dialects: dAB, Area: "metering",
		Source:      "protocol.md §6.9 (send a voucher for at least requiredCumulative)",
		Requirement: "After a need-voucher the client signs at least requiredCumulative, and never more than the delivered units plus the prepay window.",
		Does:        "streams 250 messages, asking for a voucher at every shortage, ends",
		Exit:        ExitZero, Messages: 250,
		Checks: []Check{checkPaid, checkCovers, checkWindow()},
	},
	{
		ID: "WS-CLIENT-012", Title: "cumulative amounts strictly increase", Level: MUST, Dialects: dAB, Area: "metering",
		Source:      "protocol.md §6.6 (vouchers are cumulative and must strictly increase)",
		Requirement: "Every voucher on a channel is above the one before.",
		Does:        "streams 250 messages, asking for a voucher at every shortage, ends",
		Exit:        ExitZero, Messages: 250,
		Checks: []Check{checkPaid, checkIncreasing},
	},
	{
		ID: "WS-CLIENT-013", Title: "vouchers never exceed the deposit", Level: MUST, Dialects: dAB, Area: "metering",
		Source:      "protocol.md §6.6 (amount > deposit is rejected), §6.9",
		Requirement: "No voucher exceeds the channel's deposit, even when the client's own prepay step would.",
		Does:        "prices a unit at 1/65 of the smallest deposit and streams until the channel's whole deposit is spent, then ends",
		Exit:        ExitZero, Offer: deepTick,
		Script: func(c *Conn) {
			if c.Open(0) && c.Deliver(allTheDeposit(c)) {
				c.End()
			}
		},
		Checks: []Check{checkPaid, checkDeposit},
	},
	{
		ID: "WS-CLIENT-014", Title: "one voucher for a shortage asked five times at once", Level: MUST, Dialects: dAB, Area: "metering",
		Source:      "ws-dialects.md §1.4, §4.4 (mpp-rs re-sends needVoucher; a client that pays each one pays twice)",
		Requirement: "A shortage is paid once, however many need-voucher frames announce it.",
		Does:        "after what the opening paid, sends the same need-voucher five times at once, then delivers one more unit and ends",
		Exit:        ExitZero,
		Script: func(c *Conn) {
			if !openPaid(c) {
				return
			}
			c.NeedBurst = 4
			c.cr.rec.Mark("shortage")
			if c.Deliver(1) {
				c.End()
			}
		},
		Checks: []Check{checkPaidOnceAfter("shortage", "the repeated need-voucher")},
	},
	{
		ID: "WS-CLIENT-015", Title: "one voucher for a need-voucher re-sent every 100 ms", Level: MUST, Dialects: dAB, Area: "metering",
		Source:      "ws-dialects.md §1.4 (ws_session re-sends needVoucher every poll interval, 100 ms in the docs), bug A2",
		Requirement: "A need-voucher repeated while the voucher is in flight is not paid again.",
		Does:        "after what the opening paid, sends a need-voucher and three more 100 ms apart before taking the voucher, then delivers one more unit and ends",
		Exit:        ExitZero,
		Script: func(c *Conn) {
			if !openPaid(c) {
				return
			}
			c.NeedRepeat, c.NeedEvery = 3, 100*time.Millisecond
			c.cr.rec.Mark("shortage")
			if c.Deliver(1) {
				c.End()
			}
		},
		Checks: []Check{checkPaidOnceAfter("shortage", "the re-sent need-voucher")},
	},

	// ---- a cheating server ----
	{
		ID: "WS-CLIENT-020", Title: "requiredCumulative above the deposit is not signed", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "protocol.md §6.9 (required > deposit needs a top-up, never a voucher above the deposit)",
		Requirement: "When the server requires more than the deposit, the client signs nothing above the deposit and ends with an error.",
		Does:        "prices a unit at 1/65 of the smallest deposit, streams the whole deposit, then asks for one unit more",
		Exit:        ExitError, Offer: deepTick,
		Script: func(c *Conn) {
			if !c.Open(0) || !c.Deliver(allTheDeposit(c)) {
				return
			}
			spent, _ := c.Spent()
			cheatThenEnd(c, func() { c.AskVoucher(c.NeedVoucher(new(big.Int).Add(spent, c.Tick()))) })
		},
		Checks: []Check{checkDeposit},
	},
	{
		ID: "WS-CLIENT-021", Title: "a need-voucher that inflates the deposit is not believed", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "protocol.md §6.12 (server state is an untrusted hint); the deposit is the channel's, on chain",
		Requirement: "A need-voucher claiming a larger deposit than the channel's does not make the client sign above the real deposit; it ends with an error.",
		Does:        "prices a unit at 1/65 of the smallest deposit, streams the whole deposit, then asks for one unit more claiming twice the deposit",
		Exit:        ExitError, Offer: deepTick,
		Script: func(c *Conn) {
			if !c.Open(0) || !c.Deliver(allTheDeposit(c)) {
				return
			}
			spent, _ := c.Spent()
			nv := c.NeedVoucher(new(big.Int).Add(spent, c.Tick()))
			nv.Deposit = new(big.Int).Lsh(c.Deposit(), 1).String()
			cheatThenEnd(c, func() { c.AskVoucher(nv) })
		},
		Checks: []Check{checkDeposit},
	},
	{
		ID: "WS-CLIENT-022", Title: "requiredCumulative of the whole deposit after one message is not signed", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "issue 8 (the reference client signed the whole deposit and exited 0); protocol.md §6.9 (required = spent + one unit)",
		Requirement: "A requiredCumulative far beyond the units delivered (the whole deposit after one message) is not signed; the client ends with an error.",
		Does:        "delivers one message, then asks for requiredCumulative equal to the deposit",
		Exit:        ExitError,
		Script: func(c *Conn) {
			if !c.Open(0) || c.DeliverPaid(1) != 1 {
				return
			}
			cheatThenEnd(c, func() { c.AskVoucher(c.NeedVoucher(c.Deposit())) })
		},
		Checks: []Check{checkWindow()},
	},
	{
		ID: "WS-CLIENT-023", Title: "requiredCumulative far ahead of delivered units is not signed", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "protocol.md §6.9 (required = spent + one unit); ws-dialects.md §2.4",
		Requirement: "A requiredCumulative more than the prepay window ahead of the units delivered is not signed; the client ends with an error.",
		Does:        "delivers what the opening paid, then asks for five prepay windows more",
		Exit:        ExitError,
		Script: func(c *Conn) {
			if !openPaid(c) {
				return
			}
			spent, _ := c.Spent()
			req := new(big.Int).Add(spent, c.Units(int64(5*c.cr.o.window+1)))
			if req.Cmp(c.Deposit()) > 0 {
				req.Set(c.Deposit())
			}
			cheatThenEnd(c, func() { c.AskVoucher(c.NeedVoucher(req)) })
		},
		Checks: []Check{checkWindow()},
	},
	{
		ID: "WS-CLIENT-024", Title: "a decreasing requiredCumulative is an error", Level: SHOULD, Dialects: dAB, Area: "cheat",
		Source:      "protocol.md §6.6, §6.9 (spent only grows, so requiredCumulative never decreases)",
		Requirement: "A need-voucher whose requiredCumulative is below an earlier one (a server whose accounts went backwards) signs nothing and ends the client with an error.",
		Does:        "pays one shortage honestly, delivers what that paid, then asks for one unit less than the first requiredCumulative",
		Exit:        ExitError,
		Script: func(c *Conn) {
			if !openPaid(c) || !c.fund() {
				return
			}
			first := new(big.Int).Set(c.required)
			c.DeliverPaid(1000)
			if c.Gone() {
				return
			}
			cheatThenEnd(c, func() { c.AskVoucher(c.NeedVoucher(first.Sub(first, c.Tick()))) })
		},
		Checks: []Check{checkNoneAfter("cheat", "the decreasing need-voucher")},
	},
	{
		ID: "WS-CLIENT-025", Title: "a need-voucher for another channel is not signed", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "ws-dialects.md §2.6 (mppx: received mismatched payment-need-voucher frame)",
		Requirement: "A need-voucher naming another channel than the one paying the stream signs nothing and ends the client with an error.",
		Does:        "delivers what the opening paid, then asks for a voucher on another fixture channel",
		Exit:        ExitError,
		Script: func(c *Conn) {
			if !openPaid(c) {
				return
			}
			spent, _ := c.Spent()
			nv := c.NeedVoucher(new(big.Int).Add(spent, c.Tick()))
			nv.ChannelID = otherChannel(c).String()
			cheatThenEnd(c, func() { c.AskVoucher(nv) })
		},
		Checks: []Check{checkNoneAfter("cheat", "the need-voucher for another channel")},
	},
	{
		ID: "WS-CLIENT-026", Title: "a receipt claiming more spent than delivered is an error", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "issue 8 (the reference client took spent = 100 units after 60 and wrote it to its ledger); protocol.md §4.2",
		Requirement: "A receipt whose spent exceeds the units delivered ends the client with an error, and nothing more is signed.",
		Does:        "A: streams 60 messages, then a final receipt claiming 100 units spent; B: streams 150 messages and acknowledges every voucher after the opening one with 40 units more spent than delivered",
		Exit:        ExitError,
		Script: func(c *Conn) {
			c.Tamper = func(kind string, rc *mpp.SessionReceipt) {
				// Dialect A's final receipt, dialect B's acknowledgements of
				// vouchers after the opening one.
				if kind == "receipt" || kind == "ack" && *rc.Units > 0 {
					c.cr.rec.Mark("cheat")
					inflate(rc, c.Tick(), 40)
				}
			}
			n := 60
			if c.b() {
				n = 150
			}
			if c.Open(0) && c.Deliver(n) {
				c.End()
			}
		},
		Checks: []Check{checkNoneAfter("cheat", "the over-claiming receipt")},
	},
	{
		ID: "WS-CLIENT-027", Title: "a receipt whose units disagree with what arrived is an error", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "protocol.md §4.2 (units is the channel's unit counter), ws-dialects.md §1.5",
		Requirement: "A receipt (A) or close-ready (B) with the right spent but 40 units more than delivered ends the client with an error; no close is signed.",
		Does:        "streams 20 messages, then a final receipt (A) or close-ready (B) whose units are 40 too many",
		Exit:        ExitError,
		Script: func(c *Conn) {
			c.Tamper = func(kind string, rc *mpp.SessionReceipt) {
				if kind == "receipt" || kind == "close-ready" {
					c.cr.rec.Mark("cheat")
					*rc.Units += 40
				}
			}
			honest(c)
		},
		Checks: []Check{checkNoneAfter("cheat", "the receipt with wrong units")},
	},
	{
		ID: "WS-CLIENT-028", Title: "a receipt claiming less than delivered is an error", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "protocol.md §4.2, §6.10 (close captures what was spent)",
		Requirement: "A final receipt (A) or close-ready (B) under-counting what arrived by 5 units ends the client with an error; no close is signed for it.",
		Does:        "streams 20 messages, then a final receipt (A) or close-ready (B) with 5 units fewer",
		Exit:        ExitError,
		Script: func(c *Conn) {
			c.Tamper = func(kind string, rc *mpp.SessionReceipt) {
				if kind == "receipt" || kind == "close-ready" {
					c.cr.rec.Mark("cheat")
					inflate(rc, c.Tick(), -5)
				}
			}
			honest(c)
		},
		Checks: []Check{checkNoneAfter("cheat", "the under-claiming receipt")},
	},
	{
		ID: "WS-CLIENT-029", Title: "dialect B: close-ready over what was delivered gets no close", Level: MUST, Dialects: dB, Area: "cheat",
		Source:      "issue 8 (a close-ready claiming 100 units after 10 got a close credential for 100); ws-dialects.md §2.6 (mppx: beyond local voucher state)",
		Requirement: "A payment-close-ready whose spent exceeds the units delivered gets no close credential; the client ends with an error.",
		Does:        "streams 10 messages, then payment-close-ready claiming 100 units spent",
		Exit:        ExitError, Messages: 10,
		Script: func(c *Conn) {
			c.Tamper = func(kind string, rc *mpp.SessionReceipt) {
				if kind == "close-ready" {
					c.cr.rec.Mark("cheat")
					inflate(rc, c.Tick(), 90)
				}
			}
			honest(c)
		},
		Checks: []Check{checkNoneAfter("cheat", "the over-claiming close-ready")},
	},
	{
		ID: "WS-CLIENT-030", Title: "data before payment is not paid for", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "ws-dialects.md §1.2 (A: the challenge comes first), §2.2 (B: the stream starts strictly after the payment-receipt)",
		Requirement: "A message the server sent before it was paid, and then bills, ends the client with an error; no close is signed for it.",
		Does:        "A: sends a message before the challenge; B: between the opening authorization and its receipt; then streams 10 paid messages and bills all 11",
		Exit:        ExitError, Messages: 10,
		Script: func(c *Conn) {
			c.Unpaid = func() {
				c.cr.rec.Mark("cheat")
				c.DeliverUnpaid()
			}
			honest(c)
		},
		Checks: []Check{checkNoneAfter("cheat", "the unpaid message")},
	},
	{
		ID: "WS-CLIENT-031", Title: "a challenge for another recipient is not paid", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "protocol.md §6.3, §6.4 (payee is part of the channel; the challenge recipient must be the channel's payee)",
		Requirement: "A challenge whose recipient is not the payee of any channel the client holds gets no credential; the client ends with an error.",
		Does:        "offers a session whose recipient is no fixture channel's payee",
		Exit:        ExitError,
		Offer:       func(o *Offer, _ []fixtures.Channel) { o.Payee = tempo.Address{0xde, 0xad} },
		Checks:      []Check{checkNoCredential},
	},
	{
		ID: "WS-CLIENT-032", Title: "a challenge for another chain is not paid", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "protocol.md §6.2, §6.5 (chainId is in the channel id and the voucher domain)",
		Requirement: "A challenge whose chainId is not the channel's gets no credential; the client ends with an error.",
		Does:        "offers a session on chain 999",
		Exit:        ExitError,
		Offer:       func(o *Offer, _ []fixtures.Channel) { o.ChainID = 999 },
		Checks:      []Check{checkNoCredential},
	},
	{
		ID: "WS-CLIENT-033", Title: "a challenge for another escrow is not paid", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "protocol.md §6.2, §6.5 (escrowContract is the voucher domain's verifyingContract)",
		Requirement: "A challenge whose escrowContract is not the channel's gets no credential; the client ends with an error.",
		Does:        "offers a session with another escrow contract",
		Exit:        ExitError,
		Offer:       func(o *Offer, _ []fixtures.Channel) { o.Escrow = tempo.Address{0xbe, 0xef} },
		Checks:      []Check{checkNoCredential},
	},
	{
		ID: "WS-CLIENT-034", Title: "a receipt for another channel or challenge is an error", Level: MUST, Dialects: dAB, Area: "cheat",
		Source:      "ws-dialects.md §2.6 (mppx: receipts must match the current challenge and channel); §1.5",
		Requirement: "A receipt naming another channel (A's final receipt) or another challenge (B's payment-receipt) ends the client with an error; nothing more is signed.",
		Does:        "A: streams 20 messages, then a receipt for another fixture channel; B: acknowledges the opening authorization with another challenge id, then streams and settles",
		Exit:        ExitError,
		Script: func(c *Conn) {
			c.Tamper = func(kind string, rc *mpp.SessionReceipt) {
				switch {
				case kind == "receipt":
					c.cr.rec.Mark("cheat")
					rc.ChannelID = otherChannel(c).String()
					rc.Reference = rc.ChannelID
				case kind == "ack" && *rc.Units == 0:
					c.cr.rec.Mark("cheat")
					rc.ChallengeID = "not-the-challenge-you-paid"
				}
			}
			honest(c)
		},
		Checks: []Check{checkNoneAfter("cheat", "the receipt for something else")},
	},

	// ---- lifecycle ----
	{
		ID: "WS-CLIENT-040", Title: "dialect A: vouchers echo the newest challenge after the first expires", Level: MUST, Dialects: dA, Area: "lifecycle",
		Source:      "ws-dialects.md §1.2 (a later challenge is paid), §6 A3 (an expired challenge makes every voucher fail)",
		Requirement: "After a new challenge frame, the client's vouchers echo it, never the expired one.",
		Does:        "opens with a challenge living 2 s, delivers what the opening paid, waits for it to expire, sends a fresh challenge frame, then asks for a voucher and ends",
		Exit:        ExitZero,
		Script: func(c *Conn) {
			if !c.Open(shortTTL) {
				return
			}
			c.DeliverPaid(1000)
			waitExpired(c, c.issued[0])
			c.Challenge(0)
			if c.Deliver(3) {
				c.End()
			}
		},
		Checks: []Check{checkPaid, checkFresh, checkNewest, checkAtLeastVouchers(2)},
	},
	{
		ID: "WS-CLIENT-041", Title: "dialect B: re-probe when the challenge expires mid-session", Level: MUST, Dialects: dB, Area: "lifecycle",
		Source:      "ws-dialects.md §5 scenario 24 (wevm/mppx#709, tempoxyz/mpp-rs#343: re-probe with Payment-Session before a voucher)",
		Requirement: "When the challenge has expired, the client probes again and signs the next voucher and the close against the fresh challenge.",
		Does:        "answers the first probe with a challenge living 2 s, delivers what the opening paid, waits for it to expire, then asks for a voucher and settles",
		Exit:        ExitZero,
		ProbeTTL: func(n int) time.Duration {
			if n == 0 {
				return shortTTL
			}
			return 0
		},
		Script: func(c *Conn) {
			if !openPaid(c) {
				return
			}
			waitExpired(c, c.cr.issuedChallenge(c.openID))
			if c.Deliver(3) {
				c.End()
			}
		},
		Checks: []Check{checkPaid, checkFresh, checkEcho, checkAtLeastVouchers(2)},
	},
	{
		ID: "WS-CLIENT-042", Title: "a rejected payment ends the client with an error", Level: MUST, Dialects: dAB, Area: "lifecycle",
		Source:      "ws-dialects.md §1.2 (A: error is fatal), §2.3 (B: payment-error then close 1008)",
		Requirement: "When the server rejects its credential (A: error frame; B: payment-error 402 then close 1008), the client pays nothing more and ends with an error.",
		Does:        "rejects the opening credential: A an error frame, the connection left open; B payment-error 402 and close 1008",
		Exit:        ExitError,
		Script: func(c *Conn) {
			if !c.b() {
				c.Challenge(0)
			}
			if c.awaitCred(forever) == nil {
				return
			}
			c.cr.rec.Mark("cheat")
			c.Reject("payment verification failed (the scripted server refuses every credential)")
		},
		Checks: []Check{checkNoneAfter("cheat", "the rejection")},
	},
	{
		ID: "WS-CLIENT-043", Title: "a server that closes mid-stream is not a success", Level: MUST, Dialects: dAB, Area: "lifecycle",
		Source:      "ws-dialects.md §2.3 (B: stream failure is payment-error 500 and close 1011), §1.2 (A: close frames are fatal)",
		Requirement: "When the server closes in the middle of the stream, the client ends with an error rather than report a complete session.",
		Does:        "delivers 5 messages, then A closes 1011; B sends payment-error 500 and closes 1011 (every connection alike)",
		Exit:        ExitError,
		Script: func(c *Conn) {
			if !c.Open(0) || !c.Deliver(5) {
				return
			}
			if c.b() {
				c.Send(frame.Frame{Kind: frame.KindError, Status: 500, Error: "websocket session failed"})
			}
			c.Close(websocket.StatusInternalError, "websocket session failed")
		},
		Checks: []Check{checkPaid},
	},
	{
		ID: "WS-CLIENT-044", Title: "dialect B: the close handshake settles exactly what was delivered", Level: MUST, Dialects: dB, Area: "lifecycle",
		Source:      "ws-dialects.md §2.2 step 7 (close-ready, then a close credential for its spent), protocol.md §6.10",
		Requirement: "After payment-close-ready the client sends one close credential, signed by the channel signer, for exactly the units delivered, and succeeds on the settlement receipt.",
		Does:        "streams 20 messages, sends payment-close-ready, answers the close credential with a settlement receipt and close 1000",
		Exit:        ExitZero,
		Checks:      []Check{checkSettles, checkSigner},
	},
	{
		ID: "WS-CLIENT-045", Title: "a resumed channel is not signed below what was signed", Level: MUST, Dialects: dAB, Area: "lifecycle",
		Source:      "protocol.md §6.6 (cumulative vouchers; a voucher at or below the highest is rejected or adds nothing); reference client --ledger",
		Requirement: "On a new connection to a channel it paid before, the client's first voucher is not below its highest earlier voucher (above it in dialect A), and its receipts count the earlier units.",
		Does:        "runs the client twice on one channel: the first connection is closed 1012 after 150 messages (past a need-voucher); the second streams 20 more and ends",
		Exit:        ExitZero, Runs: 2,
		Script: func(c *Conn) {
			if c.N() == 1 {
				if c.Open(0) && c.Deliver(150) {
					c.Close(websocket.StatusServiceRestart, "service restart")
				}
				return
			}
			honest(c)
		},
		Checks: []Check{checkPaid, checkResume, checkIncreasing},
	},

	// ---- hostility ----
	{
		ID: "WS-CLIENT-050", Title: "a non-JSON text frame does not crash the client", Level: MUST, Dialects: dAB, Area: "hostile",
		Source:      "ws-dialects.md §5 scenario 14 (A: fatal; mppx: delivered raw)",
		Requirement: "A text frame that is not JSON neither crashes nor hangs the client, and buys nothing.",
		Does:        "mid-stream, sends `this is not json {`, then finishes the stream",
		Script:      hostile(func(c *Conn) { c.SendText([]byte("this is not json {")) }),
		Checks:      []Check{checkWindow()},
	},
	{
		ID: "WS-CLIENT-051", Title: "an unknown frame type does not crash the client", Level: MUST, Dialects: dAB, Area: "hostile",
		Source:      "ws-dialects.md §5 scenario 14",
		Requirement: "A JSON frame of a type the dialect does not define neither crashes nor hangs the client, and buys nothing.",
		Does:        "mid-stream, sends a frame tagged `surprise`, then finishes the stream",
		Script: hostile(func(c *Conn) {
			c.SendText([]byte(fmt.Sprintf(`{%q:"surprise","requiredCumulative":"99999999999"}`, c.d.TagKey())))
		}),
		Checks: []Check{checkWindow()},
	},
	{
		ID: "WS-CLIENT-052", Title: "an oversized frame does not crash the client", Level: MUST, Dialects: dAB, Area: "hostile",
		Source:      "ws-dialects.md §5 scenario 17",
		Requirement: "A 2 MiB message frame neither crashes nor hangs the client.",
		Does:        "mid-stream, sends a 2 MiB message frame, then finishes the stream",
		Script: hostile(func(c *Conn) {
			c.Send(frame.Frame{Kind: frame.KindMessage, Data: frame.StringData(strings.Repeat("x", 2<<20))})
		}),
		Checks: []Check{checkWindow()},
	},
	{
		ID: "WS-CLIENT-053", Title: "a binary frame does not crash the client", Level: MUST, Dialects: dAB, Area: "hostile",
		Source:      "ws-dialects.md §5 scenario 15 (A clients: fatal; mppx: dropped)",
		Requirement: "A binary frame neither crashes nor hangs the client, and buys nothing.",
		Does:        "mid-stream, sends a need-voucher for the whole deposit as a binary frame, then finishes the stream",
		Script: hostile(func(c *Conn) {
			c.SendBinary(mustEncode(c.d, frame.Frame{Kind: frame.KindNeedVoucher, NeedVoucher: c.NeedVoucher(c.Deposit())}))
		}),
		Checks: []Check{checkWindow()},
	},
	{
		ID: "WS-CLIENT-054", Title: "a ping flood is answered and the session completes", Level: MUST, Dialects: dAB, Area: "hostile",
		Source:      "RFC 6455 §5.5.2 (a ping must be answered with a pong); ws-dialects.md §1.2 (keepalive pings)",
		Requirement: "The client answers 200 pings sent at once and still completes the session.",
		Does:        "mid-stream, sends 200 pings at once and waits for their pongs, then finishes the stream",
		Exit:        ExitZero,
		Script: hostile(func(c *Conn) {
			if n := c.PingFlood(200); n < 200 {
				c.cr.rec.Observe("%d of 200 pings answered", n)
			}
		}),
		Checks: []Check{checkPaid, {"every ping answered", func(j *judge) []string {
			for _, o := range j.rec.observed() {
				if strings.Contains(o, "pings answered") {
					return []string{o}
				}
			}
			return nil
		}}},
	},
	{
		ID: "WS-CLIENT-055", Title: "a server that stalls after payment does not hang the client", Level: MUST, Dialects: dAB, Area: "hostile",
		Source:      "ws-dialects.md §1.2 (mpp-rs: 30 s payment timeout), §6 B5 (servers without timeouts)",
		Requirement: "When the server goes silent after taking the payment, the client gives up by its own timeout with an error.",
		Does:        "takes the opening credential (B: acknowledges it), then sends nothing",
		Exit:        ExitError,
		Script: func(c *Conn) {
			c.Open(0)
		},
		Checks: []Check{checkPaid},
	},
	{
		ID: "WS-CLIENT-056", Title: "a server that never asks for payment does not hang the client", Level: MUST, Dialects: dAB, Area: "hostile",
		Source:      "ws-dialects.md §1.2 (mpp-rs: 30 s handshake timeout), §2.6 (mppx waits for the first receipt without a timeout)",
		Requirement: "When the server never starts (A: no challenge frame; B: no payment-receipt), the client gives up by its own timeout with an error.",
		Does:        "A: upgrades and sends nothing; B: takes the authorization and sends nothing",
		Exit:        ExitError,
		Script:      func(c *Conn) {},
		Checks:      []Check{},
	},
	{
		ID: "WS-CLIENT-057", Title: "a deeply nested frame does not crash the client", Level: MUST, Dialects: dAB, Area: "hostile",
		Source:      "RFC 8259 §9 (parsers may limit nesting); a stack-exhausting frame is a denial of service",
		Requirement: "A message frame nested 100,000 arrays deep neither crashes nor hangs the client, and buys nothing.",
		Does:        "mid-stream, sends a frame whose data nests 100,000 arrays, then finishes the stream",
		Script: hostile(func(c *Conn) {
			const depth = 100_000
			c.SendText([]byte(fmt.Sprintf(`{%q:"message","data":%s%s}`, c.d.TagKey(), strings.Repeat("[", depth), strings.Repeat("]", depth))))
		}),
		Checks: []Check{checkWindow()},
	},
	{
		ID: "WS-CLIENT-058", Title: "a mistyped need-voucher buys nothing", Level: MUST, Dialects: dAB, Area: "hostile",
		Source:      "ws-dialects.md §1.1, §2.1 (need-voucher amounts are decimal strings)",
		Requirement: "A need-voucher whose amounts are JSON numbers is not a need-voucher: it neither crashes the client nor gets a voucher.",
		Does:        "mid-stream, sends a need-voucher with numeric amounts, then finishes the stream",
		Script: hostile(func(c *Conn) {
			nv := c.NeedVoucher(c.Deposit())
			body := fmt.Sprintf(`"channelId":%q,"requiredCumulative":%s,"acceptedCumulative":%s,"deposit":%s`, nv.ChannelID, nv.RequiredCumulative, nv.AcceptedCumulative, nv.Deposit)
			if c.b() {
				c.SendText([]byte(`{"mpp":"payment-need-voucher","data":{` + body + `}}`))
			} else {
				c.SendText([]byte(`{"type":"needVoucher",` + body + `}`))
			}
		}),
		Checks: []Check{checkWindow()},
	},
	{
		ID: "WS-CLIENT-059", Title: "invalid UTF-8 in a text frame does not crash the client", Level: MUST, Dialects: dAB, Area: "hostile",
		Source:      "RFC 6455 §8.1 (text frames are UTF-8; the receiver fails the connection)",
		Requirement: "A text frame with invalid UTF-8 neither crashes nor hangs the client, and buys nothing.",
		Does:        "mid-stream, sends a message frame with invalid UTF-8 bytes, then finishes the stream",
		Script: hostile(func(c *Conn) {
			c.SendText(append([]byte(fmt.Sprintf(`{%q:"message","data":"`, c.d.TagKey())), 0xff, 0xfe, '"', '}'))
		}),
		Checks: []Check{checkWindow()},
	},
}

// inflate moves a receipt's spent and units by n units.
func inflate(rc *mpp.SessionReceipt, tick *big.Int, n int64) {
	spent, _ := new(big.Int).SetString(rc.Spent, 10)
	spent.Add(spent, new(big.Int).Mul(tick, big.NewInt(n)))
	rc.Spent = spent.String()
	*rc.Units = uint64(int64(*rc.Units) + n)
}

// waitExpired waits until ch has expired.
func waitExpired(c *Conn, ch mpp.Challenge) {
	if exp, err := ch.ExpiresAt(); err == nil {
		c.cr.rec.Note("waiting for challenge %s to expire at %s", ch.ID, ch.Expires)
		c.SleepUntil(exp.Add(50 * time.Millisecond))
	}
}

// firstFrameIsCredential: on every connection, the client's first frame
// is a credential.
func firstFrameIsCredential(j *judge) []string {
	j.rec.mu.Lock()
	defer j.rec.mu.Unlock()
	seen := map[int]bool{}
	var out []string
	for _, f := range j.rec.frames {
		if seen[f.conn] {
			continue
		}
		seen[f.conn] = true
		if f.kind != string(frame.KindCredential) {
			out = append(out, fmt.Sprintf("c%d: the first frame is %s", f.conn, f.kind))
		}
	}
	if len(seen) == 0 {
		out = append(out, "the client sent no frame")
	}
	return out
}

// checkAtLeastVouchers: the case got as far as it meant to.
func checkAtLeastVouchers(n int) Check {
	return Check{fmt.Sprintf("at least %d vouchers", n), func(j *judge) []string {
		got := 0
		for _, c := range j.rec.Creds() {
			if c.IsVoucher() {
				got++
			}
		}
		if got < n {
			return []string{fmt.Sprintf("%d vouchers", got)}
		}
		return nil
	}}
}

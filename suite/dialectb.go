package suite

import (
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/suite/peer"
)

// AnyFrame is any event at all: for "the server says nothing".
var AnyFrame = Outcome{"any frame or close", func(peer.Event) bool { return true }}

// expectAck reads the payment-receipt that must acknowledge a voucher of
// amount, before any message, and checks its fields.
func (s *Session) expectAck(amount *big.Int) mpp.SessionReceipt {
	c := s.c
	e, _ := s.Expect(c.r.t.Reply, []Outcome{ReceiptFrame}, []Outcome{DataFrame, NeedVoucher, ErrorFrame, Closed})
	c.checkFields("payment-receipt data", e.Frame.Receipt, map[string]string{
		"method": "string", "intent": "string", "status": "string", "timestamp": "string", "reference": "string",
		"challengeId": "string", "channelId": "string", "acceptedCumulative": "decimal", "spent": "decimal",
		"units": "number?", "txHash": "string?",
	})
	var r mpp.SessionReceipt
	_ = json.Unmarshal(e.Frame.Receipt, &r)
	c.Check(r.Method == "tempo" && r.Intent == "session" && r.Status == "success", "method tempo, intent session, status success", "%s/%s/%s", r.Method, r.Intent, r.Status)
	c.Check(r.ChallengeID == s.Challenge.ID, "challengeId "+s.Challenge.ID+" (the credential's)", "challengeId %q", r.ChallengeID)
	c.Check(strings.EqualFold(r.ChannelID, s.Ch.ID.String()), "channelId "+s.Ch.ID.String(), "channelId %q", r.ChannelID)
	c.Check(r.AcceptedCumulative == amount.String(), "acceptedCumulative "+amount.String()+" (the voucher)", "acceptedCumulative %q", r.AcceptedCumulative)
	return r
}

func dialectBCases(g *registry) {
	g.Case("WS-WIRE-017", func(c *C) {
		t := c.Target()
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req, err := http.NewRequestWithContext(c.ctx, method, httpURL(t.URL), nil)
			c.Check(err == nil, "a probe request", "%v", err)
			resp, err := probeClient.Do(req)
			c.Check(err == nil, method+" of "+httpURL(t.URL)+" answered", "%v", err)
			resp.Body.Close()
			c.T.Note("%s %s: HTTP %d, WWW-Authenticate: %s, Cache-Control: %s", method, httpURL(t.URL), resp.StatusCode,
				strings.Join(resp.Header.Values("WWW-Authenticate"), " | "), resp.Header.Get("Cache-Control"))
			c.Check(resp.StatusCode == http.StatusPaymentRequired, method+": status 402 exactly", "status %d", resp.StatusCode)
			var session *mpp.Challenge
			for _, h := range resp.Header.Values("WWW-Authenticate") {
				cs, err := mpp.ParseChallenges(h)
				c.Check(err == nil, "WWW-Authenticate parses as Payment challenges", "%q: %v", h, err)
				for i := range cs {
					if cs[i].Method == "tempo" && cs[i].Intent == "session" {
						session = &cs[i]
					}
				}
			}
			c.Check(session != nil, method+": a Payment challenge with method tempo, intent session", "none in %q", resp.Header.Values("WWW-Authenticate"))
			at, err := session.ExpiresAt()
			c.Check(err == nil && at.After(time.Now()), method+": an expires in the future", "expires %q (%v)", session.Expires, err)
			c.Check(strings.Contains(resp.Header.Get("Cache-Control"), "no-store"), method+": Cache-Control: no-store", "Cache-Control %q", resp.Header.Get("Cache-Control"))
		}
	})

	g.Case("WS-WIRE-018", func(c *C) {
		cn := c.Dial(c.Target())
		cn.Quiet(2*c.r.t.Quiet, []Outcome{AnyFrame})
		c.Observe("no frame and no close within %s of the upgrade", 2*c.r.t.Quiet)
	})

	g.Case("WS-WIRE-019", func(c *C) {
		s := c.Connect(c.channel(c.TargetFor(NeedsSession), AnyChannel))
		amount := s.nextAmount()
		s.Send(s.Voucher(amount))
		s.paid = amount
		r := s.expectAck(amount)
		c.Check(r.Units != nil, "numeric units", "no units")
		n, nv := s.ReadUntilNeedVoucher()
		s.checkNeedVoucher(nv, amount)
		c.Observe("payment-receipt first (spent %s), then %d messages", r.Spent, n)
	})

	g.Case("WS-WIRE-020", func(c *C) {
		cn := c.Dial(c.Target())
		c.payTampered(cn, forge)
		e, _ := cn.Expect(c.r.t.Reply, []Outcome{ErrorFrame}, Paid)
		c.checkFields("payment-error", e.Raw, map[string]string{"mpp": "string", "status": "number", "message": "string"})
		c.Check(e.Frame.Status >= 400 && e.Frame.Status < 500, "a 4xx status", "status %d", e.Frame.Status)
		c.Observe("payment-error %d: %s", e.Frame.Status, clipNote(e.Frame.Error))
	})

	g.Case("WS-WIRE-021", func(c *C) {
		s := c.OpenSession(AnyChannel)
		paid := s.PayUnits(1)
		for {
			e, ok := s.Next(c.r.t.Reply)
			c.Check(ok, "a message, then a payment-need-voucher frame", "silence")
			if !e.IsFrame(frame.KindNeedVoucher) {
				c.Check(e.IsFrame(frame.KindMessage) || s.isAck(e), "messages and receipts before the need-voucher", "%s", e)
				continue
			}
			obj := c.checkFields("payment-need-voucher", e.Raw, map[string]string{"mpp": "string", "data": "object"})
			c.checkFields("payment-need-voucher data", obj["data"], map[string]string{
				"channelId": "string", "requiredCumulative": "decimal", "acceptedCumulative": "decimal", "deposit": "decimal",
			})
			s.checkNeedVoucher(e.Frame.NeedVoucher, paid)
			return
		}
	})

	g.Case("WS-REPLAY-019", func(c *C) {
		cn := c.Dial(c.Target())
		c.payTampered(cn, forge)
		cn.Expect(c.r.t.Reply, []Outcome{ErrorFrame}, Paid)
		e, ok := cn.Next(c.r.t.Reply)
		switch {
		case !ok:
			c.Failf([]string{"close 1008 after payment-error"}, "no close within %s: the socket is left open and nobody serves it (mppx bug B1)", c.r.t.Reply)
		case !e.Closed:
			c.Failf([]string{"close 1008 after payment-error"}, "%s", e)
		}
		c.Check(e.Code == websocket.StatusPolicyViolation, "close code 1008", "%s", e)
		c.Check(len(e.Reason) <= 123, "a close reason of at most 123 bytes", "%d bytes", len(e.Reason))
		c.Observe("closed %d %q", e.Code, e.Reason)
	})

	g.Case("WS-REPLAY-020", func(c *C) {
		s := c.OpenSession(AnyChannel)
		accepted := new(big.Int).Set(s.acct.accepted)
		s.Close()
		t := c.Connect(s.Ch)
		t.Send(t.Voucher(accepted))
		r := t.expectAck(accepted)
		c.Check(r.AcceptedCumulative == accepted.String(), "acceptedCumulative unchanged", "%s", r.AcceptedCumulative)
		t.ExpectNoUnits("the last accepted voucher again on a new connection")
	})

	g.Case("WS-ROBUST-014", func(c *C) {
		s := c.OpenSession(AnyChannel)
		accepted := new(big.Int).Set(s.acct.accepted)
		s.Close()
		t := c.Connect(s.Ch)
		// Equal vouchers: each is a valid idempotent retry, so only the
		// queue limit can refuse them.
		auth := t.Authorization(t.Challenge, t.Voucher(accepted))
		sent := 0
		for ; sent < 100; sent++ {
			if t.Peer.Send(c.ctx, frame.Frame{Kind: frame.KindCredential, Credential: auth}) != nil {
				break
			}
		}
		deadline := time.Now().Add(c.r.t.Stream)
		var saw []string
		for time.Now().Before(deadline) {
			e, ok := t.Next(time.Until(deadline))
			if !ok {
				break
			}
			switch {
			case e.IsFrame(frame.KindError):
				c.Check(e.Frame.Status == http.StatusTooManyRequests, "payment-error with status 429", "%s", e)
				e, _ = t.Expect(c.r.t.Reply, []Outcome{Closed}, []Outcome{DataFrame})
				c.Check(e.Code == websocket.StatusPolicyViolation, "close 1008 after the 429", "%s", e)
				c.Observe("%d frames written; %d receipts, then 429 and %s", sent, t.Seen[frame.KindReceipt], e)
				robustServes(c, c.Target())
				return
			case e.Closed:
				c.Failf([]string{"payment-error 429, then close 1008"}, "%s after %s", e, strings.Join(saw, ", "))
			}
			saw = append(saw, string(e.Frame.Kind))
		}
		c.Failf([]string{"payment-error 429, then close 1008"}, "%d frames written; %d receipts, no 429 within %s", sent, t.Seen[frame.KindReceipt], c.r.t.Stream)
	})

	g.Case("WS-ROBUST-015", func(c *C) {
		t := c.TargetFor(NeedsSession)
		s := c.Connect(c.channel(t, AnyChannel))
		s.Conn.Send(frame.Frame{Kind: frame.KindCloseRequest})
		s.Quiet(c.r.t.Quiet, []Outcome{AnyFrame})
		amount := s.nextAmount()
		s.Send(s.Voucher(amount))
		s.paid = amount
		s.expectAck(amount)
		n, nv := s.ReadUntilNeedVoucher()
		s.checkNeedVoucher(nv, amount)
		c.Observe("close request first, then a voucher: %d messages streamed", n)
	})

	g.Case("WS-ROBUST-016", func(c *C) {
		t := c.TargetFor(NeedsSession)
		s := c.Connect(c.channel(t, AnyChannel))
		amount := s.nextAmount()
		auth := s.Authorization(s.Challenge, s.Voucher(amount))
		b, _ := frame.B.Encode(frame.Frame{Kind: frame.KindCredential, Credential: auth})
		if err := s.Peer.SendBinary(c.ctx, b); err != nil {
			c.Failf([]string{"the connection open for a binary frame"}, "%v", err)
		}
		e, ok := s.Next(c.r.t.Reply)
		switch {
		case ok && s.isAck(e):
			s.paid = amount
			n, nv := s.ReadUntilNeedVoucher()
			s.checkNeedVoucher(nv, amount)
			c.Observe("binary authorization processed as text: receipt, then %d messages", n)
		case ok:
			c.Observe("binary authorization refused: %s", e)
		default:
			c.Observe("binary authorization ignored (silence for %s)", c.r.t.Reply)
		}
	})
}

// closingCases close channels for good; the scheduler runs them last.
func closingCases(g *registry) {
	g.Case("WS-VOUCHER-021", func(c *C) {
		s := c.OpenSession(AnyChannel)
		paid := s.PayUnits(2)
		s.ExpectUnits(unitsBetween(s, paid, s.acct.spent), paid)
		spent := new(big.Int).Set(s.acct.spent)
		s.Conn.Send(frame.Frame{Kind: frame.KindCloseRequest})
		e, _ := s.Expect(c.r.t.Reply, []Outcome{{"payment-close-ready", func(e peer.Event) bool { return e.IsFrame(frame.KindCloseReady) }}}, []Outcome{DataFrame, Closed})
		var ready mpp.SessionReceipt
		c.Check(json.Unmarshal(e.Frame.Receipt, &ready) == nil, "a session receipt in close-ready", "%s", e.Frame.Receipt)
		c.Check(ready.Spent == spent.String(), "close-ready spent "+spent.String()+": exactly what was delivered", "spent %q", ready.Spent)
		c.Check(strings.EqualFold(ready.ChannelID, s.Ch.ID.String()), "close-ready for channel "+s.Ch.ID.String(), "channelId %q", ready.ChannelID)
		closeVoucher := s.Voucher(spent)
		closeVoucher.Action = "close"
		s.SendPayload(closeVoucher)
		e, _ = s.Expect(c.r.t.Reply, []Outcome{ReceiptFrame}, []Outcome{DataFrame, ErrorFrame, Closed})
		var final mpp.SessionReceipt
		_ = json.Unmarshal(e.Frame.Receipt, &final)
		c.Check(final.TxHash != "", "a settlement receipt with a txHash", "%s", e.Frame.Receipt)
		// The target confirmed the close: the channel is spent for good.
		s.acct.closed = true
		c.Check(final.Spent == spent.String(), "settlement spent "+spent.String(), "spent %q", final.Spent)
		c.Check(final.AcceptedCumulative == spent.String(), "settlement acceptedCumulative "+spent.String()+": the close amount, which the mppx client checks", "acceptedCumulative %q", final.AcceptedCumulative)
		e, _ = s.Expect(c.r.t.Reply, []Outcome{Closed}, []Outcome{DataFrame})
		c.Check(e.Code == websocket.StatusNormalClosure, "close 1000 after the settlement receipt", "%s", e)
		c.Observe("closed at spent %s: txHash %s, then %s", spent, final.TxHash, e)
	})
}

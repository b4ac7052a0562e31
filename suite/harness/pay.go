package harness

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
)

// TestPayload is the charge payload the suite sends; the test method accepts
// any JSON object bound to a valid challenge.
var TestPayload = map[string]string{"proof": "mpp-conformance suite"}

// ValidPayload returns a payload that pays cn's challenge: the test payload
// for a charge, or a voucher one tick above everything the suite signed on
// the target's first channel for a session, with that session so the caller
// can drain it.
func (c *C) ValidPayload(cn *Conn) (any, *Session) {
	if cn.Target.Intent == "charge" {
		return TestPayload, nil
	}
	s := c.SessionOn(cn, c.Channel(cn.Target, AnyChannel))
	return s.Voucher(s.NextAmount()), s
}

// PayValid sends a valid credential on cn, echoing its challenge.
func (c *C) PayValid(cn *Conn) *Session {
	if cn.Target.Intent == "charge" {
		cn.SendCredential(cn.Authorization(cn.Echo(), TestPayload))
		return nil
	}
	s := c.SessionOn(cn, c.Channel(cn.Target, AnyChannel))
	s.pay(s.NextAmount())
	return s
}

// ExpectServed expects the paid flow to run: for a charge, every message
// and the receipt; for a session, messages until the needVoucher. It
// returns the number of messages.
func (c *C) ExpectServed(cn *Conn, s *Session) int {
	if s != nil {
		// What an earlier case left on the channel may outlast the stream:
		// served is served, whichever way the stream stops.
		n, nv, end, e := s.read(-1, -1)
		c.Check(end != endRefused, "message frames for a voucher one tick above everything the suite signed", "%s after %d messages", e, n)
		if end == endNeedVoucher {
			s.CheckNeedVoucher(nv, s.Acct.Signed)
		}
		if n == 0 && end == endNeedVoucher {
			// The tick went to another stream of the channel: one that
			// outlived an earlier case may take one unit before it notices
			// its socket is gone (ws-dialects.md §5 scenario 18). Once more.
			c.Observe("the first tick was spent off this connection; paid one more")
			s.PayUnits(1)
			n, _, end, e = s.read(-1, -1)
			c.Check(end != endRefused, "message frames for a voucher of one more tick", "%s after %d messages", e, n)
		}
		c.Check(n >= 1, "at least one message for a voucher of one tick", "%d messages", n)
		return n
	}
	// A charge streams its messages as the reply to the credential: the
	// first frame is due within the reply timeout plus the target's pace,
	// each next one within the reply timeout plus four times the pace, the
	// whole stream within the stream timeout.
	n := 0
	start := time.Now()
	stop, prev := start.Add(c.r.t.Stream), start
	for {
		paces := 1
		if n > 0 {
			paces = 4
		}
		deadline := c.r.due(prev, paces, stop)
		e, ok := cn.Next(time.Until(deadline))
		switch {
		case !ok && deadline.Before(stop):
			c.Failf([]string{fmt.Sprintf("message frames, then a receipt, with no pause over %s (the reply timeout plus %d times the target's pace)", deadline.Sub(prev).Round(time.Millisecond), paces)}, "silence for %s after %d messages", time.Since(prev).Round(time.Millisecond), n)
		case !ok:
			c.Failf([]string{"message frames, then a receipt within " + c.r.t.Stream.String()}, "%d messages, no receipt", n)
		case e.IsFrame(frame.KindMessage):
			now := time.Now()
			if n > 0 {
				c.r.served(now.Sub(prev))
			}
			prev = now
			n++
		case e.IsFrame(frame.KindReceipt):
			c.Check(n >= 1, "at least one message before the receipt", "receipt after %d messages", n)
			return n
		default:
			c.Failf([]string{"message frames, then a receipt"}, "%s after %d messages", e, n)
		}
	}
}

// decodeObject decodes raw JSON into a map of raw fields.
func decodeObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	err := json.Unmarshal(raw, &m)
	return m, err
}

// ChallengeOf returns the challenge a frame carries.
func ChallengeOf(f frame.Frame) (mpp.Challenge, error) {
	var ch mpp.Challenge
	err := json.Unmarshal(f.Challenge, &ch)
	return ch, err
}

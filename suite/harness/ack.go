package harness

import (
	"encoding/json"
	"math/big"
	"strings"

	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/suite/peer"
)

// AnyFrame is any event at all: for "the server says nothing".
var AnyFrame = Outcome{"any frame or close", func(peer.Event) bool { return true }}

// ExpectAck reads the payment-receipt that must acknowledge a voucher of
// amount, before any message, and checks its fields.
func (s *Session) ExpectAck(amount *big.Int) mpp.SessionReceipt {
	c := s.C
	e, _ := s.Expect(c.r.t.Reply, []Outcome{ReceiptFrame}, []Outcome{DataFrame, NeedVoucher, ErrorFrame, Closed})
	c.CheckFields("payment-receipt data", e.Frame.Receipt, map[string]string{
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

package wire

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/jcs"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/suite/harness"
)

// Cases are the wire compatibility cases, each with its catalogue entry.
func Cases() []harness.Case {
	return []harness.Case{wire001, wire002, wire003, wire004, wire005, wire006, wire007, wire008, wire009, wire010, wire011, wire012, wire013, wire014, wire015, wire016, wire017, wire018, wire019, wire020, wire021}
}

var wire001 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-001", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.A, Needs: harness.NeedsAny,
	Title:       "server speaks first with a challenge frame",
	Requirement: "After the upgrade the server sends a challenge frame unprompted, before any client frame.",
	Source:      "ws-dialects.md §1.2 step 2, §5 scenario 1"},
	Run: func(c *harness.C) {
		t := c.Target()
		cn := c.Dial(t)
		c.Observe("challenge arrived unprompted (%s/%s)", cn.Challenge.Method, cn.Challenge.Intent)
	}}

var wire002 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-002", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "challenge carries every required auth-param",
	Requirement: "A challenge has non-empty id, realm, method, intent, request and expires; id is 43 base64url characters; method matches ^[a-z]+$; the frame carries no error.",
	Source:      "protocol.md §1.1, §2"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		ch := cn.Challenge
		c.Check(ch.ID != "" && ch.Realm != "" && ch.Method != "" && ch.Intent != "" && ch.Request != "" && ch.Expires != "",
			"non-empty id, realm, method, intent, request, expires", "%+v", ch)
		c.Check(harness.IDPattern.MatchString(ch.ID), "id of 43 base64url characters (HMAC-SHA256, no padding)", "id %q", ch.ID)
		c.Check(harness.MethodPattern.MatchString(ch.Method), "method matching ^[a-z]+$", "method %q", ch.Method)
	}}

var wire003 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-003", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "challenge request is base64url of canonical JSON",
	Requirement: "request is base64url without padding of an RFC 8785 (JCS) JSON object, so a client that re-canonicalizes echoes the same string.",
	Source:      "protocol.md §1.3"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		var req any
		raw, err := harness.DecodeRequest(cn.Challenge.Request)
		c.Check(err == nil, "request decodes as base64url without padding", "%v", err)
		c.Check(json.Unmarshal(raw, &req) == nil, "request is JSON", "%s", raw)
		_, isObject := req.(map[string]any)
		c.Check(isObject, "request is a JSON object", "%s", raw)
		canon, err := jcs.Canonicalize(raw)
		c.Check(err == nil && string(canon) == string(raw), "request in JCS canonical form", "%s (canonical: %s)", raw, canon)
	}}

var wire004 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-004", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "challenge expires is RFC 3339 and in the future",
	Requirement: "expires parses as an RFC 3339 timestamp and lies in the future when the challenge arrives.",
	Source:      "protocol.md §1.1, §3.3"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		exp := cn.Challenge.Expires
		c.Check(harness.RFC3339Pattern.MatchString(exp), "expires in RFC 3339 form", "expires %q", exp)
		at, err := cn.Challenge.ExpiresAt()
		c.Check(err == nil, "expires parses as RFC 3339", "%v", err)
		c.Check(at.After(time.Now()), "expires in the future", "expires %s, now %s", exp, time.Now().UTC().Format(time.RFC3339Nano))
		c.Observe("challenge lifetime %s", time.Until(at).Round(time.Millisecond))
	}}

var wire005 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-005", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSecret,
	Title:       "challenge id is the HMAC of its parameters",
	Requirement: "id = base64url(HMAC-SHA256(secret, realm|method|intent|request|expires|digest|opaque)).",
	Source:      "protocol.md §2"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		want := mpp.ComputeID([]byte(c.Secret()), cn.Challenge)
		c.Check(cn.Challenge.ID == want, "id "+want+" (HMAC of the challenge's own parameters)", "id %s", cn.Challenge.ID)
	}}

var wire006 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-006", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "session request has the tempo session fields",
	Requirement: "A tempo/session request has a decimal-string amount, currency, recipient, and methodDetails with a numeric chainId and an escrowContract.",
	Source:      "protocol.md §6.2"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		raw, err := harness.DecodeRequest(cn.Challenge.Request)
		c.Check(err == nil, "request decodes", "%v", err)
		obj := c.CheckFields("request", raw, map[string]string{
			"amount": "decimal", "currency": "string", "recipient": "string", "methodDetails": "object",
			"unitType": "string?", "suggestedDeposit": "decimal?",
		})
		c.CheckFields("request.methodDetails", obj["methodDetails"], map[string]string{
			"chainId": "number", "escrowContract": "string", "minVoucherDelta": "decimal?",
			"sessionProtocol": "string?", "feePayer": "boolean?", "channelId": "string?",
		})
	}}

var wire007 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-007", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "message frames carry string data",
	Requirement: "Every application frame is {\"type\":\"message\",\"data\":<string>} (dialect B: {\"mpp\":\"message\",\"data\":<string>}).",
	Source:      "ws-dialects.md §1.1 (mpp-rs client declares data: String), §2.1"},
	Run: func(c *harness.C) {
		t := c.Target()
		cn := c.Dial(t)
		c.PayValid(cn)
		// A target verifies its first voucher of a signer slowly (key
		// recovery): the stream timeout bounds the wait, not one reply's.
		deadline := time.Now().Add(c.Timeouts.Stream)
		for n := 0; n < 1; {
			e, ok := cn.Next(time.Until(deadline))
			c.Check(ok, "a message frame after paying", "silence for %s", c.Timeouts.Stream)
			if e.IsFrame(frame.KindMessage) {
				// Extra fields are allowed: both SDK clients ignore them.
				c.CheckFields("message", e.Raw, map[string]string{cn.TagKey(): "string", "data": "string"})
				n++
			} else if !e.IsFrame(frame.KindChallenge) && !cn.IsAck(e) {
				c.Failf([]string{"a message frame"}, "%s", e)
			}
		}
	}}

var wire008 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-008", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.A, Needs: harness.NeedsSession,
	Title:       "needVoucher has the flat camelCase amount fields",
	Requirement: "needVoucher carries channelId, requiredCumulative, acceptedCumulative and deposit as flat fields, the amounts as decimal strings.",
	Source:      "ws-dialects.md §1.1; protocol.md §6.9"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		s.PayUnits(1)
		_, e := s.ReadUntilNeedVoucher()
		c.CheckFields("needVoucher", e.Raw, map[string]string{
			"type": "string", "channelId": "string", "requiredCumulative": "decimal",
			"acceptedCumulative": "decimal", "deposit": "decimal",
		})
		s.CheckNeedVoucher(e.Frame.NeedVoucher, s.Paid)
	}}

var wire009 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-009", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.A, Needs: harness.NeedsSession,
	Title:       "session receipt has the session receipt fields",
	Requirement: "The final receipt frame holds a session receipt: method tempo, intent session, status success, timestamp, reference, challengeId, channelId, decimal-string acceptedCumulative and spent, numeric units.",
	Source:      "ws-dialects.md §1.5; protocol.md §4.2"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		_, rc, _ := s.RunToReceipt(20)
		c.CheckFields("receipt", rc, map[string]string{
			"method": "string", "intent": "string", "status": "string", "timestamp": "string", "reference": "string",
			"challengeId": "string", "channelId": "string", "acceptedCumulative": "decimal", "spent": "decimal",
			"units": "number", "txHash": "string?",
		})
		var r mpp.SessionReceipt
		_ = json.Unmarshal(rc, &r)
		c.Check(r.Method == "tempo" && r.Intent == "session" && r.Status == "success", "method tempo, intent session, status success",
			"%s/%s/%s", r.Method, r.Intent, r.Status)
	}}

var wire010 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-010", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.A, Needs: harness.NeedsCharge,
	Title:       "charge receipt has the core receipt fields",
	Requirement: "After a paid charge the receipt frame holds status success, the challenge method, an RFC 3339 timestamp and a reference.",
	Source:      "protocol.md §4.1; ws-dialects.md §1.2 step 4"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		c.PayValid(cn)
		for {
			e, ok := cn.Next(c.Timeouts.Stream)
			c.Check(ok, "messages, then a receipt frame", "silence")
			if !e.IsFrame(frame.KindReceipt) {
				c.Check(e.IsFrame(frame.KindMessage), "message frames before the receipt", "%s", e)
				continue
			}
			obj := c.CheckFields("receipt", e.Frame.Receipt, map[string]string{
				"status": "string", "method": "string", "timestamp": "string", "reference": "string",
			})
			var r mpp.Receipt
			_ = json.Unmarshal(e.Frame.Receipt, &r)
			c.Check(r.Status == "success", "status success", "status %q", r.Status)
			c.Check(r.Method == cn.Challenge.Method, "method "+cn.Challenge.Method, "method %q", r.Method)
			c.Check(harness.RFC3339Pattern.MatchString(r.Timestamp), "RFC 3339 timestamp", "timestamp %q", r.Timestamp)
			c.Check(r.Reference != "", "a non-empty reference", "fields %s", harness.Keys(obj))
			return
		}
	}}

var wire011 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-011", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.A, Needs: harness.NeedsAny,
	Title:       "error frames carry a string error",
	Requirement: "A rejection frame is {\"type\":\"error\",\"error\":<string>} (or a challenge frame with a string error).",
	Source:      "ws-dialects.md §1.1"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		c.PayTampered(cn, harness.Forge)
		e := cn.ExpectRejected("forged credential")
		switch {
		case e.IsFrame(frame.KindError):
			c.CheckFields("error", e.Raw, map[string]string{"type": "string", "error": "string"})
		case e.IsFrame(frame.KindChallenge):
			c.CheckFields("challenge", e.Raw, map[string]string{"type": "string", "challenge": "object", "error": "string"})
		default:
			c.NotApplicable("the target closes instead of sending an error frame (%s)", e)
		}
	}}

var wire012 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-012", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "unknown fields in client frames and credentials are ignored",
	Requirement: "A credential frame and a credential JSON with extra unknown fields are accepted as if the fields were absent.",
	Source:      "ws-dialects.md §1 (serde ignores unknown fields); protocol.md §1.1"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		p, s := c.ValidPayload(cn)
		payload, _ := json.Marshal(p)
		var obj map[string]any
		_ = json.Unmarshal(payload, &obj)
		obj["x-conformance-extra"] = map[string]any{"ignored": true}
		cred := map[string]any{"challenge": cn.Echo(), "payload": obj, "x-extra": []int{1, 2}}
		if src := c.SourceOf(payload); src != "" {
			cred["source"] = src
		}
		raw, _ := json.Marshal(cred)
		auth := "Payment " + harness.EncodeToken(raw)
		f, _ := json.Marshal(map[string]any{cn.TagKey(): cn.CredentialTag(), cn.CredentialTag(): auth, "x-extra": "ignored"})
		cn.SendText(string(f))
		c.ExpectServed(cn, s)
	}}

var wire013 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-013", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "client message frames are ignored",
	Requirement: "Application frames from the client neither break the payment flow nor get a payment reaction.",
	Source:      "ws-dialects.md §1.3, §2.3, §4.1"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		cn.SendText(cn.Frame(`{"$tag":"message","data":{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}}`))
		cn.SendText(cn.Frame(`{"$tag":"message","data":"hello"}`))
		cn.SendText(`raw application text, as the mppx client sends it`)
		cn.Quiet(c.Timeouts.Quiet, append([]harness.Outcome{harness.Closed}, harness.Paid...))
		s := c.PayValid(cn)
		// A short stream may be over before this arrives; only the paid
		// flow matters, so a failed write is not a failure.
		_ = cn.Peer.SendText(c.Ctx, []byte(cn.Frame(`{"$tag":"message","data":"during the stream"}`)))
		c.ExpectServed(cn, s)
	}}

var wire014 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-014", Area: harness.AreaWire, Level: harness.SHOULD, Dialects: harness.A, Needs: harness.NeedsAny,
	Title:       "each connection gets its own challenge",
	Requirement: "Two connections receive challenges with different ids, so a credential can be bound to the connection it was issued on.",
	Source:      "suite requirement for connection binding (issue: challenge-ID replay rejection)"},
	Run: func(c *harness.C) {
		t := c.Target()
		a, b := c.Dial(t), c.Dial(t)
		c.Check(a.Challenge.ID != b.Challenge.ID, "different challenge ids on two connections", "both got %s", a.Challenge.ID)
	}}

var wire015 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-015", Area: harness.AreaWire, Level: harness.INFO, Dialects: harness.A, Needs: harness.NeedsAny,
	Title:       "how the server ends a paid stream",
	Requirement: "Records whether the server closes after the receipt, with which code, or leaves the socket open.",
	Source:      "ws-dialects.md §1.5 (socket left open), §6 A4"},
	Run: func(c *harness.C) {
		t := c.TargetFor(harness.NeedsCharge)
		cn := c.Dial(t)
		c.PayValid(cn)
		c.ExpectServed(cn, nil)
		e, ok := cn.Next(c.Timeouts.Reply)
		switch {
		case !ok:
			c.Observe("socket left open after the receipt (%s)", c.Timeouts.Reply)
		case e.Closed:
			c.Observe("server closed after the receipt: %s", e)
		default:
			c.Observe("after the receipt: %s", e)
		}
	}}

var wire016 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-016", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsSession,
	Title:       "session receipt timestamp and reference",
	Requirement: "The session receipt timestamp is RFC 3339 and reference equals channelId.",
	Source:      "protocol.md §4.2"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		r, _, _ := s.RunToReceipt(20)
		c.Check(harness.RFC3339Pattern.MatchString(r.Timestamp), "RFC 3339 timestamp", "timestamp %q", r.Timestamp)
		c.Check(strings.EqualFold(r.Reference, r.ChannelID) && r.ChannelID != "", "reference equal to channelId", "reference %q, channelId %q", r.Reference, r.ChannelID)
	}}

var wire017 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-017", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.B, Needs: harness.NeedsAny,
	Title:       "the HTTP probe answers 402 with a session challenge",
	Requirement: "GET and HEAD of the WebSocket URL's HTTP twin answer exactly 402 with WWW-Authenticate: Payment, method tempo, intent session, an expires, and Cache-Control: no-store.",
	Source:      "ws-dialects.md §2.2 step 1, §5 scenario 3; protocol.md §1.5"},
	Run: func(c *harness.C) {
		t := c.Target()
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req, err := http.NewRequestWithContext(c.Ctx, method, harness.HTTPURL(t.URL), nil)
			c.Check(err == nil, "a probe request", "%v", err)
			resp, err := c.HTTPClient().Do(req)
			c.Check(err == nil, method+" of "+harness.HTTPURL(t.URL)+" answered", "%v", err)
			resp.Body.Close()
			c.T.Note("%s %s: HTTP %d, WWW-Authenticate: %s, Cache-Control: %s", method, harness.HTTPURL(t.URL), resp.StatusCode,
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
	}}

var wire018 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-018", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.B, Needs: harness.NeedsAny,
	Title:       "silent until the client authorizes",
	Requirement: "After the upgrade the server sends no frame until the client's first authorization.",
	Source:      "ws-dialects.md §2.2 step 3, §5 scenario 2"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		cn.Quiet(2*c.Timeouts.Quiet, []harness.Outcome{harness.AnyFrame})
		c.Observe("no frame and no close within %s of the upgrade", 2*c.Timeouts.Quiet)
	}}

var wire019 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-019", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.B, Needs: harness.NeedsSession,
	Title:       "payment-receipt comes strictly before the first message",
	Requirement: "An accepted voucher is acknowledged by payment-receipt with challengeId (the credential's), channelId, acceptedCumulative (the voucher), decimal spent and numeric units, and the first message follows it.",
	Source:      "ws-dialects.md §2.2 step 5, §2.1 SessionReceipt"},
	Run: func(c *harness.C) {
		s := c.Connect(c.Channel(c.TargetFor(harness.NeedsSession), harness.AnyChannel))
		amount := s.NextAmount()
		s.Send(s.Voucher(amount))
		s.Paid = amount
		r := s.ExpectAck(amount)
		c.Check(r.Units != nil, "numeric units", "no units")
		n, nv := s.ReadUntilNeedVoucher()
		s.CheckNeedVoucher(nv.Frame.NeedVoucher, s.Paid)
		c.Observe("payment-receipt first (spent %s), then %d messages", r.Spent, n)
	}}

var wire020 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-020", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.B, Needs: harness.NeedsAny,
	Title:       "payment-error carries a numeric status and a message",
	Requirement: "A rejection frame is {\"mpp\":\"payment-error\",\"status\":<number>,\"message\":<string>} with a 4xx status.",
	Source:      "ws-dialects.md §2.1 (parseMessage checks both types)"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		c.PayTampered(cn, harness.Forge)
		e, _ := cn.Expect(c.Timeouts.Reply, []harness.Outcome{harness.ErrorFrame}, harness.Paid)
		c.CheckFields("payment-error", e.Raw, map[string]string{"mpp": "string", "status": "number", "message": "string"})
		c.Check(e.Frame.Status >= 400 && e.Frame.Status < 500, "a 4xx status", "status %d", e.Frame.Status)
		c.Observe("payment-error %d: %s", e.Frame.Status, harness.ClipNote(e.Frame.Error))
	}}

var wire021 = harness.Case{Meta: harness.Meta{ID: "WS-WIRE-021", Area: harness.AreaWire, Level: harness.MUST, Dialects: harness.B, Needs: harness.NeedsSession,
	Title:       "payment-need-voucher nests the amounts under data",
	Requirement: "payment-need-voucher carries data {channelId, requiredCumulative, acceptedCumulative, deposit}, the amounts as decimal strings.",
	Source:      "ws-dialects.md §2.1 (isNeedVoucherEvent); protocol.md §6.9"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		s.PayUnits(1)
		_, e := s.ReadUntilNeedVoucher()
		obj := c.CheckFields("payment-need-voucher", e.Raw, map[string]string{"mpp": "string", "data": "object"})
		c.CheckFields("payment-need-voucher data", obj["data"], map[string]string{
			"channelId": "string", "requiredCumulative": "decimal", "acceptedCumulative": "decimal", "deposit": "decimal",
		})
		s.CheckNeedVoucher(e.Frame.NeedVoucher, s.Paid)
	}}

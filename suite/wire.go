package suite

import (
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/jcs"
	"github.com/mppws/conformance/reference/mpp"
)

var (
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	methodPattern  = regexp.MustCompile(`^[a-z]+$`)
	decimalPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
	rfc3339Pattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
)

// checkFields checks the exact field names and JSON types of a frame object.
func (c *C) checkFields(what string, raw json.RawMessage, want map[string]string) map[string]json.RawMessage {
	obj, err := decodeObject(raw)
	c.Check(err == nil && obj != nil, what+" is a JSON object", "%s: %v", raw, err)
	for name, typ := range want {
		v, ok := obj[name]
		optional := strings.HasSuffix(typ, "?")
		typ = strings.TrimSuffix(typ, "?")
		if !ok {
			c.Check(optional, what+" has field "+name, "%s lacks %q; fields: %s", what, name, keys(obj))
			continue
		}
		// A decimal is a JSON string holding digits: its type is checked
		// as a string, its form on top where a source requires it.
		want := typ
		if typ == "decimal" {
			want = "string"
		}
		got := jsonType(v)
		c.Check(got == want, what+"."+name+" is a JSON "+want, "%s.%s is %s: %s", what, name, got, v)
		if typ == "decimal" {
			var s string
			_ = json.Unmarshal(v, &s)
			c.Check(decimalPattern.MatchString(s), what+"."+name+" is a decimal string", "%s.%s = %s", what, name, v)
		}
	}
	return obj
}

// jsonType names a raw value's JSON type.
func jsonType(v json.RawMessage) string {
	s := strings.TrimSpace(string(v))
	switch {
	case s == "":
		return "nothing"
	case s[0] == '"':
		return "string"
	case s[0] == '{':
		return "object"
	case s[0] == '[':
		return "array"
	case s == "true" || s == "false":
		return "boolean"
	case s == "null":
		return "null"
	}
	return "number"
}

func keys(m map[string]json.RawMessage) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return strings.Join(out, ", ")
}

// wireCases declares the wire compatibility cases.
func wireCases(g *registry) {
	g.Case("WS-WIRE-001", func(c *C) {
		t := c.Target()
		cn := c.Dial(t)
		c.Observe("challenge arrived unprompted (%s/%s)", cn.Challenge.Method, cn.Challenge.Intent)
	})

	g.Case("WS-WIRE-002", func(c *C) {
		cn := c.Dial(c.Target())
		ch := cn.Challenge
		c.Check(ch.ID != "" && ch.Realm != "" && ch.Method != "" && ch.Intent != "" && ch.Request != "" && ch.Expires != "",
			"non-empty id, realm, method, intent, request, expires", "%+v", ch)
		c.Check(idPattern.MatchString(ch.ID), "id of 43 base64url characters (HMAC-SHA256, no padding)", "id %q", ch.ID)
		c.Check(methodPattern.MatchString(ch.Method), "method matching ^[a-z]+$", "method %q", ch.Method)
	})

	g.Case("WS-WIRE-003", func(c *C) {
		cn := c.Dial(c.Target())
		var req any
		raw, err := decodeRequest(cn.Challenge.Request)
		c.Check(err == nil, "request decodes as base64url without padding", "%v", err)
		c.Check(json.Unmarshal(raw, &req) == nil, "request is JSON", "%s", raw)
		_, isObject := req.(map[string]any)
		c.Check(isObject, "request is a JSON object", "%s", raw)
		canon, err := jcs.Canonicalize(raw)
		c.Check(err == nil && string(canon) == string(raw), "request in JCS canonical form", "%s (canonical: %s)", raw, canon)
	})

	g.Case("WS-WIRE-004", func(c *C) {
		cn := c.Dial(c.Target())
		exp := cn.Challenge.Expires
		c.Check(rfc3339Pattern.MatchString(exp), "expires in RFC 3339 form", "expires %q", exp)
		at, err := cn.Challenge.ExpiresAt()
		c.Check(err == nil, "expires parses as RFC 3339", "%v", err)
		c.Check(at.After(time.Now()), "expires in the future", "expires %s, now %s", exp, time.Now().UTC().Format(time.RFC3339Nano))
		c.Observe("challenge lifetime %s", time.Until(at).Round(time.Millisecond))
	})

	g.Case("WS-WIRE-005", func(c *C) {
		cn := c.Dial(c.Target())
		want := mpp.ComputeID([]byte(c.r.cfg.Secret), cn.Challenge)
		c.Check(cn.Challenge.ID == want, "id "+want+" (HMAC of the challenge's own parameters)", "id %s", cn.Challenge.ID)
	})

	g.Case("WS-WIRE-006", func(c *C) {
		cn := c.Dial(c.Target())
		raw, err := decodeRequest(cn.Challenge.Request)
		c.Check(err == nil, "request decodes", "%v", err)
		obj := c.checkFields("request", raw, map[string]string{
			"amount": "decimal", "currency": "string", "recipient": "string", "methodDetails": "object",
			"unitType": "string?", "suggestedDeposit": "decimal?",
		})
		c.checkFields("request.methodDetails", obj["methodDetails"], map[string]string{
			"chainId": "number", "escrowContract": "string", "minVoucherDelta": "decimal?",
			"sessionProtocol": "string?", "feePayer": "boolean?", "channelId": "string?",
		})
	})

	g.Case("WS-WIRE-007", func(c *C) {
		t := c.Target()
		cn := c.Dial(t)
		c.PayValid(cn)
		n := 0
		for n < 1 {
			e, ok := cn.Next(c.r.t.Reply)
			c.Check(ok, "a message frame after paying", "silence")
			if e.IsFrame(frame.KindMessage) {
				// Extra fields are allowed: both SDK clients ignore them.
				c.checkFields("message", e.Raw, map[string]string{cn.TagKey(): "string", "data": "string"})
				n++
			} else if !e.IsFrame(frame.KindChallenge) && !cn.isAck(e) {
				c.Failf([]string{"a message frame"}, "%s", e)
			}
		}
	})

	g.Case("WS-WIRE-008", func(c *C) {
		s := c.OpenSession(AnyChannel)
		s.PayUnits(1)
		for {
			e, ok := s.Next(c.r.t.Reply)
			c.Check(ok, "a message and then a needVoucher frame", "silence")
			if e.IsFrame(frame.KindMessage) || e.IsFrame(frame.KindChallenge) {
				continue
			}
			c.Check(e.IsFrame(frame.KindNeedVoucher), "a needVoucher frame", "%s", e)
			c.checkFields("needVoucher", e.Raw, map[string]string{
				"type": "string", "channelId": "string", "requiredCumulative": "decimal",
				"acceptedCumulative": "decimal", "deposit": "decimal",
			})
			s.checkNeedVoucher(e.Frame.NeedVoucher, s.acct.signed)
			return
		}
	})

	g.Case("WS-WIRE-009", func(c *C) {
		s := c.OpenSession(AnyChannel)
		_, rc, _ := s.RunToReceipt(20)
		c.checkFields("receipt", rc, map[string]string{
			"method": "string", "intent": "string", "status": "string", "timestamp": "string", "reference": "string",
			"challengeId": "string", "channelId": "string", "acceptedCumulative": "decimal", "spent": "decimal",
			"units": "number", "txHash": "string?",
		})
		var r mpp.SessionReceipt
		_ = json.Unmarshal(rc, &r)
		c.Check(r.Method == "tempo" && r.Intent == "session" && r.Status == "success", "method tempo, intent session, status success",
			"%s/%s/%s", r.Method, r.Intent, r.Status)
	})

	g.Case("WS-WIRE-010", func(c *C) {
		cn := c.Dial(c.Target())
		c.PayValid(cn)
		for {
			e, ok := cn.Next(c.r.t.Stream)
			c.Check(ok, "messages, then a receipt frame", "silence")
			if !e.IsFrame(frame.KindReceipt) {
				c.Check(e.IsFrame(frame.KindMessage), "message frames before the receipt", "%s", e)
				continue
			}
			obj := c.checkFields("receipt", e.Frame.Receipt, map[string]string{
				"status": "string", "method": "string", "timestamp": "string", "reference": "string",
			})
			var r mpp.Receipt
			_ = json.Unmarshal(e.Frame.Receipt, &r)
			c.Check(r.Status == "success", "status success", "status %q", r.Status)
			c.Check(r.Method == cn.Challenge.Method, "method "+cn.Challenge.Method, "method %q", r.Method)
			c.Check(rfc3339Pattern.MatchString(r.Timestamp), "RFC 3339 timestamp", "timestamp %q", r.Timestamp)
			c.Check(r.Reference != "", "a non-empty reference", "fields %s", keys(obj))
			return
		}
	})

	g.Case("WS-WIRE-011", func(c *C) {
		cn := c.Dial(c.Target())
		c.payTampered(cn, forge)
		e := cn.ExpectRejected("forged credential")
		switch {
		case e.IsFrame(frame.KindError):
			c.checkFields("error", e.Raw, map[string]string{"type": "string", "error": "string"})
		case e.IsFrame(frame.KindChallenge):
			c.checkFields("challenge", e.Raw, map[string]string{"type": "string", "challenge": "object", "error": "string"})
		default:
			c.NotApplicable("the target closes instead of sending an error frame (%s)", e)
		}
	})

	g.Case("WS-WIRE-012", func(c *C) {
		cn := c.Dial(c.Target())
		p, s := c.ValidPayload(cn)
		payload, _ := json.Marshal(p)
		var obj map[string]any
		_ = json.Unmarshal(payload, &obj)
		obj["x-conformance-extra"] = map[string]any{"ignored": true}
		cred := map[string]any{"challenge": cn.Challenge, "payload": obj, "x-extra": []int{1, 2}}
		if src := c.r.sourceOf(payload); src != "" {
			cred["source"] = src
		}
		raw, _ := json.Marshal(cred)
		auth := "Payment " + encodeToken(raw)
		f, _ := json.Marshal(map[string]any{cn.TagKey(): cn.CredentialTag(), cn.CredentialTag(): auth, "x-extra": "ignored"})
		cn.SendText(string(f))
		c.ExpectServed(cn, s)
	})

	g.Case("WS-WIRE-013", func(c *C) {
		cn := c.Dial(c.Target())
		cn.SendText(cn.Frame(`{"$tag":"message","data":{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}}`))
		cn.SendText(cn.Frame(`{"$tag":"message","data":"hello"}`))
		cn.SendText(`raw application text, as the mppx client sends it`)
		cn.Quiet(c.r.t.Quiet, append([]Outcome{Closed}, Paid...))
		s := c.PayValid(cn)
		// A short stream may be over before this arrives; only the paid
		// flow matters, so a failed write is not a failure.
		_ = cn.Peer.SendText(c.ctx, []byte(cn.Frame(`{"$tag":"message","data":"during the stream"}`)))
		c.ExpectServed(cn, s)
	})

	g.Case("WS-WIRE-014", func(c *C) {
		t := c.Target()
		a, b := c.Dial(t), c.Dial(t)
		c.Check(a.Challenge.ID != b.Challenge.ID, "different challenge ids on two connections", "both got %s", a.Challenge.ID)
	})

	g.Case("WS-WIRE-015", func(c *C) {
		t := c.TargetFor(NeedsCharge)
		cn := c.Dial(t)
		c.PayValid(cn)
		c.ExpectServed(cn, nil)
		e, ok := cn.Next(c.r.t.Reply)
		switch {
		case !ok:
			c.Observe("socket left open after the receipt (%s)", c.r.t.Reply)
		case e.Closed:
			c.Observe("server closed after the receipt: %s", e)
		default:
			c.Observe("after the receipt: %s", e)
		}
	})

	g.Case("WS-WIRE-016", func(c *C) {
		s := c.OpenSession(AnyChannel)
		r, _, _ := s.RunToReceipt(20)
		c.Check(rfc3339Pattern.MatchString(r.Timestamp), "RFC 3339 timestamp", "timestamp %q", r.Timestamp)
		c.Check(strings.EqualFold(r.Reference, r.ChannelID) && r.ChannelID != "", "reference equal to channelId", "reference %q, channelId %q", r.Reference, r.ChannelID)
	})
}

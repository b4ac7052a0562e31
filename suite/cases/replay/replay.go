package replay

import (
	"encoding/json"
	"math/big"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/suite/harness"
)

// sendTampered dials the target, changes the echoed challenge with tamper,
// pays with an otherwise valid payload and expects a rejection with no data.
func sendTampered(c *harness.C, what string, tamper func(*mpp.Challenge)) {
	cn := c.Dial(c.Target())
	c.PayTampered(cn, tamper)
	cn.ExpectRejected(what)
}

// sendRaw dials the target, sends auth as the credential and expects a
// rejection with no data.
func sendRaw(c *harness.C, what, auth string) {
	cn := c.Dial(c.Target())
	cn.SendCredential(auth)
	cn.ExpectRejected(what)
}

// otherMethod returns a valid method name that differs from m.
func otherMethod(m string) string {
	if m == "test" {
		return "tempo"
	}
	return "test"
}

// Cases are the challenge-ID replay rejection cases, each with its catalogue entry.
func Cases() []harness.Case {
	return []harness.Case{replay001, replay002, replay003, replay004, replay005, replay006, replay007, replay008, replay009, replay010, replay011, replay012, replay013, replay014, replay015, replay016, replay017, replay018, replay019, replay020}
}

var replay001 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-001", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "forged challenge id is rejected",
	Requirement: "A credential whose challenge id does not verify by HMAC is rejected, with no application data or receipt.",
	Source:      "protocol.md §2, §3.3; ws-dialects.md §5 scenario 5"},
	Run: func(c *harness.C) {
		sendTampered(c, "forged id", harness.Forge)
	}}

var replay002 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-002", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "tampered request is rejected",
	Requirement: "A credential echoing the issued id with a different request (a lower amount) is rejected, with no application data.",
	Source:      "protocol.md §7 challenge binding"},
	Run: func(c *harness.C) {
		sendTampered(c, "request with amount 1", func(e *mpp.Challenge) {
			var req map[string]any
			if err := mpp.DecodeJSON(e.Request, &req); err != nil {
				c.Failf([]string{"a request the suite can decode"}, "%v", err)
			}
			req["amount"] = "1"
			s, err := mpp.EncodeJSON(req)
			if err != nil {
				c.Failf([]string{"a request the suite can encode"}, "%v", err)
			}
			c.Check(s != e.Request, "a request that differs from the issued one", "the issued amount is already 1")
			e.Request = s
		})
	}}

var replay003 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-003", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "tampered realm is rejected",
	Requirement: "A credential echoing the issued id with another realm is rejected, with no application data.",
	Source:      "protocol.md §2.2, §7"},
	Run: func(c *harness.C) {
		sendTampered(c, "another realm", func(e *mpp.Challenge) { e.Realm = "attacker." + e.Realm })
	}}

var replay004 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-004", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "tampered method is rejected",
	Requirement: "A credential echoing the issued id with another method is rejected, with no application data.",
	Source:      "protocol.md §7"},
	Run: func(c *harness.C) {
		sendTampered(c, "another method", func(e *mpp.Challenge) { e.Method = otherMethod(e.Method) })
	}}

var replay005 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-005", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "tampered intent is rejected",
	Requirement: "A credential echoing the issued id with another intent is rejected, with no application data.",
	Source:      "protocol.md §7"},
	Run: func(c *harness.C) {
		sendTampered(c, "another intent", func(e *mpp.Challenge) {
			if e.Intent == "charge" {
				e.Intent = "session"
			} else {
				e.Intent = "charge"
			}
		})
	}}

var replay006 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-006", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "extended expires is rejected",
	Requirement: "A credential echoing the issued id with a later expires is rejected, with no application data.",
	Source:      "protocol.md §7"},
	Run: func(c *harness.C) {
		sendTampered(c, "expires one hour later", func(e *mpp.Challenge) {
			at, err := e.ExpiresAt()
			c.Check(err == nil, "an issued expires the suite can parse", "%v", err)
			e.Expires = mpp.FormatExpires(at.Add(time.Hour))
		})
	}}

var replay007 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-007", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.A, Needs: harness.NeedsAny,
	Title:       "challenge issued on another connection is rejected",
	Requirement: "A credential for a challenge issued on another, still open connection is rejected, with no application data (charge and session targets alike).",
	Source:      "suite requirement: a credential pays for the connection it was issued on"},
	Run: func(c *harness.C) {
		t := c.Target()
		issuer := c.Dial(t)
		cn := c.Dial(t)
		// A valid payload: a voucher one tick over everything signed
		// on a session target, so only the binding can refuse it.
		p, _ := c.ValidPayload(cn)
		cn.SendCredential(cn.Authorization(issuer.Challenge, p))
		cn.ExpectRejected("challenge of another open connection")
		issuer.Quiet(c.Timeouts.Quiet, harness.Paid)
	}}

var replay008 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-008", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.A, Needs: harness.NeedsAny,
	Title:       "credential replayed on a new connection is rejected",
	Requirement: "A credential that already bought a stream, replayed on a new connection, is rejected with no application data or receipt (charge and session targets alike).",
	Source:      "protocol.md §3.3 (single use), §7 replay"},
	Run: func(c *harness.C) {
		t := c.Target()
		first := c.Dial(t)
		p, s := c.ValidPayload(first)
		auth := first.Authorization(first.Challenge, p)
		first.SendCredential(auth)
		c.ExpectServed(first, s)
		cn := c.Dial(t)
		cn.SendCredential(auth)
		cn.ExpectRejected("credential replayed on a new connection")
	}}

var replay009 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-009", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsShortTTL, Long: true,
	Title:       "expired challenge is rejected",
	Requirement: "A credential sent after its challenge's expires is rejected, with no application data.",
	Source:      "protocol.md §3.3, §7 expiry; ws-dialects.md §5 scenario 6a"},
	Run: func(c *harness.C) {
		t := c.Target()
		cn := c.Dial(t)
		at, err := cn.Challenge.ExpiresAt()
		c.Check(err == nil, "an expires the suite can parse", "%v", err)
		wait := time.Until(at) + 250*time.Millisecond
		c.Check(wait <= c.Timeouts.Expiry, "a challenge that expires within "+c.Timeouts.Expiry.String(), "it expires in %s", time.Until(at))
		cn.T.Note("waiting %s for the challenge to expire", wait.Round(time.Millisecond))
		time.Sleep(wait)
		p, _ := c.ValidPayload(cn)
		cn.SendCredential(cn.Authorization(cn.Challenge, p))
		cn.ExpectRejected("expired challenge")
	}}

var replay010 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-010", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "challenge made with another secret is rejected",
	Requirement: "A credential whose challenge copies the issued parameters but whose id is an HMAC under another secret is rejected.",
	Source:      "protocol.md §2"},
	Run: func(c *harness.C) {
		sendTampered(c, "id made with another secret", func(e *mpp.Challenge) {
			e.ID = mpp.ComputeID([]byte("not-the-target-secret"), *e)
		})
	}}

var replay011 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-011", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "credential without the Payment scheme is rejected",
	Requirement: "A credential string without the \"Payment \" prefix is rejected, with no application data.",
	Source:      "protocol.md §3.1; ws-dialects.md §5 scenario 13"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		p, _ := c.ValidPayload(cn)
		auth := cn.Authorization(cn.Echo(), p)
		cn.SendCredential(strings.TrimPrefix(auth, "Payment "))
		cn.ExpectRejected("credential without the Payment scheme")
	}}

var replay012 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-012", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "credential with bad base64url is rejected",
	Requirement: "A credential whose token is not base64url is rejected, with no application data.",
	Source:      "protocol.md §1.3, §3.1"},
	Run: func(c *harness.C) {
		sendRaw(c, "token that is not base64url", "Payment !!!not+base64/url!!!")
	}}

var replay013 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-013", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "credential with bad JSON is rejected",
	Requirement: "A credential whose token decodes to something other than a credential JSON object is rejected, with no application data.",
	Source:      "protocol.md §3.2"},
	Run: func(c *harness.C) {
		for _, body := range []string{`{"challenge":`, `[1,2,3]`, `"a string"`} {
			sendRaw(c, "token holding "+body, "Payment "+harness.EncodeToken([]byte(body)))
		}
	}}

var replay014 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-014", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "oversize credential is rejected",
	Requirement: "A credential token over 16 KiB is rejected (error or close), with no application data.",
	Source:      "protocol.md §3.1 (16 KiB caps); ws-dialects.md §5 scenario 17"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		payload := map[string]string{"proof": "x", "padding": strings.Repeat("A", 17<<10)}
		auth := cn.Authorization(cn.Echo(), payload)
		c.Check(len(auth) > 16<<10+len("Payment "), "a token over 16 KiB", "%d bytes", len(auth))
		cn.SendCredential(auth)
		cn.ExpectRejected("17 KiB credential")
	}}

var replay015 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-015", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "echo without expires is rejected",
	Requirement: "A credential whose echoed challenge lacks expires is rejected, with no application data.",
	Source:      "protocol.md §3.3 (expires required by every verifier)"},
	Run: func(c *harness.C) {
		sendTampered(c, "echo without expires", func(e *mpp.Challenge) { e.Expires = "" })
	}}

var replay016 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-016", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "tampered opaque is rejected",
	Requirement: "A credential echoing the issued id with a changed or dropped opaque is rejected, with no application data.",
	Source:      "protocol.md §2, §7 opaque pinning"},
	Run: func(c *harness.C) {
		sendTampered(c, "changed opaque", func(e *mpp.Challenge) {
			s, _ := mpp.EncodeJSON(map[string]string{"nonce": "replayed-by-the-suite"})
			e.Opaque = s
		})
	}}

var replay017 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-017", Area: harness.AreaReplay, Level: harness.SHOULD, Dialects: harness.A, Needs: harness.NeedsAny,
	Title:       "connection stays usable after a rejected credential",
	Requirement: "After a rejected credential the connection stays open and a valid credential is then accepted.",
	Source:      "ws-dialects.md §1.3 (client may retry)"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		p, s := c.ValidPayload(cn)
		bad := cn.Echo()
		bad.Realm = "attacker." + bad.Realm
		cn.SendCredential(cn.Authorization(bad, p))
		cn.ExpectRejected("tampered realm")
		cn.ExpectOpen("after a rejected credential")
		if s != nil {
			s.SendPayload(p)
		} else {
			cn.SendCredential(cn.Authorization(cn.Echo(), p))
		}
		c.ExpectServed(cn, s)
	}}

var replay018 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-018", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.AB, Needs: harness.NeedsAny,
	Title:       "credential payload that is not an object is rejected",
	Requirement: "A credential whose payload is not a JSON object is rejected, with no application data.",
	Source:      "protocol.md §3.2 (payload: object, required)"},
	Run: func(c *harness.C) {
		for _, payload := range []string{`"proof"`, `[1,2]`, `null`, `42`} {
			cn := c.Dial(c.Target())
			cred := map[string]json.RawMessage{"payload": json.RawMessage(payload)}
			cred["challenge"], _ = json.Marshal(cn.Echo())
			raw, _ := json.Marshal(cred)
			cn.SendCredential("Payment " + harness.EncodeToken(raw))
			cn.ExpectRejected("payload " + payload)
		}
	}}

var replay019 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-019", Area: harness.AreaReplay, Level: harness.MUST, Dialects: harness.B, Needs: harness.NeedsAny,
	Title:       "a rejection closes the socket with 1008",
	Requirement: "A rejected authorization gets payment-error, then a close frame with code 1008 and a reason of at most 123 bytes (RFC 6455 §5.5), so neither side is left with an open socket nobody serves.",
	Source:      "ws-dialects.md §2.3 step 5, §2.7, §6 B1 (mppx's reason overflows and the socket stays open)"},
	Run: func(c *harness.C) {
		cn := c.Dial(c.Target())
		c.PayTampered(cn, harness.Forge)
		cn.Expect(c.Timeouts.Reply, []harness.Outcome{harness.ErrorFrame}, harness.Paid)
		e, ok := cn.Next(c.Timeouts.Reply)
		switch {
		case !ok:
			c.Failf([]string{"close 1008 after payment-error"}, "no close within %s: the socket is left open and nobody serves it (mppx bug B1)", c.Timeouts.Reply)
		case !e.Closed:
			c.Failf([]string{"close 1008 after payment-error"}, "%s", e)
		}
		c.Check(e.Code == websocket.StatusPolicyViolation, "close code 1008", "%s", e)
		c.Check(len(e.Reason) <= 123, "a close reason of at most 123 bytes", "%d bytes", len(e.Reason))
		c.Observe("closed %d %q", e.Code, e.Reason)
	}}

var replay020 = harness.Case{Meta: harness.Meta{ID: "WS-REPLAY-020", Area: harness.AreaReplay, Level: harness.SHOULD, Dialects: harness.B, Needs: harness.NeedsSession,
	Title:       "an accepted voucher replayed on a new connection is an idempotent retry",
	Requirement: "The last accepted voucher sent again on a new connection gets a payment-receipt with acceptedCumulative unchanged and buys nothing new.",
	Source:      "protocol.md §6.6 (amount == H: idempotent); ws-dialects.md §5 scenario 6c"},
	Run: func(c *harness.C) {
		s := c.OpenSession(harness.AnyChannel)
		accepted := new(big.Int).Set(s.Acct.Accepted)
		s.Close()
		t := c.Connect(s.Ch)
		t.Send(t.Voucher(accepted))
		r := t.ExpectAck(accepted)
		c.Check(r.AcceptedCumulative == accepted.String(), "acceptedCumulative unchanged", "%s", r.AcceptedCumulative)
		t.ExpectNoUnits("the last accepted voucher again on a new connection")
	}}

package suite

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/mppws/conformance/reference/mpp"
)

// sendTampered dials the target, changes the echoed challenge with tamper,
// pays with an otherwise valid payload and expects a rejection with no data.
func (c *C) sendTampered(what string, tamper func(*mpp.Challenge)) {
	cn := c.Dial(c.Target())
	c.payTampered(cn, tamper)
	cn.ExpectRejected(what)
}

// payTampered sends on cn an otherwise valid credential whose echoed
// challenge tamper has changed.
func (c *C) payTampered(cn *Conn, tamper func(*mpp.Challenge)) {
	p, _ := c.ValidPayload(cn)
	echo := cn.Challenge
	tamper(&echo)
	cn.SendCredential(cn.Authorization(echo, p))
}

// forge replaces a challenge id with one no server issued.
func forge(e *mpp.Challenge) { e.ID = forgedID }

// sendRaw dials the target, sends auth as the credential and expects a
// rejection with no data.
func (c *C) sendRaw(what, auth string) {
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

// replayCases declares the challenge-id replay rejection cases.
func replayCases(g *registry) {
	g.Case("WS-REPLAY-001", func(c *C) {
		c.sendTampered("forged id", forge)
	})

	g.Case("WS-REPLAY-002", func(c *C) {
		c.sendTampered("request with amount 1", func(e *mpp.Challenge) {
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
	})

	g.Case("WS-REPLAY-003", func(c *C) {
		c.sendTampered("another realm", func(e *mpp.Challenge) { e.Realm = "attacker." + e.Realm })
	})

	g.Case("WS-REPLAY-004", func(c *C) {
		c.sendTampered("another method", func(e *mpp.Challenge) { e.Method = otherMethod(e.Method) })
	})

	g.Case("WS-REPLAY-005", func(c *C) {
		c.sendTampered("another intent", func(e *mpp.Challenge) {
			if e.Intent == "charge" {
				e.Intent = "session"
			} else {
				e.Intent = "charge"
			}
		})
	})

	g.Case("WS-REPLAY-006", func(c *C) {
		c.sendTampered("expires one hour later", func(e *mpp.Challenge) {
			at, err := e.ExpiresAt()
			c.Check(err == nil, "an issued expires the suite can parse", "%v", err)
			e.Expires = mpp.FormatExpires(at.Add(time.Hour))
		})
	})

	g.Case("WS-REPLAY-007", func(c *C) {
		t := c.Target()
		issuer := c.Dial(t)
		cn := c.Dial(t)
		cn.SendCredential(cn.Authorization(issuer.Challenge, TestPayload))
		cn.ExpectRejected("challenge of another open connection")
		issuer.Quiet(c.r.t.Quiet, Paid)
	})

	g.Case("WS-REPLAY-008", func(c *C) {
		t := c.Target()
		first := c.Dial(t)
		auth := first.Authorization(first.Challenge, TestPayload)
		first.SendCredential(auth)
		c.ExpectServed(first, nil)
		cn := c.Dial(t)
		cn.SendCredential(auth)
		cn.ExpectRejected("credential replayed on a new connection")
	})

	g.Case("WS-REPLAY-009", func(c *C) {
		t := c.Target()
		cn := c.Dial(t)
		at, err := cn.Challenge.ExpiresAt()
		c.Check(err == nil, "an expires the suite can parse", "%v", err)
		wait := time.Until(at) + 250*time.Millisecond
		c.Check(wait <= c.r.t.Expiry, "a challenge that expires within "+c.r.t.Expiry.String(), "it expires in %s", time.Until(at))
		cn.T.Note("waiting %s for the challenge to expire", wait.Round(time.Millisecond))
		time.Sleep(wait)
		p, _ := c.ValidPayload(cn)
		cn.SendCredential(cn.Authorization(cn.Challenge, p))
		cn.ExpectRejected("expired challenge")
	})

	g.Case("WS-REPLAY-010", func(c *C) {
		c.sendTampered("id made with another secret", func(e *mpp.Challenge) {
			e.ID = mpp.ComputeID([]byte("not-the-target-secret"), *e)
		})
	})

	g.Case("WS-REPLAY-011", func(c *C) {
		cn := c.Dial(c.Target())
		p, _ := c.ValidPayload(cn)
		auth := cn.Authorization(cn.Challenge, p)
		cn.SendCredential(strings.TrimPrefix(auth, "Payment "))
		cn.ExpectRejected("credential without the Payment scheme")
	})

	g.Case("WS-REPLAY-012", func(c *C) {
		c.sendRaw("token that is not base64url", "Payment !!!not+base64/url!!!")
	})

	g.Case("WS-REPLAY-013", func(c *C) {
		for _, body := range []string{`{"challenge":`, `[1,2,3]`, `"a string"`} {
			c.sendRaw("token holding "+body, "Payment "+encodeToken([]byte(body)))
		}
	})

	g.Case("WS-REPLAY-014", func(c *C) {
		cn := c.Dial(c.Target())
		payload := map[string]string{"proof": "x", "padding": strings.Repeat("A", 17<<10)}
		auth := cn.Authorization(cn.Challenge, payload)
		c.Check(len(auth) > 16<<10+len("Payment "), "a token over 16 KiB", "%d bytes", len(auth))
		cn.SendCredential(auth)
		cn.ExpectRejected("17 KiB credential")
	})

	g.Case("WS-REPLAY-015", func(c *C) {
		c.sendTampered("echo without expires", func(e *mpp.Challenge) { e.Expires = "" })
	})

	g.Case("WS-REPLAY-016", func(c *C) {
		c.sendTampered("changed opaque", func(e *mpp.Challenge) {
			s, _ := mpp.EncodeJSON(map[string]string{"nonce": "replayed-by-the-suite"})
			e.Opaque = s
		})
	})

	g.Case("WS-REPLAY-017", func(c *C) {
		cn := c.Dial(c.Target())
		p, s := c.ValidPayload(cn)
		bad := cn.Challenge
		bad.Realm = "attacker." + bad.Realm
		cn.SendCredential(cn.Authorization(bad, p))
		cn.ExpectRejected("tampered realm")
		cn.ExpectOpen("after a rejected credential")
		if s != nil {
			s.SendPayload(p)
		} else {
			cn.SendCredential(cn.Authorization(cn.Challenge, p))
		}
		c.ExpectServed(cn, s)
	})

	g.Case("WS-REPLAY-018", func(c *C) {
		for _, payload := range []string{`"proof"`, `[1,2]`, `null`, `42`} {
			cn := c.Dial(c.Target())
			cred := map[string]json.RawMessage{"payload": json.RawMessage(payload)}
			cred["challenge"], _ = json.Marshal(cn.Challenge)
			raw, _ := json.Marshal(cred)
			cn.SendCredential("Payment " + encodeToken(raw))
			cn.ExpectRejected("payload " + payload)
		}
	})
}

package harness

import "github.com/mppws/conformance/reference/mpp"

// PayTampered sends on cn an otherwise valid credential whose echoed
// challenge tamper has changed.
func (c *C) PayTampered(cn *Conn, tamper func(*mpp.Challenge)) {
	p, _ := c.ValidPayload(cn)
	echo := cn.Echo()
	tamper(&echo)
	cn.SendCredential(cn.Authorization(echo, p))
}

// Forge replaces a challenge id with one no server issued.
func Forge(e *mpp.Challenge) { e.ID = ForgedID }

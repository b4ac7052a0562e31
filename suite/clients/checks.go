package clients

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/mppws/conformance/reference/tempo"
)

// Check is one judgement of a case over its record: Want is the expected
// outcome a failure quotes, Eval lists what the client did instead.
type Check struct {
	Want string
	Eval func(j *judge) []string
}

// judge is what a check reads: the case, its record and the run's options.
type judge struct {
	c   *Case
	rec *Record
	o   *options
	// exec: the client was launched, so its exit is graded.
	exec bool
}

func (j *judge) tick() *big.Int { return j.c.offerOf(j.o).Tick }

func each(j *judge, keep func(*Cred) bool, bad func(*Cred) string) []string {
	var out []string
	for _, c := range j.rec.Creds() {
		if !keep(c) {
			continue
		}
		if s := bad(c); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func anyCred(*Cred) bool      { return true }
func signing(c *Cred) bool    { return c.Signs() }
func vouchers(c *Cred) bool   { return c.IsVoucher() }
func parsedCred(c *Cred) bool { return c.ParseErr == nil }

// The checks the cases share.
var (
	checkEcho = Check{"every credential echoes an issued challenge exactly (request string unchanged, every auth-param, opaque and digest kept) and its id verifies", func(j *judge) []string {
		return each(j, anyCred, func(c *Cred) string {
			switch {
			case c.ParseErr != nil:
				return fmt.Sprintf("%s", c)
			case c.EchoErr != nil:
				return fmt.Sprintf("%s: %v", c, c.EchoErr)
			}
			return ""
		})
	}}
	checkSigner = Check{"every voucher and close is signed by the channel's signer in the channel's EIP-712 domain", func(j *judge) []string {
		return each(j, signing, func(c *Cred) string {
			if c.SigErr != nil {
				return fmt.Sprintf("%s: %v", c, c.SigErr)
			}
			return ""
		})
	}}
	checkLowS = Check{"every signature is low-s (s ≤ N/2)", func(j *judge) []string {
		return each(j, signing, func(c *Cred) string {
			if c.HighS {
				return fmt.Sprintf("%s: high-s signature %s", c, c.Payload.Signature)
			}
			return ""
		})
	}}
	checkDescriptor = Check{"every v2 payload carries the channel's descriptor", func(j *judge) []string {
		return each(j, signing, func(c *Cred) string {
			if c.DescErr != nil {
				return fmt.Sprintf("%s: %v", c, c.DescErr)
			}
			return ""
		})
	}}
	checkSource = Check{"every session credential's source is did:pkh:eip155:<chainId>:<payer>", func(j *judge) []string {
		return each(j, signing, func(c *Cred) string {
			if c.SourceErr != nil {
				return fmt.Sprintf("%s: %v", c, c.SourceErr)
			}
			return ""
		})
	}}
	checkFrames = Check{"every client frame is a text frame its dialect defines", func(j *judge) []string {
		j.rec.mu.Lock()
		defer j.rec.mu.Unlock()
		return append([]string(nil), j.rec.broken...)
	}}
	checkPayloads = Check{"every credential is a session voucher or close on a fixture channel", func(j *judge) []string {
		return each(j, anyCred, func(c *Cred) string {
			if c.ParseErr != nil || c.PayloadErr != nil {
				return c.String()
			}
			if a := c.Payload.Action; a != "voucher" && a != "close" {
				return fmt.Sprintf("%s: action %q", c, a)
			}
			return ""
		})
	}}
	checkIncreasing = Check{"voucher amounts strictly increase on each channel", func(j *judge) []string {
		last := map[tempo.Hash]*big.Int{}
		conn := map[tempo.Hash]int{}
		return each(j, vouchers, func(c *Cred) string {
			id := c.Channel.ID
			prev, seen := last[id]
			newConn := conn[id] != c.Conn
			last[id], conn[id] = c.Amount, c.Conn
			switch {
			case !seen:
				return ""
			case j.o.b() && newConn && c.Amount.Cmp(prev) == 0:
				return "" // dialect B: an equal voucher reopening a channel is an idempotent retry
			case c.Amount.Cmp(prev) <= 0:
				return fmt.Sprintf("%s after a voucher of %s", c, prev)
			}
			return ""
		})
	}}
	checkDeposit = Check{"no voucher or close exceeds the channel's deposit", func(j *judge) []string {
		return each(j, signing, func(c *Cred) string {
			if c.Amount.Cmp(c.Channel.Deposit) > 0 {
				return fmt.Sprintf("%s above the deposit %s", c, c.Channel.Deposit)
			}
			return ""
		})
	}}
	checkCovers = Check{"a voucher sent after a need-voucher covers its requiredCumulative", func(j *judge) []string {
		return each(j, vouchers, func(c *Cred) string {
			if c.Required != nil && c.Amount.Cmp(c.Required) < 0 {
				return fmt.Sprintf("%s below requiredCumulative %s", c, c.Required)
			}
			return ""
		})
	}}
	checkFresh = Check{"no credential echoes a challenge that has expired", func(j *judge) []string {
		return each(j, parsedCred, func(c *Cred) string {
			if c.Expired {
				return fmt.Sprintf("%s echoes challenge %s, expired at %s", c, c.Parsed.Challenge.ID, c.Parsed.Challenge.Expires)
			}
			return ""
		})
	}}
	checkNewest = Check{"every credential echoes the newest challenge the server offered", func(j *judge) []string {
		return each(j, parsedCred, func(c *Cred) string {
			if c.Issued != nil && !c.Newest {
				return fmt.Sprintf("%s echoes challenge %s, not the newest", c, c.Issued.ID)
			}
			return ""
		})
	}}
	checkResume = Check{"the first voucher on a later connection is not below what was signed before (above it in dialect A, where an equal voucher adds nothing)", func(j *judge) []string {
		first := map[int]bool{}
		return each(j, vouchers, func(c *Cred) string {
			if first[c.Conn] {
				return ""
			}
			first[c.Conn] = true
			switch cmp := c.Amount.Cmp(c.Signed); {
			case c.Conn == 1:
			case cmp < 0, cmp == 0 && !j.o.b():
				return fmt.Sprintf("%s, but %s was signed before", c, c.Signed)
			}
			return ""
		})
	}}
	checkSettles = Check{"after payment-close-ready the client sends exactly one close credential, for exactly the units delivered", func(j *judge) []string {
		var out []string
		n := 0
		for _, c := range j.rec.Creds() {
			if !c.IsClose() {
				continue
			}
			n++
			if want := new(big.Int).Mul(j.tick(), new(big.Int).SetUint64(c.Delivered)); c.Amount.Cmp(want) != 0 {
				out = append(out, fmt.Sprintf("%s after %d units (%s)", c, c.Delivered, want))
			}
		}
		if n != 1 {
			out = append(out, fmt.Sprintf("%d close credentials", n))
		}
		return out
	}}
)

// checkWindow bounds every voucher by what was delivered: at most one unit
// plus the prepay window beyond it.
func checkWindow() Check {
	return Check{"no voucher signs for more than the units delivered, one more, and the prepay window (--max-prepay)", func(j *judge) []string {
		return each(j, vouchers, func(c *Cred) string {
			limit := new(big.Int).Mul(j.tick(), big.NewInt(int64(c.Delivered)+1+int64(j.o.window)))
			if c.Amount.Cmp(limit) > 0 {
				return fmt.Sprintf("%s with %d units delivered: above %s", c, c.Delivered, limit)
			}
			return ""
		})
	}}
}

// checkNoneAfter: the client signs nothing once the server did what mark
// names.
func checkNoneAfter(mark, what string) Check {
	return Check{"no voucher or close after " + what, func(j *judge) []string {
		at, ok := j.rec.mark(mark)
		if !ok {
			return []string{"the scripted server never got to " + what + " (the client ended first)"}
		}
		return each(j, signing, func(c *Cred) string {
			if c.At > at {
				return fmt.Sprintf("%s, after %s", c, what)
			}
			return ""
		})
	}}
}

// checkPaidOnceAfter: one shortage is paid once, however often it is
// asked for: every voucher after the mark carries one cumulative amount.
// Re-sending that same voucher adds no funds and costs nothing, so it is
// only observed.
func checkPaidOnceAfter(mark, what string) Check {
	return Check{"the shortage paid once: every voucher after " + what + " carries one cumulative amount", func(j *judge) []string {
		at, ok := j.rec.mark(mark)
		if !ok {
			return []string{"the scripted server never got to " + what}
		}
		var after []string
		amounts := map[string]bool{}
		for _, c := range j.rec.Creds() {
			if c.IsVoucher() && c.At > at {
				after = append(after, c.String())
				amounts[c.Amount.String()] = true
			}
		}
		switch {
		case len(after) == 0:
			return []string{"no voucher after " + what}
		case len(amounts) > 1:
			return []string{fmt.Sprintf("%d amounts signed after %s: %s", len(amounts), what, strings.Join(after, "; "))}
		case len(after) > 1:
			j.rec.Observe("the same voucher sent %d times for one shortage", len(after))
		}
		return nil
	}}
}

// checkNoCredential: the client pays nothing at all.
var checkNoCredential = Check{"no credential at all", func(j *judge) []string {
	return each(j, anyCred, func(c *Cred) string { return c.String() })
}}

// checkPaid: the client paid at least once (an honest flow that
// never paid proves nothing).
var checkPaid = Check{"at least one voucher", func(j *judge) []string {
	for _, c := range j.rec.Creds() {
		if c.IsVoucher() {
			return nil
		}
	}
	return []string{"no voucher"}
}}

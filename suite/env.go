package suite

import (
	"fmt"
	"time"
)

// env is the state of one run. Run sets it before the tree is built;
// specs read it when they run.
type env struct {
	cfg     Config
	t       Timeouts
	targets []*Target
	wallet  *wallet
	results []Result
	dialect string
}

var current = &env{t: baseTimeouts, wallet: newWallet()}

// payable reports whether the suite can pay t: a charge with the test
// method, or a session with a matching fixture channel.
func payable(t *Target) bool {
	return (t.Intent == "charge" && t.Method == "test") || (t.Intent == "session" && len(t.Channels) > 0)
}

// target picks the target that serves need, or says why none does.
func (e *env) target(need Needs) (*Target, string) {
	var charge, session *Target
	for _, t := range e.targets {
		if t.Intent == "charge" && t.Method == "test" && charge == nil {
			charge = t
		}
		if t.Intent == "session" && len(t.Channels) > 0 && session == nil {
			session = t
		}
	}
	switch need {
	case NeedsCharge:
		if charge == nil {
			return nil, "no target sells the charge intent with the test method (the suite cannot pay real charges)"
		}
		return charge, ""
	case NeedsSession:
		if session == nil {
			for _, t := range e.targets {
				if t.Intent == "session" {
					return nil, t.NoChannel
				}
			}
			return nil, "no target sells a tempo session"
		}
		return session, ""
	case NeedsShortTTL:
		for _, t := range []*Target{charge, session} {
			if t != nil && t.TTL <= e.t.Expiry {
				return t, ""
			}
		}
		for _, t := range e.targets {
			if payable(t) && t.TTL <= e.t.Expiry {
				return t, ""
			}
		}
		return nil, fmt.Sprintf("the targets' challenges live longer than %s; start a target with a short challenge TTL (e.g. 3s) to run this case", e.t.Expiry)
	case NeedsSecret:
		if e.cfg.Secret == "" {
			return nil, "the target's HMAC secret is unknown; pass --secret"
		}
	}
	if charge != nil {
		return charge, ""
	}
	if session != nil {
		return session, ""
	}
	return nil, "no target the suite can pay (a charge with the test method, or a session matching a fixture channel)"
}

// wait is how long a case may wait for a challenge to expire.
func (e *env) expiryWait(ttl time.Duration) time.Duration { return ttl + e.t.Reply/4 }

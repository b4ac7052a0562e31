package suite

import (
	"fmt"
	"sync"
)

// run is the state of one run: the configuration, the targets and the
// suite's memory of every channel. Every case reaches it through its *C;
// nothing of a run lives in package variables.
type run struct {
	cfg     Config
	t       Timeouts
	targets []*Target
	dialect string
	wallet  *wallet

	mu       sync.Mutex
	setupErr error // set by a case that found the target unusable (exit 3)
}

// abort records a setup error found while cases run: the target cannot be
// tested as it is (for example its channel state went backwards). The run
// stops starting cases and exits 3.
func (r *run) abort(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.setupErr == nil {
		r.setupErr = err
	}
}

func (r *run) aborted() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.setupErr
}

// payable reports whether the suite can pay t: a charge with the test
// method, or a session with a matching fixture channel.
func payable(t *Target) bool {
	return (t.Intent == "charge" && t.Method == "test") || (t.Intent == "session" && len(t.Channels) > 0)
}

// target picks the target that serves need, or says why none does.
func (r *run) target(need Needs) (*Target, string) {
	var charge, session *Target
	for _, t := range r.targets {
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
			return nil, "no target sells the charge intent with the test method (the suite cannot pay real charges); add a charge target URL"
		}
		return charge, ""
	case NeedsSession:
		if session == nil {
			for _, t := range r.targets {
				if t.Intent == "session" {
					return nil, t.NoChannel
				}
			}
			return nil, "no target sells a tempo session; add a session target URL"
		}
		return session, ""
	case NeedsShortTTL:
		for _, t := range []*Target{charge, session} {
			if t != nil && t.TTL <= r.t.Expiry {
				return t, ""
			}
		}
		for _, t := range r.targets {
			if payable(t) && t.TTL <= r.t.Expiry {
				return t, ""
			}
		}
		return nil, fmt.Sprintf("the targets' challenges live longer than %s; add a target URL whose challenges expire sooner (the reference: serve --challenge-ttl 3s)", r.t.Expiry)
	case NeedsSecret:
		if r.cfg.Secret == "" {
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

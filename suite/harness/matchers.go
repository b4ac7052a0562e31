package harness

import (
	"fmt"
	"strings"
	"time"

	"github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"github.com/mppws/conformance/suite/peer"
)

// Expect starts a Gomega assertion whose failure fails the case with the
// suite's anatomy: requirement, expected, actual and the transcript.
func (c *C) Expect(actual any, extra ...any) types.Assertion {
	return c.gomega().Expect(actual, extra...)
}

// Consistently starts a Gomega assertion that must hold for a whole window,
// polled: Consistently(cn, d).ShouldNot(Deliver(DataFrame)).
func (c *C) Consistently(actual any, intervals ...any) types.AsyncAssertion {
	return c.gomega().Consistently(actual, intervals...)
}

func (c *C) gomega() gomega.Gomega {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.g == nil {
		c.g = gomega.NewGomega(func(message string, _ ...int) { c.gomegaFailed(message) })
	}
	return c.g
}

// gomegaFailed turns a Gomega failure into the case's: the suite's matchers
// write "Expected:" and "Actual:" lines, others a message of their own.
func (c *C) gomegaFailed(message string) {
	var expected []string
	actual := strings.TrimSpace(message)
	for _, l := range strings.Split(message, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "Expected:"); ok {
			expected = strings.Split(strings.TrimSpace(v), " | ")
		}
		if v, ok := strings.CutPrefix(l, "Actual:"); ok {
			actual = strings.TrimSpace(v)
		}
	}
	if expected == nil {
		expected = []string{"the assertion to hold"}
	}
	c.Failf(expected, "%s", actual)
}

// Receive matches a *Conn that delivers an event of one of the wanted
// outcomes within the reply timeout (or Within), skipping other events. A
// forbidden event, the end of the connection or silence is a mismatch.
func Receive(want ...Outcome) *ReceiveMatcher { return &ReceiveMatcher{want: want} }

// ReceiveMatcher is Receive's matcher; after a match it holds the event.
type ReceiveMatcher struct {
	want, forbid []Outcome
	within       time.Duration
	event        peer.Event
	outcome      Outcome
	actual       string
}

// Within sets how long the event may take.
func (m *ReceiveMatcher) Within(d time.Duration) *ReceiveMatcher { m.within = d; return m }

// Forbidding fails the match at once on an event of these outcomes.
func (m *ReceiveMatcher) Forbidding(o ...Outcome) *ReceiveMatcher { m.forbid = o; return m }

// Event is the event that matched, and the outcome it matched.
func (m *ReceiveMatcher) Event() (peer.Event, Outcome) { return m.event, m.outcome }

// Match reads cn until an event decides.
func (m *ReceiveMatcher) Match(actual any) (bool, error) {
	cn, ok := actual.(*Conn)
	if !ok {
		return false, fmt.Errorf("Receive matches a *Conn, not %T", actual)
	}
	d := m.within
	if d == 0 {
		d = cn.C.r.t.Reply
	}
	deadline := time.Now().Add(d)
	for {
		e, ok := cn.Next(time.Until(deadline))
		switch o, bad := matches(e, m.forbid); {
		case !ok:
			m.actual = fmt.Sprintf("nothing within %s", d)
			return false, nil
		case bad:
			m.actual = fmt.Sprintf("%s (%s) at %+.3fs", e, o.Name, e.At.Seconds())
			return false, nil
		}
		if o, good := matches(e, m.want); good {
			m.event, m.outcome = e, o
			return true, nil
		}
		if e.Closed {
			m.actual = e.String()
			return false, nil
		}
	}
}

func (m *ReceiveMatcher) FailureMessage(any) string {
	return fmt.Sprintf("Expected:    %s\nActual:      %s", strings.Join(names(m.want), " | "), m.actual)
}

func (m *ReceiveMatcher) NegatedFailureMessage(any) string {
	return fmt.Sprintf("Expected:    no %s\nActual:      %s", strings.Join(names(m.want), " or "), m.event)
}

// Deliver matches a *Conn that has delivered an event of one of the given
// outcomes since the last poll. Consistently(cn, d).ShouldNot(Deliver(…))
// proves a window with none; the events that did arrive are kept (Seen).
func Deliver(forbid ...Outcome) *DeliverMatcher { return &DeliverMatcher{forbid: forbid} }

// DeliverMatcher is Deliver's matcher.
type DeliverMatcher struct {
	forbid []Outcome
	seen   []peer.Event
	bad    string
}

// Seen are the events read while matching, in order.
func (m *DeliverMatcher) Seen() []peer.Event { return m.seen }

// Match takes whatever cn has received so far, without waiting.
func (m *DeliverMatcher) Match(actual any) (bool, error) {
	cn, ok := actual.(*Conn)
	if !ok {
		return false, fmt.Errorf("Deliver matches a *Conn, not %T", actual)
	}
	for {
		e, ok := cn.Next(0)
		if !ok {
			return false, nil
		}
		m.seen = append(m.seen, e)
		if o, bad := matches(e, m.forbid); bad {
			m.bad = fmt.Sprintf("%s (%s) at %+.3fs", e, o.Name, e.At.Seconds())
			return true, nil
		}
	}
}

func (m *DeliverMatcher) FailureMessage(any) string {
	return fmt.Sprintf("Expected:    %s\nActual:      none", strings.Join(names(m.forbid), " | "))
}

func (m *DeliverMatcher) NegatedFailureMessage(any) string {
	return fmt.Sprintf("Expected:    no %s\nActual:      %s", strings.Join(names(m.forbid), " or "), m.bad)
}

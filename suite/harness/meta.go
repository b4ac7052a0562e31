package harness

import (
	"strings"

	"github.com/mppws/conformance/suite/report"
)

// Level is a case's requirement level, as reports name it.
type Level = report.Level

const (
	// MUST failures fail the run.
	MUST = report.MUST
	// SHOULD failures fail the run only with --strict; otherwise the case is
	// reported NON-STRICT.
	SHOULD = report.SHOULD
	// INFO cases never fail: they record what the target does where the
	// sources allow several behaviours.
	INFO = report.INFO
)

// Area groups cases; areas are selectable on the command line.
type Area = report.Area

const (
	AreaWire    Area = "wire"
	AreaReplay  Area = "replay"
	AreaVoucher Area = "voucher"
	AreaRobust  Area = "robust"
)

// Areas lists the areas in report order.
var Areas = []Area{AreaWire, AreaReplay, AreaVoucher, AreaRobust}

// Needs is what a case requires of the target; without it the case is NOT
// APPLICABLE, never failed.
type Needs int

const (
	NeedsAny      Needs = iota // any target
	NeedsCharge                // a target selling the charge intent
	NeedsSession               // a target selling a tempo session
	NeedsShortTTL              // a target whose challenges expire within the suite's patience
	NeedsSecret                // the target's HMAC secret (--secret)
)

// Schedule says when a case may run beside others.
type Schedule int

const (
	// Concurrent cases run side by side, each on its own connections and
	// its own leased channels.
	Concurrent Schedule = iota
	// Alone cases run with nothing else in flight: they load the target,
	// or measure how it treats one slow or silent peer.
	Alone
	// AfterHostile cases run after every Concurrent and Alone case: they
	// check that the target survived them.
	AfterHostile
	// Closing cases run last: they close a channel for good.
	Closing
)

// AllChannels in Meta.Channels leases every open fixture channel.
const AllChannels = -1

// Meta is a case's identity. IDs are stable: never renumbered, never reused.
type Meta struct {
	ID          string
	Title       string
	Level       Level
	Area        Area
	Dialects    []string // "A", "B"
	Source      string   // spec section or SDK behaviour
	Requirement string   // the sentence a failure quotes
	Needs       Needs
	Schedule    Schedule
	// Channels is how many fixture channels a session case holds at once
	// (default one; AllChannels for every one).
	Channels int
	// Long marks a body that sits out a fixed wait (a withheld voucher, a
	// challenge's expiry, a silent window): long cases start before the
	// other concurrent ones, so that the run does not end waiting on one.
	Long bool
}

// Labels are the Ginkgo labels of a case: its ID, level, area and dialects,
// lower-case words without the characters label filters reserve.
func (m Meta) Labels() []string {
	l := []string{m.ID, strings.ToLower(string(m.Level)), "area-" + string(m.Area)}
	for _, d := range m.Dialects {
		l = append(l, "dialect-"+strings.ToLower(d))
	}
	return l
}

// A, B and AB are the dialect lists of cases.
var (
	A  = []string{"A"}
	B  = []string{"B"}
	AB = []string{"A", "B"}
)

// appliesTo reports whether the case runs against a dialect.
func (m Meta) appliesTo(dialect string) bool {
	for _, d := range m.Dialects {
		if d == dialect {
			return true
		}
	}
	return false
}

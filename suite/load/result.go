package load

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Result is what a load run measured and found, for the JSON on stdout
// and for a report section.
type Result struct {
	Target   string `json:"target"`
	Dialect  string `json:"dialect"`
	Sessions int    `json:"sessions"`
	// Duration and Messages are each session's budget, as configured.
	Duration        string    `json:"duration,omitempty"`
	Messages        int       `json:"messagesPerSession,omitempty"`
	Started         time.Time `json:"started"`
	Elapsed         float64   `json:"elapsedSeconds"`
	Delivered       uint64    `json:"messages"`
	Throughput      float64   `json:"messagesPerSecond"`
	Connections     uint64    `json:"connections"`
	PeakConnections int64     `json:"peakConnections"`
	Vouchers        uint64    `json:"vouchers"`
	NeedVouchers    uint64    `json:"needVouchers"`
	// Resume is the pause from a need-voucher to the next message on the
	// same connection.
	Resume   Latency   `json:"needVoucherToResume"`
	Channels []Channel `json:"channels"`
	// Errors counts failures by kind (not violations); ErrorSamples has
	// the first message of each kind.
	Errors       map[string]uint64 `json:"errors"`
	ErrorSamples map[string]string `json:"errorSamples,omitempty"`
	// Limits counts the target's own limits hit: HTTP 429 and 503,
	// payment-error 429, close 1008 and 1013.
	Limits       map[string]uint64 `json:"limits"`
	LimitSamples map[string]string `json:"limitSamples,omitempty"`
	// ViolationCount counts invariant violations by kind; Violations holds
	// the first ones with the offending session's transcript.
	ViolationCount map[string]uint64 `json:"violationCount"`
	Violations     []Violation       `json:"violations"`
	Passed         bool              `json:"passed"`
}

// Latency summarizes a latency histogram, in milliseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	P50Ms  float64 `json:"p50Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
	MeanMs float64 `json:"meanMs"`
}

// Channel is what happened on one fixture channel, over all its sessions.
type Channel struct {
	Name      string `json:"name"`
	ID        string `json:"channelId"`
	Sessions  int    `json:"sessions"`
	Delivered uint64 `json:"messages"`
	Vouchers  uint64 `json:"vouchers"`
	// Signed is the highest cumulative voucher signed; Accepted the highest
	// acceptedCumulative the target reported.
	Signed   string `json:"signedCumulative"`
	Accepted string `json:"acceptedCumulative"`
}

// Violation is one broken invariant and the transcript of the session
// that saw it: its last frames, oldest first.
type Violation struct {
	Kind       string   `json:"kind"`
	Session    int      `json:"session"`
	Connection int      `json:"connection"`
	Channel    string   `json:"channel"`
	Detail     string   `json:"detail"`
	Transcript []string `json:"transcript"`
}

// Violation kinds.
const (
	// OverDelivery: more messages arrived on a channel, over all its
	// connections, than the vouchers signed on it pay for.
	OverDelivery = "over-delivery"
	// NeedVoucherNumbers: a need-voucher whose amounts contradict the
	// vouchers or each other.
	NeedVoucherNumbers = "need-voucher-numbers"
	// ReceiptNumbers: a receipt whose amounts contradict the vouchers, what
	// arrived or each other.
	ReceiptNumbers = "receipt-numbers"
	// Stall: no message, need-voucher or end of stream within the bound
	// after a voucher.
	Stall = "stall"
)

// keptViolations is how many violations keep their transcript.
const keptViolations = 10

// recorder tallies errors, limits and violations from every session.
type recorder struct {
	mu         sync.Mutex
	errors     tally
	limits     tally
	violations map[string]uint64
	kept       []Violation
}

// tally counts by kind and keeps the first detail of each.
type tally struct {
	counts  map[string]uint64
	samples map[string]string
}

func (t *tally) add(kind, detail string) {
	if t.counts == nil {
		t.counts, t.samples = map[string]uint64{}, map[string]string{}
	}
	t.counts[kind]++
	if _, ok := t.samples[kind]; !ok {
		t.samples[kind] = detail
	}
}

func (r *recorder) error(kind, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors.add(kind, detail)
}

func (r *recorder) limit(kind, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limits.add(kind, detail)
}

func (r *recorder) violation(v Violation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.violations == nil {
		r.violations = map[string]uint64{}
	}
	r.violations[v.Kind]++
	if len(r.kept) < keptViolations {
		r.kept = append(r.kept, v)
	}
}

// fill copies the tallies into res; empty ones as empty, not null.
func (r *recorder) fill(res *Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	orEmpty := func(m map[string]uint64) map[string]uint64 {
		if m == nil {
			return map[string]uint64{}
		}
		return maps.Clone(m)
	}
	res.Errors, res.ErrorSamples = orEmpty(r.errors.counts), maps.Clone(r.errors.samples)
	res.Limits, res.LimitSamples = orEmpty(r.limits.counts), maps.Clone(r.limits.samples)
	res.ViolationCount = orEmpty(r.violations)
	res.Violations = append([]Violation{}, r.kept...)
}

// Summary is one line for a terminal.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d sessions (dialect %s) over %d connections: %d messages in %.1fs (%.0f/s); needVoucher→resume p50 %.1fms p99 %.1fms max %.1fms (%d)",
		r.Sessions, r.Dialect, r.Connections, r.Delivered, r.Elapsed, r.Throughput, r.Resume.P50Ms, r.Resume.P99Ms, r.Resume.MaxMs, r.Resume.Count)
	tally := func(name string, m map[string]uint64) {
		if len(m) == 0 {
			return
		}
		fmt.Fprintf(&b, "; %s:", name)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(&b, " %s %d", k, m[k])
		}
	}
	tally("errors", r.Errors)
	tally("limits", r.Limits)
	tally("VIOLATIONS", r.ViolationCount)
	if r.Passed {
		b.WriteString("; no violation")
	}
	return b.String()
}

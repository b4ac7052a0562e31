package load

import (
	"fmt"
	"maps"
	"slices"

	"github.com/mppws/conformance/suite/report"
)

// Report is the run as a section of the conformance report.
func (r *Result) Report() *report.Load {
	l := &report.Load{Target: r.Target, Summary: r.Summary(), Passed: r.Passed}
	fig := func(name, format string, args ...any) {
		l.Figures = append(l.Figures, report.Figure{Name: name, Value: fmt.Sprintf(format, args...)})
	}
	fig("sessions", "%d (dialect %s)", r.Sessions, r.Dialect)
	fig("elapsed", "%.1fs", r.Elapsed)
	fig("messages", "%d (%.0f/s)", r.Delivered, r.Throughput)
	fig("connections", "%d (peak %d at once)", r.Connections, r.PeakConnections)
	fig("vouchers", "%d for %d need-vouchers", r.Vouchers, r.NeedVouchers)
	fig("need-voucher → resume", "p50 %.1fms, p99 %.1fms, max %.1fms over %d", r.Resume.P50Ms, r.Resume.P99Ms, r.Resume.MaxMs, r.Resume.Count)
	for _, c := range r.Channels {
		fig("channel "+c.Name, "%d sessions, %d messages, %d vouchers, signed %s, accepted %s", c.Sessions, c.Delivered, c.Vouchers, c.Signed, c.Accepted)
	}
	tally := func(what string, counts map[string]uint64, samples map[string]string) {
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			fig(what+" "+k, "%d, first: %s", counts[k], samples[k])
		}
	}
	tally("error", r.Errors, r.ErrorSamples)
	tally("limit", r.Limits, r.LimitSamples)
	for _, k := range slices.Sorted(maps.Keys(r.ViolationCount)) {
		fig("violation "+k, "%d", r.ViolationCount[k])
	}
	for _, v := range r.Violations {
		l.Violations = append(l.Violations, report.LoadViolation{
			Kind:       v.Kind,
			Detail:     fmt.Sprintf("session %d, connection %d, channel %s: %s", v.Session, v.Connection, v.Channel, v.Detail),
			Transcript: v.Transcript,
		})
	}
	return l
}

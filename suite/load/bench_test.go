package load_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/suite/load"
)

// BenchmarkLoad runs 100 sessions of 300 messages each against a fresh
// in-process reference per iteration (load signs from zero), and reports
// the message rate and the need-voucher-to-resume pause. Client and
// server share the machine, as they do from the CLI.
func BenchmarkLoad(b *testing.B) {
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		b.Run("dialect "+d.Name(), func(b *testing.B) {
			var messages uint64
			var seconds, p50, p99 float64
			for b.Loop() {
				b.StopTimer()
				url := reference(b, server.Config{Dialect: d, Tick: big.NewInt(1), Messages: 100000})
				b.StartTimer()
				res, err := load.Run(context.Background(), load.Config{URL: url, Sessions: 100, Messages: 300})
				if err != nil || !res.Passed {
					b.Fatalf("load: %v %+v", err, res.Violations)
				}
				messages += res.Delivered
				seconds += res.Elapsed
				p50, p99 = max(p50, res.Resume.P50Ms), max(p99, res.Resume.P99Ms)
			}
			b.ReportMetric(float64(messages)/seconds, "msgs/s")
			b.ReportMetric(p50, "p50-resume-ms")
			b.ReportMetric(p99, "p99-resume-ms")
		})
	}
}

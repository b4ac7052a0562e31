package load_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/suite/load"
)

func TestScratch(t *testing.T) {
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		for _, n := range []int{1, 3, 12, 48} {
			url := reference(t, server.Config{Dialect: d, Tick: big.NewInt(1)})
			start := time.Now()
			res := run(t, load.Config{URL: url, Sessions: n, Duration: 1 * time.Second, VoucherUnits: 20})
			t.Logf("%s n=%d took %s: %s %v %v", d.Name(), n, time.Since(start), res.Summary(), res.ErrorSamples, res.LimitSamples)
		}
	}
}

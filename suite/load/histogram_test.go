package load

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueInOrder(t *testing.T) {
	prev := -1
	for _, us := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 1<<40 - 1} {
		i := bucket(us)
		if i < prev {
			t.Fatalf("bucket(%d) = %d, below the bucket of a smaller value (%d)", us, i, prev)
		}
		if us > upper(i) || (i > 0 && us <= upper(i-1)) {
			t.Fatalf("bucket(%d) = %d holds (%d, %d]", us, i, upper(i-1), upper(i))
		}
		prev = i
	}
}

func TestQuantilesWithinBucketPrecision(t *testing.T) {
	var h histogram
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 10000)
	var wg sync.WaitGroup
	for w := range 4 {
		for i := w; i < len(vals); i += 4 {
			vals[i] = time.Duration(r.ExpFloat64()*5000) * time.Microsecond
		}
		wg.Go(func() {
			for i := w; i < len(vals); i += 4 {
				h.record(vals[i])
			}
		})
	}
	wg.Wait()
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.99} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.quantile(q)
		if got < exact || float64(got) > float64(exact)*(1+1.0/32)+float64(time.Microsecond) {
			t.Errorf("q%.2f = %s, exact %s: want within +3%%", q, got, exact)
		}
	}
	if l := h.latency(); l.Count != 10000 || l.MaxMs != float64(vals[len(vals)-1].Microseconds())/1000 {
		t.Errorf("latency %+v, want 10000 samples and max %s", l, vals[len(vals)-1])
	}
}

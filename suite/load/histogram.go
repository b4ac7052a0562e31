package load

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets of microseconds: exact
// below 64 µs, then 32 buckets per power of two, so a quantile is off by
// at most 1/32 (3%). It is safe for concurrent use and never allocates.
type histogram struct {
	counts [64 + 40*32]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64 // µs
	max    atomic.Uint64 // µs, exact
}

func bucket(us uint64) int {
	if us < 64 {
		return int(us)
	}
	shift := bits.Len64(us) - 6 // keep the top six bits
	return 64 + (shift-1)*32 + int(us>>shift) - 32
}

// upper is the largest value bucket i holds.
func upper(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	shift := (i-64)/32 + 1
	return (uint64((i-64)%32+32+1) << shift) - 1
}

func (h *histogram) record(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	i := min(bucket(us), len(h.counts)-1)
	h.counts[i].Add(1)
	h.total.Add(1)
	h.sum.Add(us)
	for m := h.max.Load(); us > m && !h.max.CompareAndSwap(m, us); m = h.max.Load() {
	}
}

// quantile returns an upper bound of the q-quantile (0 < q ≤ 1), within
// the bucket precision and never above the maximum.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(upper(i), h.max.Load())) * time.Microsecond
		}
	}
	return time.Duration(h.max.Load()) * time.Microsecond
}

// latency summarizes the histogram for the result.
func (h *histogram) latency() Latency {
	n := h.total.Load()
	l := Latency{Count: n}
	if n == 0 {
		return l
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	l.P50Ms = ms(h.quantile(0.50))
	l.P99Ms = ms(h.quantile(0.99))
	l.MaxMs = ms(time.Duration(h.max.Load()) * time.Microsecond)
	l.MeanMs = float64(h.sum.Load()) / float64(n) / 1000
	return l
}

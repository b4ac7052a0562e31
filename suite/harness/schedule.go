package harness

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"time"

	"github.com/mppws/conformance/suite/peer"
	"github.com/mppws/conformance/suite/report"
)

// Kind is how a case body ended, before levels and expect-fail lists
// turn it into a verdict.
type Kind int

const (
	Passed Kind = iota
	Failed
	NonStrict
	NotApplicable
	NotRun
)

// Result is what running one case produced.
type Result struct {
	Kind     Kind
	Failure  string   // the failure message, with the transcript
	Expected []string // a failure's expected outcomes
	Actual   string   // a failure's actual outcome
	Reason   string   // why not applicable, or why not run
	Observed []string
	// Transcript is every frame of the case, both ways, timed.
	Transcript []report.Entry
	Duration   time.Duration
}

// Scheduler runs the selected cases: side by side where they may, alone
// where they must, and the ones that check or spend the target for good at
// the end. The Ginkgo specs and the Go test API only wait for its results,
// so the order they report in never changes what runs when.
type Scheduler struct {
	// Started and Finished, if set, are told of each case as it starts
	// and ends, from the goroutine that runs it.
	Started  func(Meta)
	Finished func(Meta, Result)

	r        *Run
	parallel int
	phases   [Closing + 1][]*job
	jobs     map[string]*job
}

type job struct {
	def  Case
	done chan struct{}
	res  Result
}

// NewScheduler plans the run of defs. With shuffle, cases start in an order
// drawn from seed within their phase (Ginkgo's --randomize-all).
func NewScheduler(r *Run, defs []Case, shuffle bool, seed int64) *Scheduler {
	sc := &Scheduler{r: r, parallel: max(1, r.cfg.Parallel), jobs: map[string]*job{}}
	for _, d := range defs {
		j := &job{def: d, done: make(chan struct{})}
		sc.jobs[d.ID] = j
		sc.phases[d.Schedule] = append(sc.phases[d.Schedule], j)
	}
	if shuffle {
		rng := rand.New(rand.NewSource(seed))
		for _, p := range sc.phases {
			rng.Shuffle(len(p), func(i, k int) { p[i], p[k] = p[k], p[i] })
		}
	}
	// Long cases start first, so that the run does not end waiting on one,
	// and so do cases that lease several channels at once: started among
	// the others, they wait until enough channels are free together.
	first := func(j *job) bool { return j.def.Long || j.def.Channels > 1 }
	slices.SortStableFunc(sc.phases[Concurrent], func(x, y *job) int {
		switch {
		case first(x) == first(y):
			return 0
		case first(x):
			return -1
		}
		return 1
	})
	return sc
}

// Start runs every phase in turn, in the background.
func (sc *Scheduler) Start(ctx context.Context) {
	go func() {
		for ph, jobs := range sc.phases {
			width := 1
			if Schedule(ph) == Concurrent {
				width = sc.parallel
			}
			sem := make(chan struct{}, width)
			var wg sync.WaitGroup
			for _, j := range jobs {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					sc.runCase(ctx, j)
				})
			}
			wg.Wait()
		}
	}()
}

// Wait returns the result of case id once it has run.
func (sc *Scheduler) Wait(ctx context.Context, id string) (Result, error) {
	j, ok := sc.jobs[id]
	if !ok {
		return Result{}, fmt.Errorf("case %s is not scheduled", id)
	}
	select {
	case <-j.done:
		return j.res, nil
	case <-ctx.Done():
		return Result{}, context.Cause(ctx)
	}
}

// runCase runs one case within the case timeout. A body that overruns has
// its connections closed, which ends every wait it is in.
func (sc *Scheduler) runCase(ctx context.Context, j *job) {
	defer close(j.done)
	if err := sc.r.Aborted(); err != nil {
		j.res = Result{Kind: NotRun, Reason: "the run stopped: " + err.Error()}
		return
	}
	m := j.def.Meta
	if sc.Started != nil {
		sc.Started(m)
	}
	if sc.Finished != nil {
		defer func() { sc.Finished(m, j.res) }()
	}
	cctx, cancel := context.WithTimeout(ctx, sc.r.t.Case)
	defer cancel()
	c := &C{Meta: m, Timeouts: sc.r.t, r: sc.r, Ctx: cctx, T: peer.NewTranscript(), soft: m.Level == INFO || (m.Level == SHOULD && !sc.r.cfg.Strict)}
	start := time.Now()
	out := make(chan Result, 1)
	go func() { out <- c.exec(j.def.Run) }()
	select {
	case j.res = <-out:
	case <-cctx.Done():
		c.close()
		select {
		case j.res = <-out:
		case <-time.After(sc.r.t.Reply):
			j.res = c.failure(fmt.Sprintf("[%s] %s: %s\nThe case did not finish within %s: %v\nTranscript:\n%s",
				m.ID, m.Level, m.Title, sc.r.t.Case, context.Cause(cctx), c.T.String()))
		}
	}
	c.close()
	j.res.Duration = time.Since(start)
	j.res.Transcript = c.T.Entries()
}

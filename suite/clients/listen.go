package clients

import (
	"context"
	"fmt"
	"math"
	"net"
	"sync"
	"time"
)

// listen serves every case at once on a URL of its own, prints the URLs
// (Autobahn's fuzzingserver style) and grades whatever connects to each.
// A case starts at the client's first probe or connection and ends when
// the client has made its runs and closed them, or at the case deadline.
// No process is launched, so exit statuses are not graded.
func (r *runner) listen(ctx context.Context, chosen []*Case) ([]Result, error) {
	perRun := r.o.scaled(clientTimeout + grace)
	host := r.addr
	if h, port, err := net.SplitHostPort(r.addr); err == nil && net.ParseIP(h).IsUnspecified() {
		host = net.JoinHostPort("localhost", port)
	}
	fmt.Fprintf(r.cfg.Out, "MPP client conformance (dialect %s): connect the client to each URL below.\n", r.o.dialect.Name())
	fmt.Fprintf(r.cfg.Out, "Each case allows %s per run once the client arrives; give the client a timeout of %ds.\n",
		perRun, int(math.Ceil(r.o.scaled(clientTimeout).Seconds())))
	results := make([]Result, len(chosen))
	var wg sync.WaitGroup
	for i, c := range chosen {
		if why := c.notApplicable(r.o); why != "" {
			results[i] = verdict(c, outcome{notApplicable: why}, r.cfg.Strict, r.cfg.ExpectFail)
			continue
		}
		caseCtx, cancel := context.WithCancel(ctx)
		cr := newCaseRun(caseCtx, c, r.o, c.offerOf(r.o))
		path := "/case/" + c.ID
		r.route(path, cr)
		runs := ""
		if c.runs() > 1 {
			runs = fmt.Sprintf("  (connect %d times, one run after the other)", c.runs())
		}
		r.progress("%s %s://%s%s%s\n", c.ID, r.scheme, host, path, runs)
		wg.Go(func() {
			defer cancel()
			defer r.route(path, nil)
			o := r.awaitListened(ctx, cr, perRun)
			cancel()
			cr.wg.Wait()
			results[i] = verdict(c, o, r.cfg.Strict, r.cfg.ExpectFail)
			r.progress("%-14s %-15s %s\n", c.ID, results[i].Verdict, c.Title)
		})
	}
	wg.Wait()
	return results, ctx.Err()
}

// awaitListened waits for the client to come to one case and finish it,
// then grades it.
func (r *runner) awaitListened(ctx context.Context, cr *caseRun, perRun time.Duration) outcome {
	wait := time.NewTimer(r.o.scaled(r.cfg.Wait))
	defer wait.Stop()
	select {
	case <-cr.touched:
	case <-wait.C:
		return outcome{notRun: fmt.Sprintf("no client came to the case's URL within %s", r.o.scaled(r.cfg.Wait))}
	case <-ctx.Done():
		return outcome{notRun: "the run was interrupted"}
	}
	start := time.Now()
	deadline := time.NewTimer(time.Duration(cr.c.runs()) * perRun)
	defer deadline.Stop()
	for {
		if served, open := cr.conns(); served >= cr.c.runs() && open == 0 {
			break
		}
		select {
		case <-cr.idle:
			continue
		case <-deadline.C:
		case <-ctx.Done():
		}
		_, open := cr.conns()
		cr.rec.mu.Lock()
		cr.rec.leftOpen = open
		cr.rec.mu.Unlock()
		break
	}
	o := grade(&judge{c: cr.c, rec: cr.rec, o: r.o})
	o.duration = time.Since(start)
	return o
}

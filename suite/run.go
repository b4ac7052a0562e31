package suite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/mppws/conformance/suite/harness"
	"github.com/mppws/conformance/suite/report"
)

// TestingT is what RunSpecs needs: go test passes its *testing.T, the CLI
// passes a recorder.
type TestingT interface{ Fail() }

type failRecorder struct{ failed bool }

func (f *failRecorder) Fail() { f.failed = true }

// Run discovers the targets, runs the selected cases and returns their
// verdicts. It writes the reports even when cases fail. t may be nil. Run
// builds Ginkgo's spec tree and calls RunSpecs, which Ginkgo allows once per
// process.
func Run(ctx context.Context, cfg Config, t TestingT) (*Summary, error) {
	r, chosen, selected, err := prepare(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cfg = r.Config()

	suiteCfg, repCfg := GinkgoConfiguration()
	suiteCfg.FailOnEmpty = true
	repCfg.NoColor = repCfg.NoColor || cfg.NoColor
	if cfg.ReportDir != "" {
		// junit.xml is the report package's lean one; Ginkgo's JSON keeps
		// transcripts of failed cases only.
		repCfg.JSONReport = filepath.Join(cfg.ReportDir, "ginkgo.json")
	}
	sched := harness.NewScheduler(r, chosen, suiteCfg.RandomizeAllSpecs, suiteCfg.RandomSeed)
	var progress *report.Progress
	if cfg.Progress != nil {
		f, isFile := cfg.Progress.(*os.File)
		p := report.NewProgress(cfg.Progress, len(chosen), isFile && report.IsTerminal(f))
		progress = p
		sched.Started = func(m Meta) { p.Start(m.ID) }
		sched.Finished = func(m Meta, res harness.Result) { p.End(m.ID, verdictOf(m, res, cfg.ExpectFail).Verdict) }
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	sched.Start(runCtx)

	var mu sync.Mutex
	var results []Result
	for _, area := range harness.Areas {
		Describe(areaTitles[area], func() {
			for _, d := range chosen {
				if d.Area != area {
					continue
				}
				It(fmt.Sprintf("[%s] %s", d.ID, d.Title), Label(d.Labels()...), func(ctx SpecContext) {
					res, err := sched.Wait(ctx, d.ID)
					if err != nil {
						Fail(fmt.Sprintf("[%s] interrupted: %v", d.ID, err))
					}
					mu.Lock()
					results = append(results, verdictOf(d.Meta, res, cfg.ExpectFail))
					mu.Unlock()
					mirror(res)
				})
			}
		})
	}
	if t == nil {
		t = &failRecorder{}
	}
	gomega.RegisterFailHandler(Fail)
	RunSpecs(t, "MPP WebSocket conformance", suiteCfg, repCfg)
	if progress != nil {
		progress.Finish()
	}
	if err := r.Aborted(); err != nil {
		return nil, err
	}

	s := summarize(cfg, r, selected, results)
	if cfg.ReportDir != "" {
		if err := s.WriteFiles(cfg.ReportDir); err != nil {
			return s, fmt.Errorf("writing reports: %w", err)
		}
	}
	if err := s.WriteText(cfg.Out); err != nil {
		return s, fmt.Errorf("writing the summary: %w", err)
	}
	return s, nil
}

// prepare checks the catalogue and cfg, selects the cases and discovers
// the targets.
func prepare(ctx context.Context, cfg Config) (*harness.Run, []harness.Case, map[string]bool, error) {
	if err := validateCatalogue(); err != nil {
		return nil, nil, nil, err
	}
	selected, err := selection(cfg.Select)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	r, err := harness.NewRun(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if dir := r.Config().ReportDir; dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			r.Close()
			return nil, nil, nil, fmt.Errorf("%w: report dir: %v", ErrUsage, err)
		}
	}
	var chosen []harness.Case
	for _, d := range allCases() {
		if selected[d.ID] {
			chosen = append(chosen, d)
		}
	}
	return r, chosen, selected, nil
}

// areaTitles name the Ginkgo container of each area.
var areaTitles = map[Area]string{
	harness.AreaWire:    "Wire compatibility",
	harness.AreaReplay:  "Challenge-ID replay rejection",
	harness.AreaVoucher: "Voucher exhaustion",
	harness.AreaRobust:  "Robustness",
}

// entryObserved names the Ginkgo report entries of observations. A
// failure's message carries its transcript; passing cases carry none.
const entryObserved = "observed"

// mirror replays a case's result on its Ginkgo spec: its observations as
// report entries, then a skip or a failure.
func mirror(res harness.Result) {
	for _, o := range res.Observed {
		AddReportEntry(entryObserved, o, ReportEntryVisibilityFailureOrVerbose)
	}
	switch res.Kind {
	case harness.NotApplicable:
		Skip("NOT APPLICABLE: " + res.Reason)
	case harness.NotRun:
		Skip("NOT RUN: " + res.Reason)
	case harness.Failed:
		Fail(res.Failure)
	}
}

// selection resolves IDs and areas to the selected case IDs.
func selection(args []string) (map[string]bool, error) {
	sel := map[string]bool{}
	if len(args) == 0 {
		for _, m := range Catalogue() {
			sel[m.ID] = true
		}
		return sel, nil
	}
	for _, a := range args {
		if m, ok := Lookup(strings.ToUpper(a)); ok {
			sel[m.ID] = true
			continue
		}
		area, found := Area(strings.ToLower(a)), false
		for _, m := range Catalogue() {
			if m.Area == area {
				sel[m.ID], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("%q is neither a case ID nor an area (areas: wire, replay, voucher, robust; `conformance --list` shows the IDs)", a)
		}
	}
	return sel, nil
}

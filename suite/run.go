package suite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// ErrUsage marks a configuration or selection error (exit 2).
var ErrUsage = errors.New("invalid configuration")

// ErrSetup marks a target that cannot be reached or understood (exit 3).
var ErrSetup = errors.New("setup failed")

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
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if err := validateCatalogue(); err != nil {
		return nil, err
	}
	defs := allCases()
	selected, err := selection(cfg.Select)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	r := &run{cfg: cfg, t: baseTimeouts.scale(cfg.TimeoutScale), wallet: newWallet()}
	for _, u := range cfg.Targets {
		tg, err := discover(ctx, u, cfg.Dialect, cfg.Channels, r.t.Connect)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSetup, err)
		}
		if r.dialect != "" && r.dialect != tg.Dialect.Name() {
			return nil, fmt.Errorf("%w: %s speaks dialect %s, the other targets %s: run them separately", ErrUsage, u, tg.Dialect.Name(), r.dialect)
		}
		r.targets = append(r.targets, tg)
		r.dialect = tg.Dialect.Name()
	}
	if cfg.ReportDir != "" {
		if err := os.MkdirAll(cfg.ReportDir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: report dir: %v", ErrUsage, err)
		}
	}

	suiteCfg, repCfg := GinkgoConfiguration()
	suiteCfg.FailOnEmpty = true
	repCfg.NoColor = repCfg.NoColor || cfg.NoColor
	if cfg.ReportDir != "" {
		repCfg.JUnitReport = filepath.Join(cfg.ReportDir, "junit.xml")
		repCfg.JSONReport = filepath.Join(cfg.ReportDir, "ginkgo.json")
	}
	var chosen []Case
	for _, d := range defs {
		if selected[d.ID] {
			chosen = append(chosen, d)
		}
	}
	sched := newScheduler(r, chosen, cfg.Parallel, suiteCfg.RandomizeAllSpecs, suiteCfg.RandomSeed)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	sched.start(runCtx)

	var mu sync.Mutex
	var results []Result
	for _, area := range Areas {
		Describe(areaTitles[area], func() {
			for _, d := range chosen {
				if d.Area != area {
					continue
				}
				It(fmt.Sprintf("[%s] %s", d.ID, d.Title), Label(d.Labels()...), func(ctx SpecContext) {
					res, err := sched.wait(ctx, d.ID)
					if err != nil {
						Fail(fmt.Sprintf("[%s] interrupted: %v", d.ID, err))
					}
					mu.Lock()
					results = append(results, verdictOf(d.Meta, res, cfg.ExpectFail))
					mu.Unlock()
					report(d.Meta, res)
				})
			}
		})
	}
	if t == nil {
		t = &failRecorder{}
	}
	gomega.RegisterFailHandler(Fail)
	RunSpecs(t, "MPP WebSocket conformance", suiteCfg, repCfg)
	if err := r.aborted(); err != nil {
		return nil, err
	}

	s := summarize(cfg, r, selected, results)
	if cfg.ReportDir != "" {
		if err := s.write(cfg.ReportDir); err != nil {
			return s, fmt.Errorf("writing reports: %w", err)
		}
	}
	s.print(cfg.Out)
	return s, nil
}

// areaTitles name the Ginkgo container of each area.
var areaTitles = map[Area]string{
	AreaWire:    "Wire compatibility",
	AreaReplay:  "Challenge-ID replay rejection",
	AreaVoucher: "Voucher exhaustion",
	AreaRobust:  "Robustness",
}

// report replays a case's result on its Ginkgo spec: observations and the
// transcript as report entries, then a skip or a failure.
func report(m Meta, res result) {
	for _, o := range res.observed {
		AddReportEntry(entryObserved, o, ReportEntryVisibilityFailureOrVerbose)
	}
	AddReportEntry(entryTranscript, res.transcript, ReportEntryVisibilityFailureOrVerbose)
	switch res.kind {
	case resultNotApplicable:
		Skip("NOT APPLICABLE: " + res.reason)
	case resultNotRun:
		Skip("NOT RUN: " + res.reason)
	case resultFailed:
		Fail(res.failure)
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

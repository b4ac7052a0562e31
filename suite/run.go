package suite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
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
// verdicts. It writes the reports even when cases fail. t may be nil.
func Run(ctx context.Context, cfg Config, t TestingT) (*Summary, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if err := validateCatalogue(); err != nil {
		return nil, err
	}
	selected, err := selection(cfg.Select)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	current = &env{cfg: cfg, t: baseTimeouts.scale(cfg.TimeoutScale), wallet: newWallet()}
	for _, u := range cfg.Targets {
		tg, err := discover(ctx, u, cfg.Dialect, cfg.Channels, current.t.Connect)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSetup, err)
		}
		if current.dialect != "" && current.dialect != tg.Dialect.Name() {
			return nil, fmt.Errorf("%w: %s speaks dialect %s, the other targets %s: run them separately", ErrUsage, u, tg.Dialect.Name(), current.dialect)
		}
		current.targets = append(current.targets, tg)
		current.dialect = tg.Dialect.Name()
	}
	if cfg.ReportDir != "" {
		if err := os.MkdirAll(cfg.ReportDir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: report dir: %v", ErrUsage, err)
		}
	}

	suiteCfg, repCfg := GinkgoConfiguration()
	suiteCfg.LabelFilter = labelFilter(suiteCfg.LabelFilter, selected)
	suiteCfg.FailOnEmpty = true
	repCfg.NoColor = repCfg.NoColor || cfg.NoColor
	if cfg.ReportDir != "" {
		repCfg.JUnitReport = filepath.Join(cfg.ReportDir, "junit.xml")
		repCfg.JSONReport = filepath.Join(cfg.ReportDir, "ginkgo.json")
	}
	if t == nil {
		t = &failRecorder{}
	}
	gomega.RegisterFailHandler(Fail)
	RunSpecs(t, "MPP WebSocket conformance", suiteCfg, repCfg)

	s := summarize(cfg, current.targets, selected, current.results)
	if cfg.ReportDir != "" {
		if err := s.write(cfg.ReportDir); err != nil {
			return s, fmt.Errorf("writing reports: %w", err)
		}
	}
	s.print(cfg.Out)
	return s, nil
}

// selection resolves IDs and areas to the selected case IDs.
func selection(args []string) (map[string]bool, error) {
	sel := map[string]bool{}
	if len(args) == 0 {
		for _, m := range catalogue {
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
		for _, m := range catalogue {
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

// labelFilter restricts the run to the selected IDs, on top of any
// --ginkgo.label-filter the user gave.
func labelFilter(user string, sel map[string]bool) string {
	if len(sel) == len(catalogue) {
		return user
	}
	var ids []string
	for id := range sel {
		ids = append(ids, id)
	}
	f := strings.Join(ids, " || ")
	if user != "" {
		f = "(" + user + ") && (" + f + ")"
	}
	return f
}

// collect turns Ginkgo's report into verdicts; it runs once, after all specs.
var _ = ReportAfterSuite("conformance verdicts", func(r Report) {
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			continue
		}
		id := specID(sr.LeafNodeText)
		m, ok := Lookup(id)
		if !ok {
			continue
		}
		current.results = append(current.results, verdictOf(m, sr))
	}
})

func specID(text string) string {
	if strings.HasPrefix(text, "[") {
		if i := strings.IndexByte(text, ']'); i > 0 {
			return text[1:i]
		}
	}
	return ""
}

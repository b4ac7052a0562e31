package suite

import (
	"github.com/mppws/conformance/suite/cases/replay"
	"github.com/mppws/conformance/suite/cases/robust"
	"github.com/mppws/conformance/suite/cases/voucher"
	"github.com/mppws/conformance/suite/cases/wire"
	"github.com/mppws/conformance/suite/harness"
)

// Aliases keep the suite's API whole: a case's identity and the run's
// configuration belong to the harness.
type (
	Meta   = harness.Meta
	Level  = harness.Level
	Area   = harness.Area
	Config = harness.Config
)

// The requirement levels and areas, as the harness names them.
const (
	MUST   = harness.MUST
	SHOULD = harness.SHOULD
	INFO   = harness.INFO
)

// ErrUsage marks a configuration or selection error (exit 2); ErrSetup a
// target that cannot be reached or understood (exit 3).
var (
	ErrUsage = harness.ErrUsage
	ErrSetup = harness.ErrSetup
)

// allCases returns every case, area by area.
func allCases() []harness.Case {
	var out []harness.Case
	for _, area := range [][]harness.Case{wire.Cases(), replay.Cases(), voucher.Cases(), robust.Cases()} {
		out = append(out, area...)
	}
	return out
}

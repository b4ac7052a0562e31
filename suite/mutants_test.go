package suite_test

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/suite"
)

// mutants maps every fault of the reference server, per dialect, to the
// cases that must catch it. A fault that makes no sense in a dialect (a
// dialect B challenge is not bound to a connection; dialect A has no close
// handshake) is absent from that dialect's table.
var mutants = map[string]map[server.Fault][]string{
	"a": {
		server.FaultForgedID:        {"WS-REPLAY-001", "WS-REPLAY-010", "WS-ROBUST-005"},
		server.FaultSkipEcho:        {"WS-REPLAY-002", "WS-REPLAY-003", "WS-REPLAY-004", "WS-REPLAY-005", "WS-REPLAY-006", "WS-REPLAY-015", "WS-REPLAY-016"},
		server.FaultOtherConnection: {"WS-REPLAY-007", "WS-REPLAY-008"},
		server.FaultExpired:         {"WS-REPLAY-009"},
		server.FaultOverDeliver:     {"WS-VOUCHER-001"},
		server.FaultNoNeedVoucher:   {"WS-VOUCHER-001"},
		server.FaultWrongRequired:   {"WS-VOUCHER-001", "WS-WIRE-008"},
		server.FaultNonIncreasing:   {"WS-VOUCHER-005", "WS-VOUCHER-006"},
		server.FaultOverDeposit:     {"WS-VOUCHER-007", "WS-VOUCHER-015"},
		server.FaultWrongSigner:     {"WS-VOUCHER-008", "WS-VOUCHER-020"},
		server.FaultWrongSpent:      {"WS-VOUCHER-011"},
		server.FaultSnakeCase:       {"WS-WIRE-008", "WS-WIRE-009"},
		server.FaultDropNonJSON:     {"WS-ROBUST-001"},
		server.FaultDoubleCharge:    {"WS-VOUCHER-001", "WS-VOUCHER-011"},
		server.FaultWrongChannel:    {"WS-VOUCHER-009"},
		server.FaultRacyCharge:      {"WS-VOUCHER-014"},

		server.FaultChallengeOnce:       {"WS-WIRE-001"},
		server.FaultPaddedID:            {"WS-WIRE-002"},
		server.FaultNonCanonicalRequest: {"WS-WIRE-003"},
		server.FaultExpiresAtIssue:      {"WS-WIRE-004"},
		server.FaultLooseBinding:        {"WS-WIRE-005"},
		server.FaultFractionalDelta:     {"WS-WIRE-006"},
		server.FaultNumericData:         {"WS-WIRE-007"},
		server.FaultUnixTimestamp:       {"WS-WIRE-010", "WS-WIRE-016"},
		server.FaultErrorObject:         {"WS-WIRE-011"},
		server.FaultDenyUnknownFields:   {"WS-WIRE-012"},
		server.FaultEchoMessages:        {"WS-WIRE-013"},
		server.FaultIgnoreMalformed:     {"WS-REPLAY-011", "WS-REPLAY-012", "WS-REPLAY-013", "WS-REPLAY-014", "WS-REPLAY-018"},
		server.FaultUnitAfterAsk:        {"WS-VOUCHER-002", "WS-VOUCHER-003"},
		server.FaultPartialTick:         {"WS-VOUCHER-004"},
		server.FaultHighS:               {"WS-VOUCHER-010"},
		server.FaultLenientAmount:       {"WS-VOUCHER-018"},
		server.FaultAnyChain:            {"WS-VOUCHER-019"},
		server.FaultRefundOnDrop:        {"WS-VOUCHER-012"},
		server.FaultUnknownChannel:      {"WS-VOUCHER-016"},
		server.FaultWedge:               {"WS-ROBUST-001", "WS-ROBUST-002", "WS-ROBUST-009", "WS-ROBUST-010"},
		server.FaultBinaryAsText:        {"WS-ROBUST-003"},
		server.FaultCrashOnOversize:     {"WS-ROBUST-004", "WS-ROBUST-013"},
		server.FaultCrashOnReject:       {"WS-ROBUST-005"},
		server.FaultSerialStreams:       {"WS-ROBUST-006", "WS-ROBUST-008"},
		server.FaultGlobalWriteLock:     {"WS-ROBUST-006"},
		server.FaultConnectionCap:       {"WS-ROBUST-007"},
	},
	"b": {
		server.FaultForgedID:             {"WS-REPLAY-001", "WS-REPLAY-010", "WS-ROBUST-005"},
		server.FaultSkipEcho:             {"WS-REPLAY-002", "WS-REPLAY-003", "WS-REPLAY-004", "WS-REPLAY-005"},
		server.FaultExpired:              {"WS-REPLAY-009"},
		server.FaultOverDeliver:          {"WS-VOUCHER-001"},
		server.FaultNoNeedVoucher:        {"WS-VOUCHER-001"},
		server.FaultWrongRequired:        {"WS-VOUCHER-001", "WS-WIRE-021"},
		server.FaultNonIncreasing:        {"WS-VOUCHER-005", "WS-VOUCHER-006"},
		server.FaultOverDeposit:          {"WS-VOUCHER-007", "WS-VOUCHER-015"},
		server.FaultWrongSigner:          {"WS-VOUCHER-008", "WS-VOUCHER-020"},
		server.FaultWrongSpent:           {"WS-VOUCHER-011"},
		server.FaultSnakeCase:            {"WS-WIRE-019", "WS-WIRE-021"},
		server.FaultDropNonJSON:          {"WS-ROBUST-001"},
		server.FaultDoubleCharge:         {"WS-VOUCHER-001", "WS-VOUCHER-011"},
		server.FaultWrongChannel:         {"WS-VOUCHER-009"},
		server.FaultRacyCharge:           {"WS-VOUCHER-014"},
		server.FaultLongCloseReason:      {"WS-REPLAY-019"},
		server.FaultMessageBeforeReceipt: {"WS-WIRE-019"},
		server.FaultCloseReadySpent:      {"WS-VOUCHER-021"},
		server.FaultGreeting:             {"WS-WIRE-018"},

		server.FaultPaddedID:            {"WS-WIRE-002"},
		server.FaultNonCanonicalRequest: {"WS-WIRE-003"},
		server.FaultExpiresAtIssue:      {"WS-WIRE-004", "WS-WIRE-017"},
		server.FaultLooseBinding:        {"WS-WIRE-005", "WS-REPLAY-006", "WS-REPLAY-015", "WS-REPLAY-016"},
		server.FaultFractionalDelta:     {"WS-WIRE-006"},
		server.FaultNumericData:         {"WS-WIRE-007"},
		server.FaultUnixTimestamp:       {"WS-WIRE-016"},
		server.FaultErrorObject:         {"WS-WIRE-020", "WS-ROBUST-014"},
		server.FaultDenyUnknownFields:   {"WS-WIRE-012"},
		server.FaultEchoMessages:        {"WS-WIRE-013"},
		server.FaultIgnoreMalformed:     {"WS-REPLAY-011", "WS-REPLAY-012", "WS-REPLAY-013", "WS-REPLAY-014", "WS-REPLAY-018"},
		server.FaultUnitAfterAsk:        {"WS-VOUCHER-002", "WS-VOUCHER-003"},
		server.FaultPartialTick:         {"WS-VOUCHER-004"},
		server.FaultHighS:               {"WS-VOUCHER-010"},
		server.FaultLenientAmount:       {"WS-VOUCHER-018"},
		server.FaultAnyChain:            {"WS-VOUCHER-019"},
		server.FaultRefundOnDrop:        {"WS-VOUCHER-012"},
		server.FaultUnknownChannel:      {"WS-VOUCHER-016"},
		server.FaultWedge:               {"WS-ROBUST-001", "WS-ROBUST-002", "WS-ROBUST-009", "WS-ROBUST-010"},
		server.FaultCrashOnOversize:     {"WS-ROBUST-004", "WS-ROBUST-013"},
		server.FaultCrashOnReject:       {"WS-ROBUST-005"},
		server.FaultSerialStreams:       {"WS-ROBUST-006", "WS-ROBUST-008"},
		server.FaultGlobalWriteLock:     {"WS-ROBUST-006"},
	},
}

// uncatchable lists, per dialect, the MUST cases no mutant of the
// reference can make fail, each with the reason. TestMutantCoverage fails
// for any other MUST case that no mutant of its dialect is expected to
// fail.
var uncatchable = map[string]map[string]string{
	"a": {},
	"b": {},
}

// twoChannels are, per dialect, the cases that need a second fixture
// channel to catch anything. On the one-channel shape they do not apply,
// so a mutant is run there against its other cases only, and not at all
// when it has none: accept-wrong-channel in both dialects, serial-streams
// in dialect B.
var twoChannels = map[string]map[string]string{
	"a": {
		"WS-VOUCHER-009": "pays the metered stream with a voucher for a second channel",
		"WS-ROBUST-008":  "runs one session per channel at once: on one channel there is nothing to run beside it",
	},
	"b": {
		"WS-VOUCHER-009": "pays the metered stream with a voucher for a second channel",
		"WS-ROBUST-006":  "the connection that stops reading pays from a second channel",
		"WS-ROBUST-008":  "runs one session per channel at once: on one channel there is nothing to run beside it",
	},
}

var dialects = []string{"a", "b"}

// mutantRun is one run of the suite against a mutant.
type mutantRun struct {
	shape, dialect string
	fault          server.Fault
	ids            []string
}

func (r mutantRun) String() string {
	s := fmt.Sprintf("mutant %s (dialect %s", r.fault, r.dialect)
	if r.shape != "" {
		s += ", " + r.shape
	}
	return s + ")"
}

// mutantRuns lists the runs TestMutants makes: every mutant in every
// dialect its table lists it for, on the default shape and on the
// one-channel shape.
func mutantRuns() []mutantRun {
	var runs []mutantRun
	for _, shape := range []string{"", "one-channel"} {
		for _, d := range dialects {
			for _, f := range server.Faults {
				ids, ok := mutants[d][f]
				if shape == "one-channel" {
					ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { _, two := twoChannels[d][id]; return two })
				}
				if ok && len(ids) > 0 {
					runs = append(runs, mutantRun{shape, d, f, ids})
				}
			}
		}
	}
	return runs
}

// missed returns the expected cases the run's verdicts do not show
// catching the mutant. On the default shape each must fail. On one channel
// a case that took a voucher no target may take (over the deposit, say)
// can leave none for the next case, which is then NOT APPLICABLE, with its
// reason: there no case may pass, and one must fail.
func (r mutantRun) missed(s *suite.Summary) []string {
	verdicts := map[string]suite.Verdict{}
	for _, res := range s.Results {
		verdicts[res.ID] = res.Verdict
	}
	var missed []string
	failed := false
	for _, id := range r.ids {
		v := verdicts[id]
		failed = failed || v == suite.Failed
		if v != suite.Failed && (r.shape == "" || v != suite.NotApplicable) {
			missed = append(missed, id+"="+string(v))
		}
	}
	if !failed && len(missed) == 0 {
		missed = append(missed, "none FAILED")
	}
	return missed
}

// TestMutants runs the suite against every mutant of the reference, on the
// default and the one-channel shape, each in a child process restricted to
// the cases expected to catch it, and requires them to catch it (missed).
func TestMutants(t *testing.T) {
	if os.Getenv("MPPWS_FAULT") != "" || os.Getenv("MPPWS_DIALECT") != "" || os.Getenv("MPPWS_TARGET") != "" {
		t.Skip("child process")
	}
	if testing.Short() {
		t.Skip("mutant runs skipped in -short mode")
	}
	runs := mutantRuns()
	// One run per core: cases that time a target (a stalled write, a
	// flood that must fill a socket buffer) are judged by how it behaves
	// under load, and two -race runs per core have made a mutant slip past
	// them (global-write-lock once in three runs of this test).
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	var mu sync.Mutex
	caught, tried := map[string]int{}, map[string]int{}
	for _, r := range runs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s, out, err := runChild(t, "MPPWS_DIALECT="+r.dialect, "MPPWS_FAULT="+string(r.fault), "MPPWS_SHAPE="+r.shape, "MPPWS_SELECT="+strings.Join(r.ids, ","))
			mu.Lock()
			defer mu.Unlock()
			where := cmp.Or(r.shape, "default") + "/" + r.dialect
			tried[where]++
			if err != nil {
				t.Errorf("%s: %v\n%s", r, err, out)
				return
			}
			if missed := r.missed(s); len(missed) > 0 {
				t.Errorf("%s not caught: %s\n%s", r, strings.Join(missed, ", "), out)
				return
			}
			caught[where]++
		})
	}
	wg.Wait()
	for _, where := range slices.Sorted(maps.Keys(tried)) {
		t.Logf("%s: %d of %d mutants caught", where, caught[where], tried[where])
	}
}

// TestMutantCoverage checks the mutant table: its cases exist and apply to
// their dialect, every fault is expected to be caught somewhere, and every
// MUST case is expected to catch a mutant in each dialect it applies to,
// unless uncatchable says why none can.
func TestMutantCoverage(t *testing.T) {
	used := map[server.Fault]bool{}
	for _, d := range dialects {
		catches := map[string]bool{}
		for f, ids := range mutants[d] {
			used[f] = true
			if !f.Valid() {
				t.Errorf("dialect %s: %q is not in server.Faults", d, f)
			}
			for _, id := range ids {
				if m, ok := suite.Lookup(id); !ok || !appliesTo(m, d) {
					t.Errorf("mutant %s (dialect %s): case %s is unknown or not a dialect %s case", f, d, id, d)
				}
				catches[id] = true
			}
		}
		for _, m := range suite.Catalogue() {
			if m.Level != suite.MUST || !appliesTo(m, d) {
				continue
			}
			_, excused := uncatchable[d][m.ID]
			switch {
			case !catches[m.ID] && !excused:
				t.Errorf("%s (dialect %s) catches no mutant of dialect %s: add one, or say in uncatchable why none can exist", m.ID, d, d)
			case catches[m.ID] && excused:
				t.Errorf("%s (dialect %s) is listed as uncatchable but catches a mutant", m.ID, d)
			}
		}
		for id := range uncatchable[d] {
			if m, ok := suite.Lookup(id); !ok || m.Level != suite.MUST || !appliesTo(m, d) {
				t.Errorf("uncatchable: %s is not a MUST case of dialect %s", id, d)
			}
		}
		for id := range twoChannels[d] {
			if m, ok := suite.Lookup(id); !ok || !appliesTo(m, d) {
				t.Errorf("twoChannels: %s is not a case of dialect %s", id, d)
			}
		}
	}
	for _, f := range server.Faults {
		if !used[f] {
			t.Errorf("mutant %s has no expected cases in any dialect", f)
		}
	}
}

// Markers around README.md's mutation table.
const (
	tableStart = "<!-- mutation table: generated from suite/mutants_test.go, checked by TestMutationTable -->\n"
	tableEnd   = "<!-- end of mutation table -->\n"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's mutation table from the mutant table")

// TestMutationTable requires README.md's mutation table to be the one the
// mutant table above makes; -update-readme writes that one in.
func TestMutationTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := bytes.Cut(b, []byte(tableStart))
	got, after, ok2 := bytes.Cut(rest, []byte(tableEnd))
	if !ok1 || !ok2 {
		t.Fatalf("README.md lacks the mutation table markers %q and %q", tableStart, tableEnd)
	}
	want := mutationTable()
	switch {
	case string(got) == want:
	case *updateREADME:
		out := slices.Concat(before, []byte(tableStart+want+tableEnd), after)
		if err := os.WriteFile("../README.md", out, 0o644); err != nil {
			t.Fatal(err)
		}
	default:
		t.Errorf("README.md's mutation table differs from suite/mutants_test.go: run go test ./suite -run TestMutationTable -update-readme")
	}
}

// mutationTable renders, for every MUST case, the mutants that catch it in
// each dialect, as a markdown table.
func mutationTable() string {
	var b strings.Builder
	b.WriteString("| Case | Dialect A | Dialect B |\n|---|---|---|\n")
	for _, m := range suite.Catalogue() {
		if m.Level != suite.MUST {
			continue
		}
		fmt.Fprintf(&b, "| %s", m.ID)
		for _, d := range dialects {
			var cell []string
			for _, f := range server.Faults {
				if slices.Contains(mutants[d][f], m.ID) {
					cell = append(cell, "`"+string(f)+"`")
				}
			}
			switch why, excused := uncatchable[d][m.ID]; {
			case !appliesTo(m, d):
				cell = []string{"—"}
			case excused:
				cell = []string{"none: " + why}
			}
			fmt.Fprintf(&b, " | %s", strings.Join(cell, ", "))
		}
		b.WriteString(" |\n")
	}
	return b.String()
}

func appliesTo(m suite.Meta, dialect string) bool {
	for _, d := range m.Dialects {
		if strings.EqualFold(d, dialect) {
			return true
		}
	}
	return false
}

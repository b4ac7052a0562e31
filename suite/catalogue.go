package suite

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mppws/conformance/suite/harness"
	"github.com/mppws/conformance/suite/report"
)

// Catalogue returns every case's entry, ordered by area, then ID.
func Catalogue() []Meta {
	var out []Meta
	for _, c := range allCases() {
		out = append(out, c.Meta)
	}
	sort.SliceStable(out, func(i, j int) bool { return caseLess(out[i], out[j]) })
	return out
}

// caseLess orders cases by area (in Areas order), then by ID.
func caseLess(a, b Meta) bool {
	if a.Area != b.Area {
		return areaRank(a.Area) < areaRank(b.Area)
	}
	return a.ID < b.ID
}

func areaRank(a Area) int {
	for i, x := range harness.Areas {
		if x == a {
			return i
		}
	}
	return len(harness.Areas)
}

// Lookup finds a case by ID.
func Lookup(id string) (Meta, bool) {
	for _, m := range Catalogue() {
		if m.ID == id {
			return m, true
		}
	}
	return Meta{}, false
}

// validateCatalogue rejects duplicate IDs and malformed entries before any
// case runs.
func validateCatalogue() error {
	seen := map[string]bool{}
	for _, c := range allCases() {
		m := c.Meta
		if c.Run == nil {
			return fmt.Errorf("catalogue: case %s has no body", m.ID)
		}
		switch {
		case seen[m.ID]:
			return fmt.Errorf("catalogue: duplicate case ID %s", m.ID)
		case m.Title == "" || m.Requirement == "" || m.Source == "" || len(m.Dialects) == 0:
			return fmt.Errorf("catalogue: case %s lacks a title, requirement, source or dialect", m.ID)
		case m.Level != MUST && m.Level != SHOULD && m.Level != INFO:
			return fmt.Errorf("catalogue: case %s has level %q", m.ID, m.Level)
		case !strings.HasPrefix(m.ID, "WS-"+strings.ToUpper(string(m.Area))+"-"):
			return fmt.Errorf("catalogue: case %s is filed under area %s", m.ID, m.Area)
		}
		seen[m.ID] = true
	}
	return nil
}

// ReadExpectFail reads an expect-fail file of server cases; an unknown ID
// is an error.
func ReadExpectFail(path string) (map[string]string, error) {
	return report.ReadExpectFail(path, func(id string) bool { _, ok := Lookup(id); return ok })
}

// MarkdownTable renders the catalogue as README's case table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| ID | Level | Dialects | Area | Title |\n|---|---|---|---|---|\n")
	for _, m := range Catalogue() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", m.ID, m.Level, strings.Join(m.Dialects, ","), m.Area, m.Title)
	}
	return b.String()
}

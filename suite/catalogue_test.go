package suite_test

import (
	"os"
	"strings"
	"testing"

	"github.com/mppws/conformance/suite"
)

// TestReadmeCatalogue fails when README's case table is not the one the
// registrations generate: the catalogue has one source, the cases.
func TestReadmeCatalogue(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "## Case catalogue\n\n")
	if !ok {
		t.Fatal(`README.md has no "## Case catalogue" section`)
	}
	table, _, _ := strings.Cut(after, "\n\n")
	if want := suite.MarkdownTable(); strings.TrimSpace(table) != strings.TrimSpace(want) {
		t.Errorf("README.md's case table differs from the registered cases; replace it with:\n\n%s", want)
	}
}

package report

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// ReadExpectFail reads an expect-fail file: one case ID per line, text
// after # is the reason, blank lines ignored. An ID known does not accept
// is an error, so a typo cannot silence a failure.
func ReadExpectFail(path string, known func(id string) bool) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("expect-fail: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, reason, _ := strings.Cut(sc.Text(), "#")
		id := strings.TrimSpace(line)
		if id == "" {
			continue
		}
		if !known(id) {
			return nil, fmt.Errorf("%s:%d: unknown case ID %q", path, n, id)
		}
		out[id] = strings.TrimSpace(reason)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("expect-fail: %w", err)
	}
	return out, nil
}

// ExpectFail applies an expect-fail list to a verdict: a listed case that
// failed is EXPECTED FAIL, a listed case that passed is NOW PASSING.
func (r *Result) ExpectFail(expectFail map[string]string) {
	reason, listed := expectFail[r.ID]
	if !listed {
		return
	}
	switch r.Verdict {
	case Failed:
		r.Verdict, r.Reason = ExpectedFail, reason
	case OK:
		r.Verdict, r.Reason = NowPassing, "listed in the expect-fail file but passes: remove it from the list"
	}
}

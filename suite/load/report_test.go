package load

import (
	"strings"
	"testing"
)

func TestReportSection(t *testing.T) {
	r := &Result{
		Target: "ws://127.0.0.1:1/", Dialect: "A", Sessions: 8, Delivered: 400, Throughput: 200,
		Channels:       []Channel{{Name: "v2-main", Sessions: 8, Delivered: 400, Vouchers: 40, Signed: "41000", Accepted: "41000"}},
		Limits:         map[string]uint64{"http-503": 2},
		LimitSamples:   map[string]string{"http-503": "HTTP 503 on dial"},
		ViolationCount: map[string]uint64{OverDelivery: 1},
		Violations:     []Violation{{Kind: OverDelivery, Session: 3, Connection: 4, Channel: "v2-main", Detail: "2 unpaid", Transcript: []string{"0.001s conn 4 < frame"}}},
	}
	l := r.Report()
	if l.Passed || l.Target != r.Target || l.Summary != r.Summary() {
		t.Errorf("section %+v", l)
	}
	figures := map[string]string{}
	for _, f := range l.Figures {
		figures[f.Name] = f.Value
	}
	for name, want := range map[string]string{
		"sessions":                  "8 (dialect A)",
		"messages":                  "400 (200/s)",
		"channel v2-main":           "8 sessions, 400 messages, 40 vouchers, signed 41000, accepted 41000",
		"limit http-503":            "2, first: HTTP 503 on dial",
		"violation " + OverDelivery: "1",
	} {
		if figures[name] != want {
			t.Errorf("figure %q = %q, want %q", name, figures[name], want)
		}
	}
	if len(l.Violations) != 1 || !strings.Contains(l.Violations[0].Detail, "session 3, connection 4, channel v2-main: 2 unpaid") || l.Violations[0].Transcript[0] != "0.001s conn 4 < frame" {
		t.Errorf("violations %+v", l.Violations)
	}
}

package client_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mppws/conformance/reference/client"
	"github.com/mppws/conformance/reference/tempo"
)

const ledgerChannel = "0x1111111111111111111111111111111111111111111111111111111111111111"

func TestLedgerFile(t *testing.T) {
	l := client.NewLedger()
	if err := json.Unmarshal([]byte(`{"`+ledgerChannel+`":{"signed":3000,"spent":2000,"units":2}}`), l); err != nil {
		t.Fatal(err)
	}
	id, _ := tempo.ParseHash(ledgerChannel)
	if a := l.Snapshot(id); a.Signed.Int64() != 3000 || a.Spent.Int64() != 2000 || a.Units != 2 {
		t.Fatalf("snapshot %+v, want signed 3000 spent 2000 units 2", a)
	}
	out, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	again := client.NewLedger()
	if err := json.Unmarshal(out, again); err != nil {
		t.Fatalf("ledger %s does not read back: %v", out, err)
	}

	upper := "0x" + strings.Repeat("1", 64)
	bad := map[string]string{
		"repeated channel":       `{"` + ledgerChannel + `":{"signed":1,"spent":0},"` + ledgerChannel + `":{"signed":9,"spent":0}}`,
		"channel in two cases":   `{"` + ledgerChannel + `":{"signed":1,"spent":0},"` + strings.ToUpper(upper[:2]) + upper[2:] + `":{"signed":9,"spent":0}}`,
		"repeated member":        `{"` + ledgerChannel + `":{"signed":1,"signed":9,"spent":0}}`,
		"member in another case": `{"` + ledgerChannel + `":{"Signed":1,"spent":0}}`,
		"unknown member":         `{"` + ledgerChannel + `":{"signed":1,"spent":0,"spnt":0}}`,
		"negative":               `{"` + ledgerChannel + `":{"signed":-1,"spent":0}}`,
		"missing spent":          `{"` + ledgerChannel + `":{"signed":1}}`,
		"not a channel id":       `{"0x12":{"signed":1,"spent":0}}`,
		"not an object":          `[]`,
	}
	for name, in := range bad {
		if err := json.Unmarshal([]byte(in), client.NewLedger()); err == nil {
			t.Errorf("%s: ledger %s accepted", name, in)
		}
	}
}

// FuzzLedger: a ledger file is either refused or read into accounts that
// are non-negative and that write out and read back unchanged.
func FuzzLedger(f *testing.F) {
	for _, s := range []string{
		`{"` + ledgerChannel + `":{"signed":3000,"spent":2000,"units":2}}`,
		`{"` + ledgerChannel + `":{"signed":1,"spent":0},"` + ledgerChannel + `":{"signed":9,"spent":0}}`,
		`{"` + ledgerChannel + `":{"Signed":1,"spent":0}}`,
		`{"` + ledgerChannel + `":{"signed":1e3,"spent":0}}`,
		`{"` + ledgerChannel + `":{"signed":-1,"spent":0}}`,
		`{"` + ledgerChannel + `":null}`,
		`{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l := client.NewLedger()
		if err := json.Unmarshal(b, l); err != nil {
			return
		}
		out, err := json.Marshal(l)
		if err != nil {
			t.Fatalf("ledger read from %q does not write: %v", b, err)
		}
		again := client.NewLedger()
		if err := json.Unmarshal(out, again); err != nil {
			t.Fatalf("ledger read from %q writes %q, which does not read back: %v", b, out, err)
		}
		if out2, _ := json.Marshal(again); string(out2) != string(out) {
			t.Fatalf("ledger changed on a round trip: %q → %q", out, out2)
		}
		var accounts map[string]client.Account
		if err := json.Unmarshal(out, &accounts); err != nil {
			t.Fatal(err)
		}
		for id, a := range accounts {
			if a.Signed.Sign() < 0 || a.Spent.Sign() < 0 {
				t.Fatalf("ledger read from %q holds negative amounts for %s: %+v", b, id, a)
			}
		}
	})
}

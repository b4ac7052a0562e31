package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mppws/conformance/reference/client"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
)

// startB starts a dialect B reference server; wrap, when set, sits in front
// of it.
func startB(t *testing.T, cfg server.Config, wrap func(http.Handler) http.Handler) (*server.Server, string) {
	t.Helper()
	cfg.Dialect = frame.B
	if cfg.Secret == nil {
		cfg.Secret = []byte("end-to-end-secret")
	}
	if cfg.Channels == nil {
		cfg.Channels = descriptors()
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(srv)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http")
}

func receipts(t *testing.T, raws []json.RawMessage) []mpp.SessionReceipt {
	t.Helper()
	out := make([]mpp.SessionReceipt, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func sessionReceipt(t *testing.T, raw json.RawMessage) mpp.SessionReceipt {
	t.Helper()
	return receipts(t, []json.RawMessage{raw})[0]
}

// checkFinalized checks the store: the channel is closed with spent and
// units as the client's messages.
func checkFinalized(t *testing.T, srv *server.Server, res client.Result, tick int64) {
	t.Helper()
	id, _ := tempo.ParseHash(res.ChannelID)
	st, err := srv.Store().State(id)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(res.Messages))
	if !st.Finalized || st.Spent.Cmp(big.NewInt(n*tick)) != 0 || st.Units != uint64(n) {
		t.Fatalf("store: finalized %t spent %s units %d; want finalized, spent %d (%d messages x %d)", st.Finalized, st.Spent, st.Units, n*tick, n, tick)
	}
}

func TestDialectBSessionEndToEnd(t *testing.T) {
	for _, p := range []tempo.Protocol{tempo.V1, tempo.V2} {
		t.Run(string(p), func(t *testing.T) {
			const tick = 250
			srv, url := startB(t, server.Config{Protocol: p, Messages: 40, Tick: big.NewInt(tick)}, nil)
			ledger := client.NewLedger()
			cfg := client.Config{Dialect: frame.B, VoucherUnits: 10, Ledger: ledger, Timeout: 10 * time.Second}
			res, err := client.Run(context.Background(), url, cfg)
			if err != nil {
				t.Fatal(err)
			}
			// 40 units paid 10 at a time: the opening voucher and three
			// need-voucher rounds, each acknowledged, then the settlement.
			if res.Dialect != "B" || len(res.Messages) != 40 || res.NeedVouchers != 3 || res.VouchersSent != 4 || res.Reprobes != 0 || len(res.Receipts) != 5 {
				t.Fatalf("got dialect %s, %d messages, %d need-voucher, %d vouchers, %d re-probes, %d receipts; want B, 40, 3, 4, 0, 5",
					res.Dialect, len(res.Messages), res.NeedVouchers, res.VouchersSent, res.Reprobes, len(res.Receipts))
			}
			for i, m := range res.Messages {
				if m != fmt.Sprintf("unit-%d", i+1) {
					t.Fatalf("message %d is %q", i+1, m)
				}
			}
			for i, rc := range receipts(t, res.Receipts[:4]) {
				want := fmt.Sprint(tick * 10 * (i + 1))
				if rc.ChallengeID != res.ChallengeID || rc.AcceptedCumulative != want || rc.TxHash != "" {
					t.Fatalf("voucher receipt %d: %+v; want challenge %s, accepted %s, no txHash", i+1, rc, res.ChallengeID, want)
				}
			}
			ready := sessionReceipt(t, res.CloseReady)
			if ready.Spent != "10000" || ready.ChallengeID != res.ChallengeID || ready.TxHash != "" {
				t.Fatalf("close-ready %+v, want spent 10000 for challenge %s", ready, res.ChallengeID)
			}
			final := res.Session
			if final == nil || final.TxHash == "" || final.Spent != "10000" || *final.Units != 40 || string(res.Receipts[4]) != string(res.Receipt) {
				t.Fatalf("settlement receipt %s, want a txHash, spent 10000, units 40", res.Receipt)
			}
			checkFinalized(t, srv, res, tick)
			id, _ := tempo.ParseHash(res.ChannelID)
			if a := ledger.Snapshot(id); a.Signed.Cmp(big.NewInt(10000)) != 0 || a.Spent.Cmp(big.NewInt(10000)) != 0 || a.Units != 40 {
				t.Fatalf("ledger %+v, want signed 10000, spent 10000, units 40", a)
			}

			// The channel is closed: paying from it again is refused.
			_, err = client.Run(context.Background(), url, client.Config{Dialect: frame.B, Channel: res.Channel, VoucherUnits: 10, Ledger: ledger, Timeout: 5 * time.Second})
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Step != "pay" || !strings.Contains(err.Error(), "payment-error 410") || !strings.Contains(err.Error(), "channel-finalized") {
				t.Fatalf("second run on the closed channel: %v; want a pay error 410 channel-finalized", err)
			}
		})
	}
}

func TestDialectBEarlyClose(t *testing.T) {
	const tick = 10
	srv, url := startB(t, server.Config{Messages: 1000, Tick: big.NewInt(tick)}, nil)
	res, err := client.Run(context.Background(), url, client.Config{Dialect: frame.B, VoucherUnits: 10, Messages: 15, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The close request goes out after the 15th message; what was paid and
	// already in flight still arrives: at most the 20 units paid by then.
	n := len(res.Messages)
	if n < 15 || n > 20 || res.VouchersSent != 2 {
		t.Fatalf("got %d messages with %d vouchers; want 15 to 20 with 2", n, res.VouchersSent)
	}
	want := fmt.Sprint(n * tick)
	if ready := sessionReceipt(t, res.CloseReady); ready.Spent != want {
		t.Fatalf("close-ready spent %s after %d messages, want %s", ready.Spent, n, want)
	}
	if res.Session.Spent != want || res.Session.TxHash == "" {
		t.Fatalf("settlement receipt %s, want spent %s and a txHash", res.Receipt, want)
	}
	checkFinalized(t, srv, res, tick)
}

func TestDialectBReprobe(t *testing.T) {
	// Every probe moves the server's clock (and the client's) past the
	// expiry of every challenge issued before it: a credential that echoes
	// anything but the newest probe's challenge is refused as expired.
	const ttl = time.Second
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	var mu sync.Mutex
	var hints []string // Payment-Session of each probe
	probes := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") == "" {
				skew.Add(int64(ttl + ttl/2))
				mu.Lock()
				hints = append(hints, r.Header.Get("Payment-Session"))
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	}
	const tick = 10
	srv, url := startB(t, server.Config{Messages: 12, Tick: big.NewInt(tick), ChallengeTTL: ttl, Now: now}, probes)
	res, err := client.Run(context.Background(), url, client.Config{Dialect: frame.B, VoucherUnits: 3, Now: now, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Three need-voucher rounds (after units 3, 6 and 9) and the close, each
	// on a fresh challenge: the TTL is inside the 5 s margin.
	if len(res.Messages) != 12 || res.NeedVouchers != 3 || res.Reprobes != 4 || len(res.Receipts) != 5 {
		t.Fatalf("got %d messages, %d need-voucher, %d re-probes, %d receipts; want 12, 3, 4, 5", len(res.Messages), res.NeedVouchers, res.Reprobes, len(res.Receipts))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hints) != 5 || hints[0] != "" {
		t.Fatalf("probes sent Payment-Session %q; want none on the first, then the channel", hints)
	}
	for _, h := range hints[1:] {
		if h != res.ChannelID {
			t.Fatalf("re-probe hint %q, want the channel %s", h, res.ChannelID)
		}
	}
	rcs := receipts(t, res.Receipts)
	seen := map[string]bool{}
	for i, rc := range rcs {
		if seen[rc.ChallengeID] {
			t.Fatalf("receipt %d reuses challenge %s: every credential was paid against a new one", i+1, rc.ChallengeID)
		}
		seen[rc.ChallengeID] = true
	}
	if rcs[0].ChallengeID != res.ChallengeID {
		t.Fatalf("opening receipt for challenge %s, want the first probe's %s", rcs[0].ChallengeID, res.ChallengeID)
	}
	// Close-ready answers for the newest voucher's challenge; the close
	// was paid against one more.
	if ready := sessionReceipt(t, res.CloseReady); ready.ChallengeID != rcs[3].ChallengeID || ready.Spent != "120" {
		t.Fatalf("close-ready %+v, want challenge %s spent 120", ready, rcs[3].ChallengeID)
	}
	checkFinalized(t, srv, res, tick)
}

func TestDialectBPrepay(t *testing.T) {
	srv, url := startB(t, server.Config{Messages: 300, Tick: big.NewInt(7)}, nil)
	res, err := client.Run(context.Background(), url, client.Config{Dialect: frame.B, VoucherUnits: 20, Prepay: 2, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 300 || res.VouchersSent < 15 || len(res.Receipts) != res.VouchersSent+1 {
		t.Fatalf("got %d messages, %d vouchers, %d receipts; want 300, at least 15, one receipt per voucher and the settlement", len(res.Messages), res.VouchersSent, len(res.Receipts))
	}
	checkFinalized(t, srv, res, 7)
}

func TestDialectBClientChecks(t *testing.T) {
	cases := []struct {
		name  string
		cfg   server.Config
		step  string
		want  string
		plain bool // a dialect A server
	}{
		{"probe of a dialect A server", server.Config{}, "probe", "want exactly 402", true},
		{"message before the first receipt", server.Config{Fault: server.FaultMessageBeforeReceipt}, "pay", "first frame is message", false},
		{"close-ready over what was signed", server.Config{Fault: server.FaultCloseReadySpent}, "close", "exceeds the most we signed", false},
		{"receipts one tick short", server.Config{Fault: server.FaultWrongSpent}, "pay", `"-10" is not a decimal string`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Messages, cfg.Tick = 20, big.NewInt(10)
			var url string
			if tc.plain {
				_, url = start(t, cfg)
			} else {
				_, url = startB(t, cfg, nil)
			}
			_, err := client.Run(context.Background(), url, client.Config{Dialect: frame.B, VoucherUnits: 10, Timeout: 5 * time.Second})
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Step != tc.step || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want a %s error containing %q", err, tc.step, tc.want)
			}
		})
	}
}

func TestDialectAConfigRejectsMessages(t *testing.T) {
	_, err := client.Run(context.Background(), "ws://127.0.0.1:1/", client.Config{Messages: 5})
	if err == nil || !strings.Contains(err.Error(), "dialect B") {
		t.Fatalf("got %v, want Messages refused for dialect A", err)
	}
}

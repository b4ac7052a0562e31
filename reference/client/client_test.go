package client_test

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/client"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
)

func descriptors() []tempo.Channel {
	var out []tempo.Channel
	for _, ch := range fixtures.Default() {
		out = append(out, ch.Channel)
	}
	return out
}

func start(t *testing.T, cfg server.Config) (*server.Server, string) {
	t.Helper()
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
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http")
}

func TestChargeEndToEnd(t *testing.T) {
	_, url := start(t, server.Config{Intent: server.IntentCharge, Messages: 5})
	res, err := client.Run(context.Background(), url, client.Config{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Intent != "charge" || len(res.Messages) != 5 || res.VouchersSent != 1 {
		t.Fatalf("got intent %s, %d messages, %d credentials; want charge, 5, 1", res.Intent, len(res.Messages), res.VouchersSent)
	}
	if res.Messages[0] != "unit-1" || res.Messages[4] != "unit-5" {
		t.Fatalf("messages %v", res.Messages)
	}
}

func TestSessionEndToEnd(t *testing.T) {
	for _, p := range []tempo.Protocol{tempo.V1, tempo.V2} {
		t.Run(string(p), func(t *testing.T) {
			tick := big.NewInt(250)
			srv, url := start(t, server.Config{Intent: server.IntentSession, Protocol: p, Messages: 40, Tick: tick})
			ledger := client.NewLedger()
			cfg := client.Config{VoucherUnits: 10, Ledger: ledger, Timeout: 10 * time.Second}
			res, err := client.Run(context.Background(), url, cfg)
			if err != nil {
				t.Fatal(err)
			}
			// 40 units paid 10 at a time: the opening voucher and three
			// need-voucher rounds.
			if len(res.Messages) != 40 || res.NeedVouchers != 3 || res.VouchersSent != 4 {
				t.Fatalf("got %d messages, %d needVoucher, %d vouchers; want 40, 3, 4", len(res.Messages), res.NeedVouchers, res.VouchersSent)
			}
			rc := res.Session
			if rc.Spent != "10000" || rc.AcceptedCumulative != "10000" || *rc.Units != 40 {
				t.Fatalf("receipt spent %s accepted %s units %d; want 10000 10000 40", rc.Spent, rc.AcceptedCumulative, *rc.Units)
			}
			id, _ := tempo.ParseHash(res.ChannelID)
			st, err := srv.Store().State(id)
			if err != nil {
				t.Fatal(err)
			}
			if st.Spent.Cmp(big.NewInt(10000)) != 0 || st.Units != 40 {
				t.Fatalf("store spent %s units %d", st.Spent, st.Units)
			}
			// A second connection on the same channel continues from the
			// channel's state: the ledger knows what was signed.
			res2, err := client.Run(context.Background(), url, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res2.Session.Spent != "20000" || *res2.Session.Units != 80 {
				t.Fatalf("second receipt spent %s units %d; want 20000 80", res2.Session.Spent, *res2.Session.Units)
			}
			// A fresh ledger replays from zero: its voucher cannot add funds.
			_, err = client.Run(context.Background(), url, client.Config{VoucherUnits: 10, Timeout: 2 * time.Second})
			if err == nil || !strings.Contains(err.Error(), "below accepted") {
				t.Fatalf("stale ledger: got %v, want a below-accepted rejection", err)
			}
		})
	}
}

func TestSessionPrepay(t *testing.T) {
	_, url := start(t, server.Config{Intent: server.IntentSession, Messages: 300, Tick: big.NewInt(7)})
	res, err := client.Run(context.Background(), url, client.Config{VoucherUnits: 20, Prepay: 2, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 300 || res.VouchersSent < 15 {
		t.Fatalf("got %d messages with %d vouchers; want 300 with at least 15", len(res.Messages), res.VouchersSent)
	}
}

// TestDialThroughConfig: Config.Dial and Config.HTTP carry the TLS trust
// and the headers of both dialects' connections, the upgrade and the
// probe; without them a server of an unknown CA is refused at the connect
// step, naming the certificate.
func TestDialThroughConfig(t *testing.T) {
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		t.Run(d.Name(), func(t *testing.T) {
			srv, err := server.New(server.Config{Secret: []byte("end-to-end-secret"), Channels: descriptors(), Dialect: d, Messages: 5})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var gw []string // X-Gw of every request, upgrades and probes
			hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				gw = append(gw, r.Header.Get("X-Gw"))
				mu.Unlock()
				srv.ServeHTTP(w, r)
			}))
			t.Cleanup(func() { hs.Close(); srv.Close() })
			url := "wss" + strings.TrimPrefix(hs.URL, "https")

			// hs.Client() trusts the test certificate; X-Gw is Dial's
			// header, so only the upgrade carries it.
			cfg := client.Config{Dialect: d, Timeout: 10 * time.Second, HTTP: hs.Client(),
				Dial: &websocket.DialOptions{HTTPClient: hs.Client(), HTTPHeader: http.Header{"X-Gw": {"1"}}}}
			res, err := client.Run(context.Background(), url, cfg)
			if err != nil || len(res.Messages) != 5 {
				t.Fatalf("run over TLS: %d messages, %v", len(res.Messages), err)
			}
			mu.Lock()
			if len(gw) == 0 || gw[len(gw)-1] != "1" {
				t.Errorf("X-Gw on the requests %q; want it on the upgrade, the last", gw)
			}
			mu.Unlock()

			_, err = client.Run(context.Background(), url, client.Config{Dialect: d, Timeout: 10 * time.Second})
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Step != "connect" || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("run without trusting the CA: %v; want a connect error naming the certificate", err)
			}
		})
	}
}

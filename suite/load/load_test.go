package load_test

import (
	"context"
	"crypto/tls"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
	"github.com/mppws/conformance/suite/connect"
	"github.com/mppws/conformance/suite/connect/testcert"
	"github.com/mppws/conformance/suite/load"
)

// newReference builds a reference server on the fixture channels.
func newReference(t testing.TB, cfg server.Config) *server.Server {
	t.Helper()
	cfg.Secret = []byte("load-test")
	for _, ch := range fixtures.Default() {
		cfg.Channels = append(cfg.Channels, ch.Channel)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// reference starts an in-process reference server and returns its URL.
func reference(t testing.TB, cfg server.Config) string {
	t.Helper()
	hs := httptest.NewServer(newReference(t, cfg))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

func run(t *testing.T, cfg load.Config) *load.Result {
	t.Helper()
	res, err := load.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return res
}

// clean fails t unless the run delivered and found nothing wrong.
func clean(t *testing.T, res *load.Result) {
	t.Helper()
	t.Log(res.Summary())
	if !res.Passed || res.Delivered == 0 || len(res.Errors) > 0 || len(res.Limits) > 0 {
		t.Fatalf("%s\nviolations %+v\nerrors %v", res.Summary(), res.Violations, res.ErrorSamples)
	}
	if res.Resume.Count == 0 || res.NeedVouchers == 0 {
		t.Errorf("no need-voucher was measured: %s", res.Summary())
	}
	var delivered uint64
	for _, c := range res.Channels {
		delivered += c.Delivered
		if c.Sessions == 0 { // fewer sessions than channels
			if c.Delivered != 0 {
				t.Errorf("channel %s: %d messages on no session", c.Name, c.Delivered)
			}
			continue
		}
		signed, _ := new(big.Int).SetString(c.Signed, 10)
		if c.Delivered == 0 || signed.Cmp(new(big.Int).SetUint64(c.Delivered)) < 0 {
			t.Errorf("channel %s: %d messages, signed %s", c.Name, c.Delivered, c.Signed)
		}
	}
	if delivered != res.Delivered {
		t.Errorf("channels add up to %d messages, the run counted %d", delivered, res.Delivered)
	}
}

func TestReferenceHoldsUnderLoad(t *testing.T) {
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		t.Run("dialect "+d.Name(), func(t *testing.T) {
			// Streams of 60 messages: each session connects three times.
			url := reference(t, server.Config{Dialect: d, Tick: big.NewInt(1)})
			res := run(t, load.Config{URL: url, Sessions: 30, Messages: 130, Rate: 100, VoucherUnits: 20})
			clean(t, res)
			v2 := 0
			for _, ch := range fixtures.Default() {
				if ch.Protocol == tempo.V2 {
					v2++
				}
			}
			if res.Dialect != d.Name() || res.Connections < 90 || len(res.Channels) != v2 {
				t.Errorf("dialect %s, %d connections, %d channels; want %s detected, 3 connections a session, the %d v2 channels", res.Dialect, res.Connections, len(res.Channels), d.Name(), v2)
			}
		})
	}
}

func TestMessageBudget(t *testing.T) {
	url := reference(t, server.Config{Dialect: frame.B, Messages: 1000, Protocol: tempo.V1})
	res := run(t, load.Config{URL: url, Dialect: frame.B, Sessions: 10, Messages: 150, VoucherUnits: 40})
	clean(t, res)
	if res.Delivered < 1500 || res.Connections != 10 || len(res.Channels) != 2 {
		t.Errorf("%d messages over %d connections on %d channels; want at least 10 × 150 on one connection each, on the 2 v1 channels", res.Delivered, res.Connections, len(res.Channels))
	}
}

// TestRacyChargeIsCaught: the mutant over-delivers only when connections
// meter one channel at once, which is what load does.
func TestRacyChargeIsCaught(t *testing.T) {
	for _, d := range []frame.Dialect{frame.A, frame.B} {
		t.Run("dialect "+d.Name(), func(t *testing.T) {
			url := reference(t, server.Config{Dialect: d, Tick: big.NewInt(1), Fault: server.FaultRacyCharge})
			res := run(t, load.Config{URL: url, Sessions: 30, Messages: 15, VoucherUnits: 5})
			if res.Passed || len(res.Violations) == 0 {
				t.Fatalf("racy-charge not caught: %s", res.Summary())
			}
			v := res.Violations[0]
			if len(v.Transcript) == 0 || v.Detail == "" || v.Session == 0 {
				t.Errorf("violation without its session's transcript: %+v", v)
			}
			t.Logf("%s\nfirst violation: %s: %s", res.Summary(), v.Kind, v.Detail)
		})
	}
}

func TestOverDeliveryIsCaught(t *testing.T) {
	url := reference(t, server.Config{Tick: big.NewInt(1), Fault: server.FaultOverDeliver})
	res := run(t, load.Config{URL: url, Sessions: 20, Messages: 60, VoucherUnits: 5})
	if res.ViolationCount[load.OverDelivery] == 0 {
		t.Fatalf("over-deliver not caught as %s: %s", load.OverDelivery, res.Summary())
	}
}

func TestUnreachableIsASetupError(t *testing.T) {
	_, err := load.Run(context.Background(), load.Config{URL: "ws://127.0.0.1:1/", Sessions: 1, Duration: time.Second})
	var se *load.SetupError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("error %v, want a setup error saying it could not connect", err)
	}
}

// TestConnectionOptionsReachTheTarget: over TLS with a generated
// certificate, the headers, the Origin and the subprotocols reach the
// target on the dialect B probe and on every upgrade.
func TestConnectionOptionsReachTheTarget(t *testing.T) {
	cert := testcert.New(t)
	ca, _, _ := cert.Files(t)
	srv := newReference(t, server.Config{Dialect: frame.B, Tick: big.NewInt(1)})
	var (
		mu               sync.Mutex
		probes, upgrades []http.Header
	)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.Header.Get("Upgrade") == "" {
			probes = append(probes, r.Header.Clone())
		} else {
			upgrades = append(upgrades, r.Header.Clone())
		}
		mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS(t)}}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	d, err := connect.New(connect.Options{CAFile: ca, Headers: []string{"X-Gateway-Key: k1"},
		Subprotocols: []string{"mpp.v1"}, Origin: "https://app.example"})
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, load.Config{URL: "wss" + strings.TrimPrefix(hs.URL, "https"), Sessions: 4, Messages: 150, VoucherUnits: 20, Dialer: d})
	clean(t, res)
	mu.Lock()
	defer mu.Unlock()
	if len(probes) == 0 || len(upgrades) < 4 {
		t.Fatalf("%d probes and %d upgrades reached the target, want at least 1 and 4", len(probes), len(upgrades))
	}
	for _, h := range append(probes, upgrades...) {
		if h.Get("X-Gateway-Key") != "k1" || h.Get("Origin") != "https://app.example" {
			t.Fatalf("a request without the header or the Origin: %v", h)
		}
	}
	for _, h := range upgrades {
		if h.Get("Sec-WebSocket-Protocol") != "mpp.v1" {
			t.Fatalf("an upgrade without the subprotocol: %v", h)
		}
	}
}

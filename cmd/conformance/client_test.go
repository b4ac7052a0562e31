package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
	"github.com/mppws/conformance/suite/connect/testcert"
)

// requests records the headers of the requests that reached a server.
type requests struct {
	mu       sync.Mutex
	upgrades []http.Header
	probes   []http.Header
}

// referenceOverTLS serves a dialect B reference server over TLS with a
// certificate of a fresh test CA, recording every request's headers.
func referenceOverTLS(t *testing.T) (url, caFile string, seen *requests) {
	t.Helper()
	var chs []tempo.Channel
	for _, ch := range fixtures.Default() {
		chs = append(chs, ch.Channel)
	}
	srv, err := server.New(server.Config{Secret: []byte("client-options"), Channels: chs, Dialect: frame.B, Messages: 5})
	if err != nil {
		t.Fatal(err)
	}
	seen = &requests{}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.mu.Lock()
		if r.Header.Get("Upgrade") != "" {
			seen.upgrades = append(seen.upgrades, r.Header.Clone())
		} else {
			seen.probes = append(seen.probes, r.Header.Clone())
		}
		seen.mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	cert := testcert.New(t)
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS(t)}}
	hs.StartTLS()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	caFile, _, _ = cert.Files(t)
	return "wss" + strings.TrimPrefix(hs.URL, "https"), caFile, seen
}

// TestClientConnectionOptions: `conformance client` trusts --ca-file, and
// sends --header, --origin and --subprotocol on the upgrade and the headers
// and Origin on dialect B's probe; without the CA it exits 3 naming the
// certificate and --ca-file; a bad option is a usage error.
func TestClientConnectionOptions(t *testing.T) {
	url, ca, seen := referenceOverTLS(t)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"client", "--dialect", "b", "--ca-file", ca, "--header", "X-Gw: 1",
		"--origin", "https://app.example", "--subprotocol", "mpp", url}, &out, &errb)
	if code != exitOK || !strings.Contains(out.String(), `"messages":5`) {
		t.Fatalf("client --ca-file: exit %d\n%s%s", code, out.String(), errb.String())
	}
	seen.mu.Lock()
	if len(seen.upgrades) != 1 || len(seen.probes) == 0 {
		t.Fatalf("%d upgrades and %d probes reached the server, want 1 and at least 1", len(seen.upgrades), len(seen.probes))
	}
	for i, h := range append(seen.probes, seen.upgrades...) {
		if h.Get("X-Gw") != "1" || h.Get("Origin") != "https://app.example" {
			t.Errorf("request %d: X-Gw %q, Origin %q; want 1 and https://app.example", i+1, h.Get("X-Gw"), h.Get("Origin"))
		}
	}
	if p := seen.upgrades[0].Get("Sec-WebSocket-Protocol"); p != "mpp" {
		t.Errorf("the upgrade offered subprotocols %q, want mpp", p)
	}
	seen.mu.Unlock()

	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"client", "--dialect", "b", url}, &out, &errb); code != exitSetup ||
		!strings.Contains(errb.String(), "certificate") || !strings.Contains(errb.String(), "--ca-file") {
		t.Errorf("client without the CA: exit %d, stderr %q; want exit 3 naming the certificate and --ca-file", code, errb.String())
	}
	for _, args := range [][]string{
		{"--header", "NoColon"},
		{"--ca-file", ca, "--insecure"},
		{"--subprotocol", "a,b"},
	} {
		errb.Reset()
		if code := run(context.Background(), append(append([]string{"client"}, args...), url), &out, &errb); code != exitUsage || !strings.Contains(errb.String(), args[0]) {
			t.Errorf("client %v: exit %d, stderr %q; want exit 2 naming %s", args, code, errb.String(), args[0])
		}
	}
}

package connect_test

import (
	"context"
	"crypto/tls"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/suite/connect"
	"github.com/mppws/conformance/suite/connect/testcert"
)

func TestFlagsFillOptions(t *testing.T) {
	var o connect.Options
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.Register(fs)
	err := fs.Parse([]string{"--ca-file", "ca.pem", "--header", "X-A: 1", "--header", "X-B: 2",
		"--subprotocol", "mpp", "--subprotocol", "json", "--origin", "https://example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if o.CAFile != "ca.pem" || o.Insecure || strings.Join(o.Headers, "|") != "X-A: 1|X-B: 2" ||
		strings.Join(o.Subprotocols, "|") != "mpp|json" || o.Origin != "https://example.com" {
		t.Fatalf("options %+v", o)
	}
}

func TestInvalidOptionsSayWhy(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	cases := []struct {
		o    connect.Options
		want string
	}{
		{connect.Options{Headers: []string{"NoColon"}}, "want 'Name: value'"},
		{connect.Options{Headers: []string{": v"}}, "want 'Name: value'"},
		{connect.Options{Headers: []string{"Bad Name: v"}}, "not a valid header name"},
		{connect.Options{Headers: []string{"X-A: a\rb"}}, "CR, LF or NUL"},
		{connect.Options{Headers: []string{"Upgrade: h2c"}}, "set by the WebSocket handshake"},
		{connect.Options{Headers: []string{"sec-websocket-protocol: mpp"}}, "use --subprotocol"},
		{connect.Options{Headers: []string{"Host: a", "Host: b"}}, "Host given twice"},
		{connect.Options{Headers: []string{"Origin: https://a.example"}, Origin: "https://b.example"}, "give the Origin once"},
		{connect.Options{Origin: "example.com"}, "want scheme://host"},
		{connect.Options{Origin: "https://example.com/path"}, "want scheme://host"},
		{connect.Options{Subprotocols: []string{"a,b"}}, "repeat the flag"},
		{connect.Options{Subprotocols: []string{""}}, "want a token"},
		{connect.Options{CAFile: notPEM, Insecure: true}, "give one"},
		{connect.Options{CAFile: filepath.Join(dir, "missing.pem")}, "--ca-file"},
		{connect.Options{CAFile: notPEM}, "no PEM certificate"},
	}
	for _, tc := range cases {
		_, err := connect.New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v; want an error mentioning %q", tc.o, err, tc.want)
		}
	}
	if _, err := connect.New(connect.Options{Headers: []string{"X-Token: a:b", "Host: gw.example"}, Origin: "null"}); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

// seen records what reached a TLS test server.
type seen struct {
	mu      sync.Mutex
	headers []http.Header
	hosts   []string
}

func (s *seen) last() (http.Header, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headers[len(s.headers)-1], s.hosts[len(s.hosts)-1]
}

// tlsServer serves WebSocket upgrades (echoing one text frame, with the
// "mpp" subprotocol when offered) and answers other requests 402, over TLS
// with a freshly generated certificate.
func tlsServer(t *testing.T) (wsURL string, cert testcert.Cert, s *seen) {
	cert = testcert.New(t)
	s = &seen{}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.headers, s.hosts = append(s.headers, r.Header.Clone()), append(s.hosts, r.Host)
		s.mu.Unlock()
		if r.Header.Get("Upgrade") == "" {
			w.WriteHeader(http.StatusPaymentRequired)
			return
		}
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true, Subprotocols: []string{"mpp"}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.Write(r.Context(), websocket.MessageText, []byte(ws.Subprotocol()))
		ws.Close(websocket.StatusNormalClosure, "")
	}))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS(t)}}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return "wss" + strings.TrimPrefix(hs.URL, "https"), cert, s
}

func TestDialOverTLS(t *testing.T) {
	url, cert, s := tlsServer(t)
	ca, _, _ := cert.Files(t)
	ctx := context.Background()

	d, err := connect.New(connect.Options{CAFile: ca, Headers: []string{"X-Gateway-Key: k1", "Host: gw.example"},
		Subprotocols: []string{"json", "mpp"}, Origin: "https://app.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ws, _, err := websocket.Dial(ctx, url, d.DialOptions())
	if err != nil {
		t.Fatalf("dial with --ca-file: %v", err)
	}
	_, got, err := ws.Read(ctx)
	ws.CloseNow()
	if err != nil || string(got) != "mpp" || ws.Subprotocol() != "mpp" {
		t.Errorf("negotiated subprotocol %q (server saw %q, %v), want mpp", ws.Subprotocol(), got, err)
	}
	h, host := s.last()
	if h.Get("X-Gateway-Key") != "k1" || h.Get("Origin") != "https://app.example" || h.Get("Sec-WebSocket-Protocol") != "json,mpp" || host != "gw.example" {
		t.Errorf("upgrade headers %v, host %q", h, host)
	}

	resp, err := d.HTTPClient().Get(strings.Replace(url, "wss", "https", 1))
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	resp.Body.Close()
	h, host = s.last()
	if resp.StatusCode != http.StatusPaymentRequired || h.Get("X-Gateway-Key") != "k1" || h.Get("Origin") != "https://app.example" || host != "gw.example" {
		t.Errorf("probe: status %d, headers %v, host %q", resp.StatusCode, h, host)
	}

	plain, err := connect.New(connect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = websocket.Dial(ctx, url, plain.DialOptions())
	if err == nil {
		t.Fatal("dial without the CA succeeded")
	}
	if msg := connect.Explain(err).Error(); !strings.Contains(msg, "certificate") || !strings.Contains(msg, "--ca-file") {
		t.Errorf("error without the CA: %q; want it to name the certificate and --ca-file", msg)
	}

	insecure, err := connect.New(connect.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err = websocket.Dial(ctx, url, insecure.DialOptions())
	if err != nil {
		t.Fatalf("dial with --insecure: %v", err)
	}
	ws.CloseNow()
}

func TestProbeFollowsNoRedirect(t *testing.T) {
	hs := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
	defer hs.Close()
	d, err := connect.New(connect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := d.HTTPClient().Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("probe status %d, want the 302 itself", resp.StatusCode)
	}
}

func TestExplainLeavesOtherErrors(t *testing.T) {
	err := context.DeadlineExceeded
	if connect.Explain(err) != err {
		t.Errorf("Explain changed an unrelated error")
	}
}

func TestProbeURL(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:8402/":          "http://127.0.0.1:8402/",
		"wss://gw.example/pay?x=1#frag": "https://gw.example/pay?x=1",
		"WSS://gw.example/":             "https://gw.example/",
		"http://gw.example/":            "",
		"ws://bad host/":                "",
	} {
		got, err := connect.ProbeURL(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ProbeURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

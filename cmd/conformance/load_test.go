package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mppws/conformance/suite/connect/testcert"
)

// serveHere runs `conformance serve` in this process and returns its URL.
func serveHere(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() { cancel(); <-done })
	url, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("serve %v: %v", args, err)
	}
	go io.Copy(io.Discard, pr)
	return strings.TrimSpace(url)
}

// loadHere runs `conformance load` in this process.
func loadHere(t *testing.T, args ...string) (code int, result map[string]any, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"load"}, args...), &out, &errb)
	if out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &result); err != nil {
			t.Fatalf("load stdout is not JSON: %v\n%s", err, out.String())
		}
	}
	return code, result, errb.String()
}

func TestLoadAgainstServe(t *testing.T) {
	url := serveHere(t, "--tick", "1")
	dir := t.TempDir()
	code, res, stderr := loadHere(t, "--sessions", "20", "--messages", "100", "--rate", "0", "--report-dir", dir, url)
	if code != exitOK || res["passed"] != true || res["messages"].(float64) == 0 {
		t.Fatalf("exit %d, result %v\n%s", code, res, stderr)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil || !strings.Contains(string(html), "need-voucher → resume") {
		t.Fatalf("report.html has no load section (%v)", err)
	}
}

func TestLoadCatchesRacyCharge(t *testing.T) {
	url := serveHere(t, "--tick", "1", "--fault", "racy-charge")
	code, res, stderr := loadHere(t, "--sessions", "30", "--messages", "20", "--voucher-units", "5", url)
	if code != exitFailed || res["passed"] != false || !strings.Contains(stderr, "invariant violated") || !strings.Contains(stderr, "transcript:") {
		t.Fatalf("exit %d, passed %v; want exit 1 with the offending transcript\n%s", code, res["passed"], stderr)
	}
}

func TestLoadOverTLS(t *testing.T) {
	ca, cert, key := testcert.New(t).Files(t)
	url := serveHere(t, "--tick", "1", "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(url, "wss://") {
		t.Fatalf("serve with --tls-cert printed %q, want a wss:// URL", url)
	}
	if code, res, stderr := loadHere(t, "--sessions", "6", "--messages", "100", "--ca-file", ca, url); code != exitOK || res["passed"] != true {
		t.Fatalf("load --ca-file: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := loadHere(t, "--sessions", "6", "--messages", "100", url); code != exitSetup ||
		!strings.Contains(stderr, "certificate") || !strings.Contains(stderr, "--ca-file") {
		t.Fatalf("load without the CA: exit %d, stderr %q; want exit 3 naming the certificate and --ca-file", code, stderr)
	}
	// Load signs from zero: a fresh server.
	url = serveHere(t, "--tick", "1", "--dialect", "b", "--tls-cert", cert, "--tls-key", key)
	if code, res, stderr := loadHere(t, "--sessions", "6", "--messages", "100", "--insecure", url); code != exitOK || res["dialect"] != "B" {
		t.Fatalf("load --insecure: exit %d, dialect %v\n%s", code, res["dialect"], stderr)
	}
}

func TestLoadAndTLSUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"load"}, "exactly one"},
		{[]string{"load", "http://127.0.0.1:1/"}, "ws:// or wss://"},
		{[]string{"load", "--sessions", "0", "ws://127.0.0.1:1/"}, "sessions"},
		{[]string{"load", "--duration", "0", "ws://127.0.0.1:1/"}, "duration"},
		{[]string{"load", "--dialect", "c", "ws://127.0.0.1:1/"}, "--dialect"},
		{[]string{"load", "--header", "NoColon", "ws://127.0.0.1:1/"}, "--header"},
		{[]string{"load", "--ca-file", "/no/such/ca.pem", "ws://127.0.0.1:1/"}, "--ca-file"},
		{[]string{"serve", "--tls-cert", "cert.pem"}, "go together"},
		{[]string{"serve", "--tls-cert", "/no/cert.pem", "--tls-key", "/no/key.pem"}, "--tls-cert"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("conformance %v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errb.String(), tc.want)
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"load", "ws://127.0.0.1:1/"}, &out, &errb); code != exitSetup {
		t.Errorf("load of a closed port: exit %d, want 3: %s", code, errb.String())
	}
}

// TestSuiteOverTLS runs the suite against the reference behind TLS with a
// certificate of a test CA: trusted with --ca-file or --insecure, refused
// (exit 3, naming the certificate) without.
func TestSuiteOverTLS(t *testing.T) {
	ca, cert, key := testcert.New(t).Files(t)
	url := serveHere(t, "--tls-cert", cert, "--tls-key", key)
	if code, stdout, stderr := cli(t, "--ca-file", ca, "--header", "X-Gateway: conformance", url, "wire"); code != exitOK {
		t.Fatalf("suite --ca-file: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, stderr := cli(t, "--insecure", url, "WS-WIRE-001", "WS-WIRE-002"); code != exitOK {
		t.Fatalf("suite --insecure: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, _, stderr := cli(t, url, "wire"); code != exitSetup || !strings.Contains(stderr, "certificate") || !strings.Contains(stderr, "--ca-file") {
		t.Fatalf("suite without the CA: exit %d, stderr %q; want exit 3 naming the certificate and --ca-file", code, stderr)
	}
}

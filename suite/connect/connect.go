// Package connect holds how to reach a real target: the certificates to
// trust for wss://, extra headers on the WebSocket upgrade and on dialect
// B's HTTP probe, the subprotocols to offer and an Origin. Targets in CI
// often sit behind TLS with a self-signed certificate, or behind a gateway
// that wants a header.
package connect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/coder/websocket"
)

// Options are the connection settings as given on a command line.
type Options struct {
	// CAFile is a PEM file of certificates trusted for wss://, besides
	// the system's.
	CAFile string
	// Insecure skips verifying the target's certificate (h2spec -k).
	Insecure bool
	// Headers are extra "Name: value" headers, sent on the upgrade and on
	// the dialect B probe.
	Headers []string
	// Subprotocols are offered in Sec-WebSocket-Protocol, in order.
	Subprotocols []string
	// Origin is sent as the Origin header on the upgrade and the probe.
	Origin string
}

// Register adds --ca-file, --insecure, --header, --subprotocol and
// --origin to fs.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.CAFile, "ca-file", "", "PEM file of CA certificates to trust for wss:// targets, besides the system's")
	fs.BoolVar(&o.Insecure, "insecure", false, "wss://: do not verify the target's certificate")
	fs.Var((*list)(&o.Headers), "header", "extra header 'Name: value' on the WebSocket upgrade and the dialect B probe (repeatable)")
	fs.Var((*list)(&o.Subprotocols), "subprotocol", "WebSocket subprotocol to offer (repeatable, in order of preference)")
	fs.StringVar(&o.Origin, "origin", "", "Origin header on the WebSocket upgrade and the dialect B probe")
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ", ") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

// Dialer is a validated set of Options, ready to dial. It is safe for
// concurrent use.
type Dialer struct {
	header       http.Header
	host         string
	subprotocols []string
	transport    *http.Transport
}

// handshakeHeaders are written by the WebSocket handshake itself; a second
// value would break it.
var handshakeHeaders = map[string]string{
	"Connection":               "",
	"Upgrade":                  "",
	"Sec-Websocket-Key":        "",
	"Sec-Websocket-Version":    "",
	"Sec-Websocket-Extensions": "",
	"Sec-Websocket-Accept":     "",
	"Sec-Websocket-Protocol":   " (use --subprotocol)",
	"Content-Length":           "",
	"Transfer-Encoding":        "",
}

// New validates o and reads its CA file.
func New(o Options) (*Dialer, error) {
	var errs []error
	d := &Dialer{header: http.Header{}}
	for _, h := range o.Headers {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok || name == "":
			errs = append(errs, fmt.Errorf("--header %q: want 'Name: value'", h))
			continue
		case !isToken(name):
			errs = append(errs, fmt.Errorf("--header %q: %q is not a valid header name", h, name))
			continue
		case strings.ContainsAny(value, "\r\n\x00"):
			errs = append(errs, fmt.Errorf("--header %q: the value may not contain CR, LF or NUL", h))
			continue
		}
		canonical := http.CanonicalHeaderKey(name)
		if why, reserved := handshakeHeaders[canonical]; reserved {
			errs = append(errs, fmt.Errorf("--header %q: %s is set by the WebSocket handshake%s", h, canonical, why))
			continue
		}
		if canonical == "Host" {
			if d.host != "" {
				errs = append(errs, fmt.Errorf("--header %q: Host given twice", h))
			}
			d.host = value
			continue
		}
		d.header.Add(canonical, value)
	}
	switch {
	case o.Origin == "":
	case d.header.Get("Origin") != "":
		errs = append(errs, errors.New("--origin and --header Origin: give the Origin once"))
	case !validOrigin(o.Origin):
		errs = append(errs, fmt.Errorf("--origin %q: want scheme://host[:port], like https://example.com, or null", o.Origin))
	default:
		d.header.Set("Origin", o.Origin)
	}
	for _, p := range o.Subprotocols {
		if err := CheckSubprotocol(p); err != nil {
			errs = append(errs, err)
		}
	}
	d.subprotocols = append([]string(nil), o.Subprotocols...)
	if o.CAFile != "" && o.Insecure {
		errs = append(errs, errors.New("--ca-file and --insecure: give one (--insecure trusts any certificate)"))
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure}
	if o.CAFile != "" {
		pool, err := trust(o.CAFile)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.RootCAs = pool
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d.transport = http.DefaultTransport.(*http.Transport).Clone()
	d.transport.TLSClientConfig = cfg
	// Many sessions probe one target at once; keep their connections.
	d.transport.MaxIdleConnsPerHost = 64
	return d, nil
}

// trust returns the system pool plus the certificates of a PEM file.
func trust(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// CheckSubprotocol says why p cannot be a --subprotocol, if it cannot: a
// subprotocol is a token, and a comma would split it in two on the wire.
func CheckSubprotocol(p string) error {
	if !isToken(p) {
		return fmt.Errorf("--subprotocol %q: want a token (letters, digits and !#$%%&'*+-.^_`|~); repeat the flag to give several", p)
	}
	return nil
}

// validOrigin reports whether s is an RFC 6454 serialized origin.
func validOrigin(s string) bool {
	if s == "null" {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && u.Host != "" && u.User == nil && (u.Path == "" || u.Path == "/") && u.RawQuery == ""
}

// isToken reports whether s is an RFC 9110 token, as header names and
// subprotocols must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// DialOptions returns options for websocket.Dial carrying the TLS
// settings, headers, Origin and subprotocols. Each call returns a new
// value the caller may change.
func (d *Dialer) DialOptions() *websocket.DialOptions {
	return &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: d.transport},
		HTTPHeader:   d.header.Clone(),
		Host:         d.host,
		Subprotocols: append([]string(nil), d.subprotocols...),
	}
}

// HTTPClient returns the client for dialect B's probe, the GET of the
// socket URL's http(s) twin: it sends the headers and Origin with every
// request and follows no redirect, since the probe must answer 402 itself.
func (d *Dialer) HTTPClient() *http.Client {
	return &http.Client{
		Transport:     headerTransport{d: d},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TLSConfig is the TLS configuration of every dial, for clients that speak
// WebSocket by hand.
func (d *Dialer) TLSConfig() *tls.Config { return d.transport.TLSClientConfig.Clone() }

// Close closes the idle connections of the probe client.
func (d *Dialer) Close() { d.transport.CloseIdleConnections() }

// headerTransport adds the Dialer's headers to each request. Headers the
// caller set win, so a per-request header such as Payment-Session can
// still be set.
type headerTransport struct{ d *Dialer }

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.d.header {
		if _, set := r.Header[k]; !set {
			r.Header[k] = v
		}
	}
	if t.d.host != "" {
		r.Host = t.d.host
	}
	return t.d.transport.RoundTrip(r)
}

// ProbeURL is the URL of dialect B's probe: the socket URL's http(s)
// twin, same host, path and query.
func ProbeURL(ws string) (string, error) {
	u, err := url.Parse(ws)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", ws, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("url %q: want ws:// or wss://", ws)
	}
	u.Fragment = ""
	return u.String(), nil
}

// Explain adds what to do to an error caused by a certificate that does
// not verify; other errors come back unchanged.
func Explain(err error) error {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &host):
		return fmt.Errorf("%w (the target's certificate does not cover this host name: use a name it covers, or --insecure)", err)
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &invalid):
		return fmt.Errorf("%w (the target's certificate does not verify: pass --ca-file with the CA that signed it, or --insecure)", err)
	}
	return err
}

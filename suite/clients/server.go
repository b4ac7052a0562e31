package clients

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// The scripted server: one per case run, behind one URL. It issues real
// HMAC-bound challenges (in-band in dialect A, from HTTP probes in dialect
// B), verifies every credential the client sends (echo, EIP-712 signature
// recovery, domain, low-s, descriptor, source) and keeps the channel
// accounts of the case, fresh for every case. What it sends is the case's
// script; what it found is the case's Record.

// realm of every challenge the scripted server issues.
const realm = "mpp-client-conformance"

// maxConns bounds the connections one case serves, so a client that
// reconnects in a loop ends the case instead of spinning it.
const maxConns = 8

// Offer is what a case's challenges sell: the terms a fixture channel must
// match and the price of one unit.
type Offer struct {
	Protocol tempo.Protocol
	ChainID  uint64
	Escrow   tempo.Address
	Payee    tempo.Address
	Token    tempo.Address
	Tick     *big.Int
}

// offerFor takes the terms of the first channel of protocol p.
func offerFor(p tempo.Protocol, chs []fixtures.Channel) (Offer, bool) {
	for _, ch := range chs {
		if ch.Protocol == p {
			return Offer{Protocol: p, ChainID: ch.ChainID, Escrow: ch.Escrow, Payee: ch.Payee, Token: ch.Token, Tick: big.NewInt(1000)}, true
		}
	}
	return Offer{}, false
}

// request is the challenge's session request. A v1 offer names no
// sessionProtocol, as mpp-rs servers emit it (protocol.md §6.1).
func (o Offer) request() tempo.SessionRequest {
	md := tempo.MethodDetails{ChainID: o.ChainID, EscrowContract: o.Escrow.String(), MinVoucherDelta: "0"}
	if o.Protocol == tempo.V2 {
		md.SessionProtocol = tempo.V2
	}
	return tempo.SessionRequest{Amount: o.Tick.String(), Currency: o.Token.String(), Recipient: o.Payee.String(),
		UnitType: "message", MethodDetails: md}
}

// matches reports whether ch can pay this offer.
func (o Offer) matches(ch fixtures.Channel) bool {
	return ch.Protocol == o.Protocol && ch.ChainID == o.ChainID && ch.Escrow == o.Escrow && ch.Payee == o.Payee && ch.Token == o.Token
}

// chanState is the scripted server's account of one channel in one case.
type chanState struct {
	ch       fixtures.Channel
	accepted *big.Int // highest voucher taken
	signed   *big.Int // highest amount the client signed, taken or not
	spent    *big.Int
	units    uint64
}

// caseRun is one run of one case: its scripted server and its record.
type caseRun struct {
	c      *Case
	o      *options
	rec    *Record
	secret []byte
	offer  Offer
	ctx    context.Context

	mu          sync.Mutex
	issued      map[string]mpp.Challenge
	newestProbe string
	chans       map[tempo.Hash]*chanState
	nconn       int
	open        int           // connections not yet ended
	idle        chan struct{} // signalled when a connection ends
	touched     chan struct{} // closed at the client's first probe or connection
	touchOnce   sync.Once
	wg          sync.WaitGroup
}

func newCaseRun(ctx context.Context, c *Case, o *options, offer Offer) *caseRun {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return &caseRun{c: c, o: o, rec: newRecord(), secret: secret, offer: offer, ctx: ctx,
		issued: map[string]mpp.Challenge{}, chans: map[tempo.Hash]*chanState{}, idle: make(chan struct{}, 1),
		touched: make(chan struct{})}
}

// issue makes a fresh challenge for the offer, with a random opaque nonce
// the client must echo, living ttl (0: the SDK default of five minutes).
func (cr *caseRun) issue(ttl time.Duration) (mpp.Challenge, error) {
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	if ttl == 0 {
		ttl = mpp.DefaultTTL
	}
	p := mpp.ChallengeParams{
		Realm: realm, Method: "tempo", Intent: "session", Request: cr.offer.request(),
		Opaque:  map[string]string{"case": cr.c.ID, "nonce": base64.RawURLEncoding.EncodeToString(nonce[:])},
		Expires: time.Now().Add(ttl),
	}
	if cr.c.Challenge != nil {
		cr.c.Challenge(&p)
	}
	ch, err := mpp.NewChallenge(cr.secret, p)
	if err != nil {
		return mpp.Challenge{}, fmt.Errorf("issue challenge: %w", err)
	}
	cr.mu.Lock()
	cr.issued[ch.ID] = ch
	cr.mu.Unlock()
	return ch, nil
}

// issuedChallenge returns the challenge issued under id.
func (cr *caseRun) issuedChallenge(id string) mpp.Challenge {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.issued[id]
}

// ServeHTTP serves the case's URL: a WebSocket upgrade runs the script on a
// new connection; in dialect B a plain GET is the 402 probe.
func (cr *caseRun) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		if !cr.o.b() || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			cr.rec.line("http", received, fmt.Sprintf("%s %s (not a WebSocket upgrade): 426", r.Method, r.URL.Path))
			http.Error(w, "this case is served over a WebSocket", http.StatusUpgradeRequired)
			return
		}
		cr.probe(w, r)
		return
	}
	cr.mu.Lock()
	if cr.nconn >= maxConns {
		cr.mu.Unlock()
		cr.rec.Note("connection refused: the case served %d already", maxConns)
		http.Error(w, "too many connections for one case", http.StatusServiceUnavailable)
		return
	}
	cr.nconn++
	cr.open++
	n := cr.nconn
	cr.wg.Add(1)
	cr.mu.Unlock()
	defer cr.wg.Done()
	defer cr.connEnded()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true, Subprotocols: cr.o.subprotocols})
	if err != nil {
		cr.rec.Note("upgrade of c%d failed: %v", n, err)
		return
	}
	ws.SetReadLimit(1 << 20)
	c := newConn(cr, ws, n)
	defer c.stop()
	cr.rec.line(c.name, note, "client connected to "+r.URL.Path+subprotocolNote(r.Header, cr.o.subprotocols, ws.Subprotocol()))
	if cr.c.Script != nil {
		cr.c.Script(c)
	} else {
		honest(c)
	}
	c.drain()
}

// subprotocolNote says which subprotocols the client offered and which one
// was selected, so a client that insists on one can tell why it was or was
// not served with it; "" when neither the client nor the suite named any.
func subprotocolNote(h http.Header, accepted []string, selected string) string {
	var offered []string
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				offered = append(offered, p)
			}
		}
	}
	if len(offered) == 0 && len(accepted) == 0 {
		return ""
	}
	s := "; offered no subprotocol"
	if len(offered) > 0 {
		s = "; offered subprotocols " + strings.Join(offered, ", ")
	}
	switch {
	case selected != "":
		return s + "; selected " + selected
	case len(accepted) == 0:
		return s + "; selected none (the suite accepts none: see --subprotocol)"
	}
	return s + "; selected none (the suite accepts " + strings.Join(accepted, ", ") + ")"
}

func (cr *caseRun) connEnded() {
	cr.mu.Lock()
	cr.open--
	cr.mu.Unlock()
	select {
	case cr.idle <- struct{}{}:
	default:
	}
}

// conns returns how many connections the case has served and how many are
// still open.
func (cr *caseRun) conns() (served, open int) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.nconn, cr.open
}

// probe answers a dialect B probe with 402 and a fresh challenge.
func (cr *caseRun) probe(w http.ResponseWriter, r *http.Request) {
	n := len(cr.rec.Probes())
	ttl := time.Duration(0)
	if cr.c.ProbeTTL != nil {
		ttl = cr.o.scaled(cr.c.ProbeTTL(n))
	}
	ch, err := cr.issue(ttl)
	var h string
	if err == nil {
		h, err = mpp.FormatChallenge(ch)
	}
	if err != nil {
		cr.rec.Note("probe: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	hint := r.Header.Get("Payment-Session")
	cr.mu.Lock()
	cr.newestProbe = ch.ID
	cr.rec.probes = append(cr.rec.probes, Probe{At: cr.rec.since(), Session: hint, Issued: ch.ID})
	cr.mu.Unlock()
	desc := fmt.Sprintf("%s %s", r.Method, r.URL.RequestURI())
	if hint != "" {
		desc += " Payment-Session: " + hint
	}
	cr.rec.line("http", received, desc)
	cr.rec.line("http", sent, "402 WWW-Authenticate: "+h)
	w.Header().Set("WWW-Authenticate", h)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPaymentRequired)
}

// channel returns the case's account of a fixture channel, opening it fresh.
func (cr *caseRun) channel(ch fixtures.Channel) *chanState {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	st, ok := cr.chans[ch.ID]
	if !ok {
		st = &chanState{ch: ch, accepted: new(big.Int), signed: new(big.Int), spent: new(big.Int)}
		cr.chans[ch.ID] = st
	}
	return st
}

// verify parses and checks one credential the client sent on c. It never
// rejects: it records what it found, for the case to judge.
func (cr *caseRun) verify(c *Conn, raw string) *Cred {
	cred := &Cred{Conn: c.n, At: cr.rec.since(), Raw: raw, Required: c.required}
	cr.mu.Lock()
	cred.Seq = len(cr.rec.creds)
	cr.mu.Unlock()
	defer func() {
		cr.rec.addCred(cred)
		cr.rec.line(c.name, note, "verified: "+cred.findings())
	}()
	cred.Parsed, cred.ParseErr = mpp.ParseAuthorization(raw)
	if cred.ParseErr != nil {
		return cred
	}
	echo := cred.Parsed.Challenge
	cr.mu.Lock()
	issued, ok := cr.issued[echo.ID]
	newestProbe := cr.newestProbe
	cr.mu.Unlock()
	switch {
	case !ok:
		cred.EchoErr = fmt.Errorf("echoes challenge id %q, which this server never issued", echo.ID)
	default:
		cred.Issued = &issued
		cred.EchoErr = echoDiff(issued, echo)
		if cred.EchoErr == nil && !echo.VerifyID(cr.secret) {
			cred.EchoErr = errors.New("the echoed id is not the HMAC of the echoed fields")
		}
		if exp, err := issued.ExpiresAt(); err == nil && time.Now().After(exp) {
			cred.Expired = true
		}
		if cr.o.b() {
			cred.Newest = issued.ID == newestProbe
		} else {
			cred.Newest = len(c.issued) > 0 && c.issued[len(c.issued)-1].ID == issued.ID
		}
	}
	cred.Payload, cred.PayloadErr = tempo.DecodeVoucherPayload(cred.Parsed.Payload)
	if cred.PayloadErr != nil {
		return cred
	}
	id, err := tempo.ParseHash(cred.Payload.ChannelID)
	if err != nil {
		cred.PayloadErr = fmt.Errorf("channelId: %w", err)
		return cred
	}
	for _, ch := range cr.o.channels {
		if ch.ID == id {
			cred.Channel = &ch
			break
		}
	}
	if cred.Channel == nil {
		cred.PayloadErr = fmt.Errorf("channel %s is not one of the fixture channels", id)
		return cred
	}
	ch := *cred.Channel
	if cred.Amount, err = tempo.ParseAmount(cred.Payload.CumulativeAmount, ch.Protocol); err != nil {
		cred.PayloadErr = fmt.Errorf("cumulativeAmount: %w", err)
		cred.Amount = nil
		return cred
	}
	cred.SigErr, cred.HighS = checkSignature(ch, cred.Amount, cred.Payload.Signature)
	if ch.Protocol == tempo.V2 {
		want := tempo.DescriptorOf(ch.Channel)
		switch d := cred.Payload.Descriptor; {
		case d == nil:
			cred.DescErr = errors.New("a v2 payload without the channel descriptor")
		case !sameDescriptor(*d, want):
			cred.DescErr = fmt.Errorf("descriptor %+v, the channel's is %+v", *d, want)
		}
	}
	cred.SourceErr = sourceErr(cred.Parsed.Source, ch)
	st := cr.channel(ch)
	cr.mu.Lock()
	cred.Delivered, cred.Signed = st.units, new(big.Int).Set(st.signed)
	if cred.Amount.Cmp(st.signed) > 0 && cred.Payload.Action == "voucher" {
		st.signed.Set(cred.Amount)
	}
	cr.mu.Unlock()
	return cred
}

// echoDiff names the echoed parameters that differ from the issued
// challenge. Description is not bound by the HMAC and may be left out.
func echoDiff(issued, echo mpp.Challenge) error {
	var diff []string
	for _, f := range []struct{ name, want, got string }{
		{"realm", issued.Realm, echo.Realm}, {"method", issued.Method, echo.Method},
		{"intent", issued.Intent, echo.Intent}, {"request", issued.Request, echo.Request},
		{"expires", issued.Expires, echo.Expires}, {"digest", issued.Digest, echo.Digest},
		{"opaque", issued.Opaque, echo.Opaque},
	} {
		if f.want != f.got {
			diff = append(diff, fmt.Sprintf("%s %q (issued %q)", f.name, f.got, f.want))
		}
	}
	if echo.Description != "" && echo.Description != issued.Description {
		diff = append(diff, fmt.Sprintf("description %q (issued %q)", echo.Description, issued.Description))
	}
	if len(diff) > 0 {
		return fmt.Errorf("the echo differs from the issued challenge: %s", strings.Join(diff, "; "))
	}
	return nil
}

// checkSignature verifies a voucher signature on its low-s form, so a
// high-s encoding and a wrong domain or signer are told apart.
func checkSignature(ch fixtures.Channel, amount *big.Int, sigHex string) (err error, highS bool) {
	sig, err := tempo.ParseSignature(sigHex)
	if err != nil {
		return err, false
	}
	if _, err := tempo.RecoverVoucherSigner(ch.Domain(), ch.ID, amount, sig); errors.Is(err, tempo.ErrHighS) {
		highS = true
		sig = lowS(sig)
	}
	got, err := tempo.RecoverVoucherSigner(ch.Domain(), ch.ID, amount, sig)
	if err == nil && got == ch.Signer() {
		return nil, highS
	}
	// Say which domain it was signed under, if another one.
	other := ch.Domain()
	other.Protocol = map[tempo.Protocol]tempo.Protocol{tempo.V1: tempo.V2, tempo.V2: tempo.V1}[ch.Protocol]
	if g, e := tempo.RecoverVoucherSigner(other, ch.ID, amount, sig); e == nil && g == ch.Signer() {
		return fmt.Errorf("signed under the %s domain, but the channel is %s (%s)", other.Protocol, ch.Protocol, domainName(ch.Protocol)), highS
	}
	if err != nil {
		return err, highS
	}
	return fmt.Errorf("recovers to %s, not the channel signer %s under the %s domain (chain %d, escrow %s)",
		got, ch.Signer(), ch.Protocol, ch.ChainID, ch.Escrow), highS
}

func domainName(p tempo.Protocol) string {
	if p == tempo.V1 {
		return "Tempo Stream Channel"
	}
	return "TIP20 Channel Reserve"
}

// lowS returns the other encoding of a signature: (r, N−s) with v flipped.
func lowS(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	var s secp256k1.ModNScalar
	s.SetByteSlice(out[32:64])
	s.Negate()
	b := s.Bytes()
	copy(out[32:64], b[:])
	out[64] = 27 + 28 - out[64] // v: 27 ↔ 28
	return out
}

func sameDescriptor(a, b tempo.Descriptor) bool {
	return strings.EqualFold(a.Payer, b.Payer) && strings.EqualFold(a.Payee, b.Payee) &&
		strings.EqualFold(a.Operator, b.Operator) && strings.EqualFold(a.Token, b.Token) &&
		strings.EqualFold(a.Salt, b.Salt) && strings.EqualFold(a.AuthorizedSigner, b.AuthorizedSigner) &&
		strings.EqualFold(a.ExpiringNonceHash, b.ExpiringNonceHash)
}

// sourceErr requires did:pkh:eip155:<chainId>:<payer or signer>.
func sourceErr(src string, ch fixtures.Channel) error {
	if src == "" {
		return errors.New("no source")
	}
	prefix := fmt.Sprintf("did:pkh:eip155:%d:", ch.ChainID)
	if !strings.HasPrefix(src, prefix) {
		return fmt.Errorf("source %q, want %s<payer>", src, prefix)
	}
	addr, err := tempo.ParseAddress(strings.TrimPrefix(src, prefix))
	if err != nil || (addr != ch.Payer && addr != ch.Signer()) {
		return fmt.Errorf("source %q names neither the payer %s nor the signer %s", src, ch.Payer, ch.Signer())
	}
	return nil
}

// mustEncode encodes a frame of the scripted server. A frame it cannot
// encode is a bug in a case script: it panics, and the case reports it.
func mustEncode(d frame.Dialect, f frame.Frame) []byte {
	b, err := d.Encode(f)
	if err != nil {
		panic(fmt.Sprintf("case script: encode %s: %v", f.Kind, err))
	}
	return b
}

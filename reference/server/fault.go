package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/mppws/conformance/reference/channel"
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/tempo"
)

// Fault is one deliberate defect injected into the reference server: a
// "mutant". The conformance suite proves it can fail by running against each
// mutant and requiring the case IDs expected to catch it to fail.
type Fault string

// The mutants. Each comment says what the server does wrong.
const (
	FaultNone Fault = ""
	// FaultForgedID skips the challenge-id HMAC check and the check that the
	// id was issued on this connection.
	FaultForgedID Fault = "accept-forged-id"
	// FaultSkipEcho verifies only the id against the issued challenge and
	// never compares the echoed realm, method, intent, request and expires.
	FaultSkipEcho Fault = "skip-echo-compare"
	// FaultOtherConnection accepts a verified challenge issued on another
	// connection.
	FaultOtherConnection Fault = "accept-other-connection"
	// FaultExpired accepts expired challenges.
	FaultExpired Fault = "accept-expired"
	// FaultOverDeliver delivers one unit beyond what was paid at the first
	// shortage.
	FaultOverDeliver Fault = "over-deliver"
	// FaultNoNeedVoucher never sends needVoucher; a short stream just stalls.
	FaultNoNeedVoucher Fault = "no-need-voucher"
	// FaultWrongRequired sends requiredCumulative = spent, one tick short.
	FaultWrongRequired Fault = "wrong-required-cumulative"
	// FaultNonIncreasing treats an equal or decreasing voucher as paying for
	// one more unit.
	FaultNonIncreasing Fault = "accept-non-increasing"
	// FaultOverDeposit ignores the deposit when accepting vouchers.
	FaultOverDeposit Fault = "accept-over-deposit"
	// FaultWrongSigner accepts a voucher signed by any key.
	FaultWrongSigner Fault = "accept-wrong-signer"
	// FaultWrongSpent reports spent one tick low in the receipt.
	FaultWrongSpent Fault = "wrong-receipt-spent"
	// FaultSnakeCase writes snake_case field names in needVoucher and
	// receipt frames.
	FaultSnakeCase Fault = "snake-case-fields"
	// FaultDropNonJSON drops the connection on a frame that is not JSON.
	FaultDropNonJSON Fault = "drop-on-non-json"
	// FaultDoubleCharge charges two ticks for every unit delivered.
	FaultDoubleCharge Fault = "double-charge"
	// FaultWrongChannel accepts a voucher for another channel as paying for
	// the metered one.
	FaultWrongChannel Fault = "accept-wrong-channel"
	// FaultRacyCharge checks a channel's balance and deducts a unit in two
	// steps, so connections metering one channel at once can spend the same
	// funds: it over-delivers only under concurrency.
	FaultRacyCharge Fault = "racy-charge"

	// Dialect B mutants.

	// FaultLongCloseReason closes a rejected connection with the whole
	// problem as the reason, over RFC 6455's 123 bytes: the close fails and
	// the socket stays open (mppx bug B1).
	FaultLongCloseReason Fault = "long-close-reason"
	// FaultMessageBeforeReceipt starts the stream before the first receipt.
	FaultMessageBeforeReceipt Fault = "message-before-receipt"
	// FaultCloseReadySpent reports one tick more in close-ready than was
	// spent.
	FaultCloseReadySpent Fault = "close-ready-over-spent"
	// FaultGreeting answers the upgrade with a 402 payment-error before the
	// client has authorized anything, as if the socket were an HTTP route.
	FaultGreeting Fault = "greet-before-authorization"

	// Challenges.

	// FaultChallengeOnce guards the challenge with one server-wide sync.Once
	// instead of one per connection: only the first connection is
	// challenged, later ones wait in silence (dialect A).
	FaultChallengeOnce Fault = "challenge-once"
	// FaultPaddedID writes challenge ids in padded base64url (44 characters
	// ending in "="), and verifies them in that form.
	FaultPaddedID Fault = "padded-challenge-id"
	// FaultNonCanonicalRequest encodes the challenge request as json.Encoder
	// does, with a trailing newline: not RFC 8785 canonical JSON.
	FaultNonCanonicalRequest Fault = "non-canonical-request"
	// FaultExpiresAtIssue sets a challenge's expires to the moment it is
	// issued, the TTL forgotten: every challenge arrives expired.
	FaultExpiresAtIssue Fault = "expires-at-issue"
	// FaultLooseBinding computes challenge ids over realm, method, intent and
	// request only, and checks expires only when an echo carries one (the
	// spec calls it optional): a client may extend or drop expires and
	// rewrite opaque.
	FaultLooseBinding Fault = "loose-challenge-binding"
	// FaultFractionalDelta writes the session request's minVoucherDelta as a
	// token amount with a decimal point ("0.0"), not a decimal string of
	// base units.
	FaultFractionalDelta Fault = "fractional-min-voucher-delta"

	// Frames.

	// FaultNumericData sends message data as a JSON number (the unit's
	// index), not a string.
	FaultNumericData Fault = "numeric-message-data"
	// FaultUnixTimestamp writes receipt timestamps as Unix seconds, not
	// RFC 3339.
	FaultUnixTimestamp Fault = "unix-receipt-timestamp"
	// FaultErrorObject sends the problem as a JSON object in error frames
	// (dialect A's error, dialect B's message) instead of a string.
	FaultErrorObject Fault = "error-object"
	// FaultDenyUnknownFields rejects a credential whose JSON has members
	// other than challenge, payload and source, as serde's
	// deny_unknown_fields would.
	FaultDenyUnknownFields Fault = "deny-unknown-fields"
	// FaultEchoMessages echoes every client message frame back, paid or not.
	FaultEchoMessages Fault = "echo-client-messages"
	// FaultIgnoreMalformed drops a credential that does not parse without a
	// word: no error frame, no payment-error, no close.
	FaultIgnoreMalformed Fault = "ignore-malformed-credential"

	// Metering and vouchers.

	// FaultUnitAfterAsk sends one unit on credit right after the first
	// needVoucher of a connection, before any voucher pays for it.
	FaultUnitAfterAsk Fault = "unit-after-need-voucher"
	// FaultPartialTick charges what is left when the balance is short of a
	// tick, and delivers the unit for it.
	FaultPartialTick Fault = "charge-partial-tick"
	// FaultHighS normalizes a high-s (malleated) voucher signature instead of
	// rejecting it, as mppx 0.11 does.
	FaultHighS Fault = "accept-high-s"
	// FaultLenientAmount parses cumulativeAmount as Go's big.Int does with
	// base 0, after trimming spaces: "+5", "0x1f" and " 5" pass.
	FaultLenientAmount Fault = "lenient-amount"
	// FaultAnyChain takes a voucher signed for any Tempo chain (mainnet or
	// testnet), not only for its own channel's.
	FaultAnyChain Fault = "accept-any-chain"
	// FaultRefundOnDrop gives a channel back the units a connection
	// delivered when that connection drops mid-stream.
	FaultRefundOnDrop Fault = "refund-on-drop"
	// FaultUnknownChannel serves an opening voucher for a channel the
	// ledger does not hold from a known channel of the same payer, paying
	// out the units its amount covers on credit, unverified.
	FaultUnknownChannel Fault = "unknown-channel-by-payer"

	// Robustness.

	// FaultWedge reports a frame it cannot decode on an unbuffered channel
	// nobody reads: the connection's reader blocks for good, so the
	// connection stays open but never reads again (no pongs, no
	// credentials).
	FaultWedge Fault = "wedge-on-bad-frame"
	// FaultBinaryAsText reads a binary frame as the text it carries, as mppx
	// does, in dialect A.
	FaultBinaryAsText Fault = "binary-as-text"
	// FaultCrashOnOversize reads frames of any size and, given one over the
	// frame limit, dies as from an unrecovered panic instead of closing that
	// one connection with 1009: every connection drops and no new one is
	// served.
	FaultCrashOnOversize Fault = "crash-on-oversize-frame"
	// FaultCrashOnReject dies the same way in its rejection path, at the
	// first credential or frame it refuses.
	FaultCrashOnReject Fault = "crash-on-rejection"
	// FaultSerialStreams runs one paid stream at a time: a stream holds a
	// server-wide lock until its connection ends, and a dialect A
	// connection, left open after its receipt as mpp-rs leaves it, ends
	// when the client leaves.
	FaultSerialStreams Fault = "serial-streams"
	// FaultGlobalWriteLock writes to every WebSocket of the server under one
	// server-wide lock, held for the whole socket write, the library's pongs
	// included: once a peer that stops reading has filled its socket, the
	// write blocked on it holds every other connection's writes until it
	// fails. A dialect A connection stays open after its receipt, as mpp-rs
	// leaves it, until the client leaves.
	FaultGlobalWriteLock Fault = "global-write-lock"
	// FaultConnectionCap serves at most connectionCap WebSockets at once and
	// answers 503 beyond: far below the load a server must take.
	FaultConnectionCap Fault = "connection-cap"
)

// connectionCap is FaultConnectionCap's limit.
const connectionCap = 32

// tempoChains are the chain ids FaultAnyChain takes vouchers for: Tempo
// mainnet and testnet.
var tempoChains = []uint64{4217, 42431}

// Faults lists every mutant, in a stable order.
var Faults = []Fault{
	FaultForgedID, FaultSkipEcho, FaultOtherConnection, FaultExpired,
	FaultOverDeliver, FaultNoNeedVoucher, FaultWrongRequired, FaultNonIncreasing,
	FaultOverDeposit, FaultWrongSigner, FaultWrongSpent, FaultSnakeCase,
	FaultDropNonJSON, FaultDoubleCharge, FaultWrongChannel, FaultRacyCharge,
	FaultLongCloseReason, FaultMessageBeforeReceipt, FaultCloseReadySpent, FaultGreeting,
	FaultChallengeOnce, FaultPaddedID, FaultNonCanonicalRequest, FaultExpiresAtIssue,
	FaultLooseBinding, FaultFractionalDelta,
	FaultNumericData, FaultUnixTimestamp, FaultErrorObject, FaultDenyUnknownFields,
	FaultEchoMessages, FaultIgnoreMalformed,
	FaultUnitAfterAsk, FaultPartialTick, FaultHighS, FaultLenientAmount, FaultAnyChain,
	FaultRefundOnDrop, FaultUnknownChannel,
	FaultWedge, FaultBinaryAsText, FaultCrashOnOversize, FaultCrashOnReject, FaultSerialStreams,
	FaultGlobalWriteLock, FaultConnectionCap,
}

// Valid reports whether f is a known mutant.
func (f Fault) Valid() bool {
	for _, k := range Faults {
		if k == f {
			return true
		}
	}
	return false
}

// snakeCase is FaultSnakeCase: a dialect whose needVoucher and receipt
// frames use snake_case field names, as a serde default would.
type snakeCase struct{ frame.Dialect }

func (d snakeCase) Encode(f frame.Frame) ([]byte, error) {
	b, err := d.Dialect.Encode(f)
	if err != nil || (f.Kind != frame.KindNeedVoucher && f.Kind != frame.KindReceipt) {
		return b, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return json.Marshal(snakeKeys(v))
}

func snakeKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			out[snake(k)] = snakeKeys(val)
		}
		return out
	case []any:
		for i := range t {
			t[i] = snakeKeys(t[i])
		}
	}
	return v
}

func snake(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// faultState is what a mutant remembers across the connections of one
// server.
type faultState struct {
	challenged atomic.Bool  // FaultChallengeOnce: the one challenge went out
	serial     sync.Mutex   // FaultSerialStreams: held by the running stream
	writes     sync.Mutex   // FaultGlobalWriteLock: held by every socket write
	conns      atomic.Int32 // FaultConnectionCap: WebSockets open
}

// wrap applies the frame-encoding mutants to a dialect.
func (f Fault) wrap(d frame.Dialect) frame.Dialect {
	switch f {
	case FaultSnakeCase:
		return snakeCase{d}
	case FaultErrorObject:
		return errorObject{d}
	}
	return d
}

// errorObject is FaultErrorObject: a dialect whose error frames carry the
// problem as an object.
type errorObject struct{ frame.Dialect }

func (d errorObject) Encode(f frame.Frame) ([]byte, error) {
	b, err := d.Dialect.Encode(f)
	if err != nil || f.Kind != frame.KindError {
		return b, err
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, err
	}
	key := "error"
	if d.Name() == frame.B.Name() {
		key = "message"
	}
	obj[key] = map[string]any{"detail": f.Error, "status": f.Status}
	return json.Marshal(obj)
}

// challenges reports whether a new dialect A connection is challenged.
func (s *Server) challenges() bool {
	return s.cfg.Fault != FaultChallengeOnce || !s.fault.challenged.Swap(true)
}

// issued applies the challenge mutants to a challenge made by
// mpp.NewChallenge.
func (s *Server) issued(ch mpp.Challenge) mpp.Challenge {
	switch s.cfg.Fault {
	case FaultPaddedID:
		ch.ID += "=" // 32 bytes in padded base64url
	case FaultNonCanonicalRequest:
		ch.Request = s.requestB64
		ch.ID = mpp.ComputeID(s.cfg.Secret, ch)
	case FaultExpiresAtIssue:
		ch.Expires = mpp.FormatExpires(s.cfg.Now())
		ch.ID = mpp.ComputeID(s.cfg.Secret, ch)
	case FaultLooseBinding:
		ch.ID = looseID(s.cfg.Secret, ch)
	}
	return ch
}

// verifyID checks an echoed challenge id the way the server issues ids.
func (s *Server) verifyID(echo mpp.Challenge) bool {
	switch s.cfg.Fault {
	case FaultPaddedID:
		id, padded := strings.CutSuffix(echo.ID, "=")
		echo.ID = id
		return padded && echo.VerifyID(s.cfg.Secret)
	case FaultLooseBinding:
		return hmac.Equal([]byte(looseID(s.cfg.Secret, echo)), []byte(echo.ID))
	}
	return echo.VerifyID(s.cfg.Secret)
}

// looseID is FaultLooseBinding's id: expires, digest and opaque left out.
func looseID(secret []byte, ch mpp.Challenge) string {
	ch.Expires, ch.Digest, ch.Opaque = "", "", ""
	return mpp.ComputeID(secret, ch)
}

// requestText is the wire form of the challenge request: under
// FaultNonCanonicalRequest, its JSON with json.Encoder's trailing newline.
func (f Fault) requestText(b64 string) string {
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if f != FaultNonCanonicalRequest || err != nil {
		return b64
	}
	return base64.RawURLEncoding.EncodeToString(append(raw, '\n'))
}

// minVoucherDelta is the session request's minVoucherDelta.
func (f Fault) minVoucherDelta() string {
	if f == FaultFractionalDelta {
		return "0.0"
	}
	return "0"
}

// parseCredential is mpp.ParseAuthorization, strict about unknown
// credential members under FaultDenyUnknownFields.
func (s *Server) parseCredential(raw string) (mpp.Credential, error) {
	cred, err := mpp.ParseAuthorization(raw)
	if err != nil || s.cfg.Fault != FaultDenyUnknownFields {
		return cred, err
	}
	token := strings.TrimSpace(raw[strings.IndexByte(raw, ' ')+1:])
	b, err := base64.RawURLEncoding.DecodeString(token)
	var obj map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(b, &obj)
	}
	if err != nil {
		return cred, mpp.NewProblem(mpp.SlugMalformedCredential, err.Error())
	}
	for name := range obj {
		if name != "challenge" && name != "payload" && name != "source" {
			return cred, mpp.NewProblem(mpp.SlugMalformedCredential, fmt.Sprintf("unknown field %q", name))
		}
	}
	return cred, nil
}

// ignored reports whether FaultIgnoreMalformed drops a credential without
// an answer.
func (s *Server) ignored(raw string) bool {
	if s.cfg.Fault != FaultIgnoreMalformed {
		return false
	}
	_, err := mpp.ParseAuthorization(raw)
	return err != nil
}

// chargeRest is FaultPartialTick: it charges what is left of a balance
// short of a tick, and reports whether that paid for a unit.
func (c *conn) chargeRest(id tempo.Hash, st channel.State) bool {
	if c.s.cfg.Fault != FaultPartialTick || st.Available().Sign() <= 0 {
		return false
	}
	_, _, err := c.s.store.Charge(id, st.Available())
	return err == nil
}

// lowS is FaultHighS: a high-s signature turned into its low-s twin, which
// verifies.
func lowS(sig []byte) []byte {
	if len(sig) != tempo.SignatureLength {
		return sig
	}
	n := secp256k1.S256().N
	s := new(big.Int).SetBytes(sig[32:64])
	if s.Cmp(new(big.Int).Rsh(n, 1)) <= 0 || (sig[64] != 27 && sig[64] != 28) {
		return sig
	}
	out := bytes.Clone(sig)
	s.Sub(n, s).FillBytes(out[32:64])
	out[64] = 27 + 28 - sig[64]
	return out
}

// parseAmount parses a voucher's cumulativeAmount, leniently under
// FaultLenientAmount.
func (s *Server) parseAmount(text string, p tempo.Protocol) (*big.Int, error) {
	if s.cfg.Fault == FaultLenientAmount {
		if a, ok := new(big.Int).SetString(strings.TrimSpace(text), 0); ok {
			return a, nil
		}
	}
	return tempo.ParseAmount(text, p)
}

// verifyAnyChain is FaultAnyChain: the voucher verifies if it does under
// the domain of any Tempo chain.
func (s *Server) verifyAnyChain(ch tempo.Channel, amount *big.Int, sig []byte) error {
	err := s.verifier.Verify(ch.Domain(), ch.ID, amount, sig, ch.Signer())
	for _, id := range tempoChains {
		d := ch.Domain()
		d.ChainID = id
		if err != nil && s.verifier.Verify(d, ch.ID, amount, sig, ch.Signer()) == nil {
			err = nil
		}
	}
	return err
}

// refundDropped is FaultRefundOnDrop: when the connection has ended, the
// channel gets back the units it delivered.
func (c *conn) refundDropped(ctx context.Context, id tempo.Hash, delivered int) {
	if c.s.cfg.Fault != FaultRefundOnDrop || ctx.Err() == nil || delivered == 0 {
		return
	}
	_ = c.s.store.Refund(id, new(big.Int).Mul(c.s.cfg.Tick, big.NewInt(int64(delivered))))
}

// unknownChannel is FaultUnknownChannel: an opening voucher for a channel
// the ledger does not hold binds the connection to a known channel of the
// same payer, with the units its amount covers on credit. notFound is the
// answer when there is none.
func (c *conn) unknownChannel(p tempo.VoucherPayload, notFound error) (bool, error) {
	amount, err := tempo.ParseAmount(p.CumulativeAmount, c.s.offer.Protocol)
	if p.Descriptor == nil || err != nil {
		return false, notFound
	}
	for _, ch := range c.s.cfg.Channels {
		if !strings.EqualFold(ch.Payer.String(), p.Descriptor.Payer) || !c.s.offer.matches(ch) {
			continue
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state.bound {
			return false, notFound
		}
		c.state.bound, c.state.channelID = true, ch.ID
		c.state.freeUnits += int(new(big.Int).Quo(amount, c.s.cfg.Tick).Int64())
		return true, nil
	}
	return false, notFound
}

// readLimit is the WebSocket read limit. FaultCrashOnOversize reads frames
// whole, to crash on the oversize ones itself.
func (s *Server) readLimit() int64 {
	if s.cfg.Fault == FaultCrashOnOversize {
		return -1
	}
	return s.cfg.Limits.MaxFrameBytes
}

// crash is the crash mutants' unrecovered panic, without taking the test
// process down: no new connection is served and every open one drops.
func (s *Server) crash() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
}

// capped counts a WebSocket under FaultConnectionCap and reports whether it
// is over the cap; done uncounts it.
func (s *Server) capped() (over bool, done func()) {
	if s.cfg.Fault != FaultConnectionCap {
		return false, func() {}
	}
	return s.fault.conns.Add(1) > connectionCap, func() { s.fault.conns.Add(-1) }
}

// lockWrites wraps w under FaultGlobalWriteLock, so that the connection a
// WebSocket hijacks from it writes under the server-wide lock.
func (s *Server) lockWrites(w http.ResponseWriter) http.ResponseWriter {
	if s.cfg.Fault != FaultGlobalWriteLock {
		return w
	}
	return lockedWriter{w, &s.fault.writes}
}

type lockedWriter struct {
	http.ResponseWriter
	mu *sync.Mutex
}

// Hijack hands the WebSocket library a connection whose writes, its
// buffered ones included, take the lock.
func (w lockedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	lc := lockedConn{c, w.mu}
	brw.Writer.Reset(lc) // empty: the HTTP server flushed the 101 before it let go
	return lc, brw, nil
}

// lockedConn holds the lock for the whole of each write, however long a
// full socket makes it block. Close does not take it: closing is what
// fails a blocked write.
type lockedConn struct {
	net.Conn
	mu *sync.Mutex
}

func (c lockedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(p)
}

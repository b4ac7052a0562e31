package harness

import (
	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/suite/peer"
)

// Dialect is one WebSocket dialect of MPP as the harness drives it: its
// frame codec, and how a connection gets its challenge, has a credential
// acknowledged and ends a paid stream. Supporting a third dialect means one
// more implementation here, plus the cases only it has.
type Dialect interface {
	frame.Dialect
	// probes reports whether the challenge comes from an HTTP 402 probe of
	// the URL before the upgrade; otherwise the server sends it first.
	probes() bool
	// credentialTag is the tag, and the field, of the credential frame.
	credentialTag() string
	// isAck reports whether e acknowledges an accepted credential.
	isAck(e peer.Event) bool
	// isEnd reports whether e ends a paid stream.
	isEnd(e peer.Event) bool
	// Unbought are the frames a voucher that adds no funds must not buy.
	Unbought() []Outcome
	// answersEach reports whether every credential gets an answer: a
	// receipt, or a payment-error that ends the connection.
	answersEach() bool
}

// DialectA is mpp-rs's dialect: `type`-tagged frames, the challenge sent
// first, a receipt at the end of the stream.
var DialectA Dialect = dialectA{frame.A}

// DialectB is mppx's dialect: `mpp`-tagged frames after an HTTP 402 probe,
// a payment-receipt for every accepted authorization, and a close
// handshake that ends with payment-close-ready.
var DialectB Dialect = dialectB{frame.B}

type dialectA struct{ frame.Dialect }

func (dialectA) probes() bool            { return false }
func (dialectA) credentialTag() string   { return "credential" }
func (dialectA) isAck(peer.Event) bool   { return false }
func (dialectA) isEnd(e peer.Event) bool { return e.IsFrame(frame.KindReceipt) }
func (dialectA) Unbought() []Outcome     { return Paid }
func (dialectA) answersEach() bool       { return false }

type dialectB struct{ frame.Dialect }

func (dialectB) probes() bool            { return true }
func (dialectB) credentialTag() string   { return "authorization" }
func (dialectB) isAck(e peer.Event) bool { return e.IsFrame(frame.KindReceipt) }
func (dialectB) isEnd(e peer.Event) bool { return e.IsFrame(frame.KindCloseReady) }

// Unbought: an equal voucher is an idempotent retry that dialect B
// acknowledges with a receipt; only data would be bought.
func (dialectB) Unbought() []Outcome { return []Outcome{DataFrame} }

func (dialectB) answersEach() bool { return true }

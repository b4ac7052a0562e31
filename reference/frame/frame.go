// Package frame encodes and decodes the JSON frames of the MPP WebSocket
// dialects (ws-dialects.md §1.1 and §2.1). A Dialect maps dialect-neutral
// frames to one dialect's wire form, so the server, the client and the suite
// share one codec and a second dialect is one more Dialect value.
//
// Decoding is strict about what a dialect requires (the tag, the required
// fields and their JSON types) and lenient about what it allows (unknown extra
// fields are ignored), because that is how the SDK parsers behave. Member
// names match exactly, as in serde and JavaScript, and a name repeated
// anywhere in a frame is an error, so no reader can take a different one
// of two values than this codec did.
package frame

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
)

// Kind is a dialect-neutral frame kind.
type Kind string

const (
	// Client → server.
	KindCredential   Kind = "credential"
	KindCloseRequest Kind = "close-request"
	// Both directions: application data.
	KindMessage Kind = "message"
	// Server → client.
	KindChallenge   Kind = "challenge"
	KindNeedVoucher Kind = "need-voucher"
	KindReceipt     Kind = "receipt"
	KindError       Kind = "error"
	KindCloseReady  Kind = "close-ready"
)

// NeedVoucher asks the client for a voucher of at least RequiredCumulative.
// All amounts are decimal strings (protocol.md §6.9).
type NeedVoucher struct {
	ChannelID          string `json:"channelId"`
	RequiredCumulative string `json:"requiredCumulative"`
	AcceptedCumulative string `json:"acceptedCumulative"`
	Deposit            string `json:"deposit"`
}

// Frame is one decoded frame. Only the fields of its Kind are set.
type Frame struct {
	Kind Kind
	// Credential is the full Authorization value ("Payment <base64url>").
	Credential string
	// Challenge is the raw challenge object of a challenge frame, decoded by
	// the caller with the mpp package; ChallengeError is its optional error.
	Challenge      json.RawMessage
	ChallengeError string
	// Data is the application payload of a message frame: a JSON string from
	// a server, any JSON value from a dialect-A client.
	Data json.RawMessage
	// NeedVoucher holds the four need-voucher amounts.
	NeedVoucher NeedVoucher
	// Receipt is the raw receipt object.
	Receipt json.RawMessage
	// Error is the error text; Status its HTTP-like status where the dialect has one.
	Error  string
	Status int
}

// Text returns the data of a message frame as a string, and whether it was one.
func (f Frame) Text() (string, bool) {
	var s string
	if err := jsonv2.Unmarshal(f.Data, &s); err != nil {
		return "", false
	}
	return s, true
}

// Direction says who sends a frame.
type Direction int

const (
	FromClient Direction = iota
	FromServer
)

// Dialect is one WebSocket framing of MPP.
type Dialect interface {
	// Name is "A" (mpp-rs, type-tagged) or "B" (mppx, mpp-tagged).
	Name() string
	// TagKey is the discriminator field: "type" or "mpp".
	TagKey() string
	// Encode renders f as the dialect's JSON text. It fails for a kind the
	// dialect does not have.
	Encode(f Frame) ([]byte, error)
	// Decode parses one frame sent in the given direction. The error says
	// exactly what is wrong (bad JSON, unknown tag, missing or mistyped field).
	Decode(b []byte, dir Direction) (Frame, error)
	// Schema lists the frames the dialect defines, for checks and reports.
	Schema() []Spec
}

// JSONType is the JSON type a field must have.
type JSONType string

const (
	String JSONType = "string"
	Number JSONType = "number"
	Object JSONType = "object"
	Any    JSONType = "any"
)

// Field is one required field of a frame.
type Field struct {
	Name string
	Type JSONType
}

// Spec describes one frame of a dialect: its tag, direction and the fields
// the peer's parser requires.
type Spec struct {
	Tag      string
	Kind     Kind
	Dir      Direction
	Required []Field
	Optional []Field
}

// marshal is json.Marshal without HTML escaping: serde and JSON.stringify
// leave '<', '>' and '&' as they are, in raw receipts and challenges too,
// and so does a frame of this codec.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// typeOf returns the JSON type of a raw value.
func typeOf(raw json.RawMessage) JSONType {
	s := strings.TrimLeft(string(raw), " \t\r\n")
	if s == "" {
		return ""
	}
	switch s[0] {
	case '"':
		return String
	case '{':
		return Object
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return Number
	}
}

// Check validates a decoded frame object against spec: every required field
// present with its type, optional fields typed when present.
func (s Spec) Check(obj map[string]json.RawMessage) error {
	for _, f := range s.Required {
		raw, ok := obj[f.Name]
		if !ok {
			return fmt.Errorf("%s frame: missing field %q", s.Tag, f.Name)
		}
		if got := typeOf(raw); f.Type != Any && got != f.Type {
			return fmt.Errorf("%s frame: field %q is %s, want %s", s.Tag, f.Name, got, f.Type)
		}
	}
	for _, f := range s.Optional {
		if raw, ok := obj[f.Name]; ok && f.Type != Any && typeOf(raw) != f.Type {
			return fmt.Errorf("%s frame: field %q is %s, want %s", s.Tag, f.Name, typeOf(raw), f.Type)
		}
	}
	return nil
}

// decodeObject parses b as a JSON object and finds its spec by tag.
func decodeObject(d Dialect, b []byte, dir Direction) (map[string]json.RawMessage, Spec, error) {
	var obj map[string]json.RawMessage
	if err := jsonv2.Unmarshal(b, &obj); err != nil {
		return nil, Spec{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if obj == nil {
		return nil, Spec{}, fmt.Errorf("not a JSON object: null")
	}
	rawTag, ok := obj[d.TagKey()]
	if !ok {
		return nil, Spec{}, fmt.Errorf("missing %q discriminator", d.TagKey())
	}
	var tag string
	if err := jsonv2.Unmarshal(rawTag, &tag); err != nil {
		return nil, Spec{}, fmt.Errorf("%q discriminator is %s, want string", d.TagKey(), typeOf(rawTag))
	}
	for _, s := range d.Schema() {
		if s.Tag == tag && s.Dir == dir {
			if err := s.Check(obj); err != nil {
				return nil, Spec{}, err
			}
			return obj, s, nil
		}
	}
	return nil, Spec{}, fmt.Errorf("unknown %s %q from %s (known: %s)", d.TagKey(), tag, dir, strings.Join(tags(d, dir), ", "))
}

func tags(d Dialect, dir Direction) []string {
	var out []string
	for _, s := range d.Schema() {
		if s.Dir == dir {
			out = append(out, s.Tag)
		}
	}
	sort.Strings(out)
	return out
}

func (d Direction) String() string {
	if d == FromClient {
		return "client"
	}
	return "server"
}

// needVoucherOf reads the four need-voucher fields, already checked to be
// strings: flat in dialect A, under data in dialect B.
func needVoucherOf(obj map[string]json.RawMessage) NeedVoucher {
	return NeedVoucher{
		ChannelID:          str(obj, "channelId"),
		RequiredCumulative: str(obj, "requiredCumulative"),
		AcceptedCumulative: str(obj, "acceptedCumulative"),
		Deposit:            str(obj, "deposit"),
	}
}

// str reads a field already checked to be a string.
func str(obj map[string]json.RawMessage, name string) string {
	var s string
	_ = jsonv2.Unmarshal(obj[name], &s)
	return s
}

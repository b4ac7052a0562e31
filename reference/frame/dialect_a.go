package frame

import (
	"encoding/json"
	"fmt"
)

// A is the mpp-rs dialect: frames tagged by "type", challenge sent in-band by
// the server, flat needVoucher fields (ws-dialects.md §1.1).
var A Dialect = dialectA{}

type dialectA struct{}

var schemaA = []Spec{
	{Tag: "credential", Kind: KindCredential, Dir: FromClient, Required: []Field{{"credential", String}}},
	{Tag: "message", Kind: KindMessage, Dir: FromClient, Required: []Field{{"data", Any}}},
	{Tag: "challenge", Kind: KindChallenge, Dir: FromServer, Required: []Field{{"challenge", Object}}, Optional: []Field{{"error", String}}},
	{Tag: "message", Kind: KindMessage, Dir: FromServer, Required: []Field{{"data", String}}},
	{Tag: "needVoucher", Kind: KindNeedVoucher, Dir: FromServer, Required: []Field{
		{"channelId", String}, {"requiredCumulative", String}, {"acceptedCumulative", String}, {"deposit", String}}},
	{Tag: "receipt", Kind: KindReceipt, Dir: FromServer, Required: []Field{{"receipt", Object}}},
	{Tag: "error", Kind: KindError, Dir: FromServer, Required: []Field{{"error", String}}},
}

func (dialectA) Name() string   { return "A" }
func (dialectA) TagKey() string { return "type" }
func (dialectA) Schema() []Spec { return schemaA }

func (dialectA) Encode(f Frame) ([]byte, error) {
	switch f.Kind {
	case KindCredential:
		return marshal(struct {
			Type       string `json:"type"`
			Credential string `json:"credential"`
		}{"credential", f.Credential})
	case KindChallenge:
		return marshal(struct {
			Type      string          `json:"type"`
			Challenge json.RawMessage `json:"challenge"`
			Error     string          `json:"error,omitempty"`
		}{"challenge", f.Challenge, f.ChallengeError})
	case KindMessage:
		// The hot path of every stream: assemble the bytes instead of
		// marshalling, after checking data is JSON, as Marshal would.
		data := f.Data
		if data == nil {
			data = json.RawMessage(`""`)
		}
		if !json.Valid(data) {
			return nil, fmt.Errorf("message data is not JSON: %.40s", data)
		}
		b := make([]byte, 0, len(messagePrefix)+len(data)+1)
		b = append(append(append(b, messagePrefix...), data...), '}')
		return b, nil
	case KindNeedVoucher:
		return marshal(struct {
			Type string `json:"type"`
			NeedVoucher
		}{"needVoucher", f.NeedVoucher})
	case KindReceipt:
		return marshal(struct {
			Type    string          `json:"type"`
			Receipt json.RawMessage `json:"receipt"`
		}{"receipt", f.Receipt})
	case KindError:
		return marshal(struct {
			Type  string `json:"type"`
			Error string `json:"error"`
		}{"error", f.Error})
	}
	return nil, fmt.Errorf("dialect A has no %s frame", f.Kind)
}

func (d dialectA) Decode(b []byte, dir Direction) (Frame, error) {
	obj, spec, err := decodeObject(d, b, dir)
	if err != nil {
		return Frame{}, err
	}
	f := Frame{Kind: spec.Kind}
	switch spec.Kind {
	case KindCredential:
		f.Credential = str(obj, "credential")
	case KindMessage:
		f.Data = obj["data"]
	case KindChallenge:
		f.Challenge = obj["challenge"]
		f.ChallengeError = str(obj, "error")
	case KindNeedVoucher:
		f.NeedVoucher = needVoucherOf(obj)
	case KindReceipt:
		f.Receipt = obj["receipt"]
	case KindError:
		f.Error = str(obj, "error")
	}
	return f, nil
}

const messagePrefix = `{"type":"message","data":`

// StringData encodes s as the data of a message frame.
func StringData(s string) json.RawMessage {
	b, _ := marshal(s)
	return b
}

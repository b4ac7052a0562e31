package frame

import (
	"encoding/json"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
)

// B is the mppx dialect: frames tagged by "mpp", the challenge delivered by
// an HTTP 402 probe instead of a frame, need-voucher and receipts nested
// under "data", and a close handshake (ws-dialects.md §2.1).
var B Dialect = dialectB{}

type dialectB struct{}

var schemaB = []Spec{
	{Tag: "authorization", Kind: KindCredential, Dir: FromClient, Required: []Field{{"authorization", String}}},
	{Tag: "message", Kind: KindMessage, Dir: FromClient, Required: []Field{{"data", String}}},
	{Tag: "payment-close-request", Kind: KindCloseRequest, Dir: FromClient},
	{Tag: "message", Kind: KindMessage, Dir: FromServer, Required: []Field{{"data", String}}},
	{Tag: "payment-need-voucher", Kind: KindNeedVoucher, Dir: FromServer, Required: []Field{{"data", Object}}},
	{Tag: "payment-receipt", Kind: KindReceipt, Dir: FromServer, Required: []Field{{"data", Object}}},
	{Tag: "payment-close-ready", Kind: KindCloseReady, Dir: FromServer, Required: []Field{{"data", Object}}},
	{Tag: "payment-error", Kind: KindError, Dir: FromServer, Required: []Field{{"status", Number}, {"message", String}}},
}

// needVoucherData is the object under a payment-need-voucher's data: the
// same four strings as dialect A's flat fields.
var needVoucherData = Spec{Tag: "payment-need-voucher data", Required: []Field{
	{"channelId", String}, {"requiredCumulative", String}, {"acceptedCumulative", String}, {"deposit", String}}}

func (dialectB) Name() string   { return "B" }
func (dialectB) TagKey() string { return "mpp" }
func (dialectB) Schema() []Spec { return schemaB }

func (dialectB) Encode(f Frame) ([]byte, error) {
	switch f.Kind {
	case KindCredential:
		return marshal(struct {
			MPP           string `json:"mpp"`
			Authorization string `json:"authorization"`
		}{"authorization", f.Credential})
	case KindCloseRequest:
		return []byte(`{"mpp":"payment-close-request"}`), nil
	case KindMessage:
		data := f.Data
		if data == nil {
			data = json.RawMessage(`""`)
		}
		return marshal(struct {
			MPP  string          `json:"mpp"`
			Data json.RawMessage `json:"data"`
		}{"message", data})
	case KindNeedVoucher:
		return marshal(struct {
			MPP  string      `json:"mpp"`
			Data NeedVoucher `json:"data"`
		}{"payment-need-voucher", f.NeedVoucher})
	case KindReceipt, KindCloseReady:
		tag := "payment-receipt"
		if f.Kind == KindCloseReady {
			tag = "payment-close-ready"
		}
		return marshal(struct {
			MPP  string          `json:"mpp"`
			Data json.RawMessage `json:"data"`
		}{tag, f.Receipt})
	case KindError:
		return marshal(struct {
			MPP     string `json:"mpp"`
			Status  int    `json:"status"`
			Message string `json:"message"`
		}{"payment-error", f.Status, f.Error})
	}
	return nil, fmt.Errorf("dialect B has no %s frame", f.Kind)
}

func (d dialectB) Decode(b []byte, dir Direction) (Frame, error) {
	obj, spec, err := decodeObject(d, b, dir)
	if err != nil {
		return Frame{}, err
	}
	f := Frame{Kind: spec.Kind}
	switch spec.Kind {
	case KindCredential:
		f.Credential = str(obj, "authorization")
	case KindMessage:
		f.Data = obj["data"]
	case KindNeedVoucher:
		var data map[string]json.RawMessage
		if err := jsonv2.Unmarshal(obj["data"], &data); err != nil {
			return Frame{}, fmt.Errorf("payment-need-voucher data: %w", err)
		}
		if err := needVoucherData.Check(data); err != nil {
			return Frame{}, err
		}
		f.NeedVoucher = needVoucherOf(data)
	case KindReceipt, KindCloseReady:
		f.Receipt = obj["data"]
	case KindError:
		f.Error = str(obj, "message")
		var status float64
		_ = jsonv2.Unmarshal(obj["status"], &status)
		f.Status = int(status)
	}
	return f, nil
}

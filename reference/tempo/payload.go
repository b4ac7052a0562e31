package tempo

import (
	"errors"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// TopUpPayload is the credential payload of a `topUp` action: the signed
// transaction that adds AdditionalDeposit to the channel (dialect B).
type TopUpPayload struct {
	Action            string      `json:"action"`
	Type              string      `json:"type"`
	ChannelID         string      `json:"channelId"`
	Transaction       string      `json:"transaction"`
	AdditionalDeposit string      `json:"additionalDeposit"`
	Descriptor        *Descriptor `json:"descriptor,omitempty"`
}

// DecodeVoucherPayload reads the payload of a `voucher` or `close` action.
// Like DecodeTopUpPayload it reads JSON as serde and JavaScript do: member
// names match exactly and unknown ones are ignored, so "CumulativeAmount"
// is not cumulativeAmount; unlike encoding/json it rejects a repeated name
// and invalid UTF-8 rather than pick one reading. It checks types only:
// amounts, ids and signatures are the caller's to parse.
func DecodeVoucherPayload(b []byte) (VoucherPayload, error) {
	var p VoucherPayload
	if err := decodeObject(b, &p); err != nil {
		return VoucherPayload{}, fmt.Errorf("session payload: %w", err)
	}
	return p, nil
}

// DecodeTopUpPayload reads the payload of a `topUp` action, as
// DecodeVoucherPayload reads a voucher.
func DecodeTopUpPayload(b []byte) (TopUpPayload, error) {
	var p TopUpPayload
	if err := decodeObject(b, &p); err != nil {
		return TopUpPayload{}, fmt.Errorf("topUp payload: %w", err)
	}
	return p, nil
}

// decodeObject decodes a JSON object strictly; null, which would leave v
// zero, is refused with every other non-object.
func decodeObject(b []byte, v any) error {
	if jsontext.Value(b).Kind() != '{' {
		return errors.New("not a JSON object")
	}
	return jsonv2.Unmarshal(b, v)
}

package tempo

import (
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
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
	if err := jsonv2.Unmarshal(b, &p); err != nil {
		return VoucherPayload{}, fmt.Errorf("session payload: %w", err)
	}
	return p, nil
}

// DecodeTopUpPayload reads the payload of a `topUp` action, as
// DecodeVoucherPayload reads a voucher.
func DecodeTopUpPayload(b []byte) (TopUpPayload, error) {
	var p TopUpPayload
	if err := jsonv2.Unmarshal(b, &p); err != nil {
		return TopUpPayload{}, fmt.Errorf("topUp payload: %w", err)
	}
	return p, nil
}

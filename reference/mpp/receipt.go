package mpp

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ReceiptStatusSuccess is the only receipt status: receipts are never sent
// with an error (protocol.md §4.1).
const ReceiptStatusSuccess = "success"

// Receipt is the core Payment-Receipt body (protocol.md §4.1). Fields are in
// mpp-rs order; receipt JSON is not canonical, so order is cosmetic.
type Receipt struct {
	Status     string `json:"status"`
	Method     string `json:"method"`
	Timestamp  string `json:"timestamp"`
	Reference  string `json:"reference"`
	ExternalID string `json:"externalId,omitempty"`
}

// SessionReceipt is the receipt of the Tempo session intent (protocol.md
// §4.2), in the field order both mppx and mpp-rs use. Units is the channel's
// cumulative unit counter, as the SDKs fill it, not the per-request count
// the spec describes; nil omits it.
type SessionReceipt struct {
	Method             string  `json:"method"`
	Intent             string  `json:"intent"`
	Status             string  `json:"status"`
	Timestamp          string  `json:"timestamp"`
	Reference          string  `json:"reference"`
	ChallengeID        string  `json:"challengeId"`
	ChannelID          string  `json:"channelId"`
	AcceptedCumulative string  `json:"acceptedCumulative"`
	Spent              string  `json:"spent"`
	Units              *uint64 `json:"units,omitempty"`
	TxHash             string  `json:"txHash,omitempty"`
}

// EncodeReceipt returns the Payment-Receipt header value for v: unpadded
// base64url of its JSON. HTML escaping is off so the bytes match what mppx
// (JSON.stringify) and mpp-rs (serde) would produce for the same fields.
func EncodeReceipt(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("encode receipt: %w", err)
	}
	return b64.EncodeToString(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// DecodeReceipt decodes a Payment-Receipt header value into v with the same
// strict base64url rules as DecodeJSON.
func DecodeReceipt(s string, v any) error {
	if err := DecodeJSON(s, v); err != nil {
		return fmt.Errorf("decode receipt: %w", err)
	}
	return nil
}

// Package mpp is the protocol core of the Machine Payments Protocol "Payment"
// HTTP authentication scheme (protocol.md §1–§5): challenges and their HMAC
// binding, the WWW-Authenticate and Authorization header forms, receipts and
// RFC 9457 problem details.
//
// The package is deliberately strict where the SDKs disagree: it emits
// exactly one canonical form (JCS JSON, unpadded base64url, every header
// value quoted) and accepts on input only what every SDK would accept, so a
// conformance run against it does not pass by accident.
package mpp

import (
	"encoding/base64"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/mppws/conformance/reference/jcs"
)

// b64 is the only base64 alphabet MPP uses on the wire (RFC 4648 §5, no
// padding). Strict mode also rejects non-zero trailing bits, so each byte
// string has exactly one accepted encoding.
var b64 = base64.RawURLEncoding.Strict()

// EncodeJSON returns base64url-nopad(JCS(v)), the form of a challenge's
// request and opaque parameters (protocol.md §1.3). JCS is required because
// the challenge id is an HMAC over these exact characters and the mppx client
// re-serialises them with JCS before echoing.
func EncodeJSON(v any) (string, error) {
	canon, err := jcs.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode JSON parameter: %w", err)
	}
	return b64.EncodeToString(canon), nil
}

// DecodeJSON decodes an unpadded base64url string and unmarshals the JSON in
// it into v. It accepts only the URL-safe alphabet: '=', '+', '/' and
// whitespace are rejected (Go's decoder would silently skip CR and LF), which
// is what mpp-go does and what every SDK emits. The JSON is read as serde and
// JavaScript read it: member names match exactly (unknown ones are
// ignored), and a repeated name or invalid UTF-8 is an error.
func DecodeJSON(s string, v any) error {
	data, err := decodeBase64URL(s)
	if err != nil {
		return err
	}
	if err := jsonv2.Unmarshal(data, v); err != nil {
		return fmt.Errorf("invalid JSON in base64url value: %w", err)
	}
	return nil
}

func decodeBase64URL(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if !isBase64URLChar(s[i]) {
			return nil, fmt.Errorf("invalid base64url: illegal character %q at offset %d", s[i], i)
		}
	}
	data, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("invalid base64url: %w", err)
	}
	return data, nil
}

func isBase64URLChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

package harness

import "encoding/base64"

// ForgedID is a well-formed challenge id no server issued.
const ForgedID = "Zm9yZ2VkLWJ5LXRoZS1jb25mb3JtYW5jZS1zdWl0ZQA"

// EncodeToken is base64url without padding, the credential token encoding.
func EncodeToken(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// DecodeRequest decodes a challenge request string strictly.
func DecodeRequest(s string) ([]byte, error) { return base64.RawURLEncoding.Strict().DecodeString(s) }

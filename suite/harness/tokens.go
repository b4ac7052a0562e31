package suite

import "encoding/base64"

// forgedID is a well-formed challenge id no server issued.
const forgedID = "Zm9yZ2VkLWJ5LXRoZS1jb25mb3JtYW5jZS1zdWl0ZQA"

// encodeToken is base64url without padding, the credential token encoding.
func encodeToken(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeRequest decodes a challenge request string strictly.
func decodeRequest(s string) ([]byte, error) { return base64.RawURLEncoding.Strict().DecodeString(s) }

package mpp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
)

// Credential is the JSON carried in "Authorization: Payment <token>"
// (protocol.md §3.2): the echoed challenge, an optional payer DID and the
// method- and intent-specific payload.
type Credential struct {
	Challenge Challenge       `json:"challenge"`
	Source    string          `json:"source,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// FormatAuthorization renders c as an Authorization value: the scheme, one
// space, and unpadded base64url of its JSON (protocol.md §3.1). It refuses a
// credential ParseAuthorization would reject, so a reference client never
// sends a malformed one by accident; negative tests should build their bytes
// by hand.
func FormatAuthorization(c Credential) (string, error) {
	if err := checkCredential(c); err != nil {
		return "", fmt.Errorf("format authorization: %w", err)
	}
	data, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("format authorization: %w", err)
	}
	return Scheme + " " + b64.EncodeToString(data), nil
}

// ParseAuthorization extracts the Payment credential from an Authorization
// value (protocol.md §3.1). Like every SDK it splits the value on commas and
// takes the element that starts with "payment" and whitespace (scheme matched
// case-insensitively), so other schemes may share the header. The token must
// be strict unpadded base64url of a JSON object whose challenge echo has a
// non-empty id, realm, method, intent and request and whose payload is an
// object. JSON member names are matched exactly and a name repeated
// anywhere in the credential is rejected: encoding/json alone would take
// "ID" for "id" and the last of two "challenge" members, which no other
// SDK does.
//
// Errors are *Problem: malformed-credential, or bad-request (400) when the
// header holds two Payment credentials, which mpp-go rejects that way and the
// spec says SHOULD be a 400.
func ParseAuthorization(h string) (Credential, error) {
	var token string
	found := 0
	for part := range strings.SplitSeq(h, ",") {
		part = strings.TrimLeft(part, asciiSpace)
		if len(part) < len(Scheme) || !strings.EqualFold(part[:len(Scheme)], Scheme) {
			continue
		}
		rest := part[len(Scheme):]
		if rest != "" && !strings.ContainsRune(asciiSpace, rune(rest[0])) {
			continue // e.g. "PaymentFoo x": a different scheme
		}
		found++
		token = strings.Trim(rest, asciiSpace)
	}
	switch {
	case found == 0:
		return Credential{}, NewProblem(SlugMalformedCredential, "missing Payment scheme")
	case found > 1:
		return Credential{}, NewProblem(SlugBadRequest, "multiple Payment credentials")
	case token == "":
		return Credential{}, NewProblem(SlugMalformedCredential, "missing Payment token")
	case len(token) > MaxHeaderBytes:
		return Credential{}, NewProblem(SlugMalformedCredential, fmt.Sprintf("token exceeds %d bytes", MaxHeaderBytes))
	}
	data, err := decodeBase64URL(token)
	if err != nil {
		return Credential{}, NewProblem(SlugMalformedCredential, err.Error())
	}
	c, err := decodeCredential(data)
	if err != nil {
		return Credential{}, NewProblem(SlugMalformedCredential, err.Error())
	}
	return c, nil
}

// asciiSpace is the \s class of the mppx regex ^Payment\s+(.+)$.
const asciiSpace = " \t\n\v\f\r"

// decodeCredential unmarshals the credential JSON with exact, case-sensitive
// member names, no repeated name, and type checks that name the offending
// field.
func decodeCredential(data []byte) (Credential, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		if !json.Valid(data) {
			return Credential{}, errors.New("invalid JSON")
		}
		return Credential{}, errors.New("credential is not a JSON object")
	}
	var top map[string]json.RawMessage
	if err := jsonv2.Unmarshal(data, &top); err != nil {
		return Credential{}, fmt.Errorf("invalid JSON: %w", err)
	}
	var c Credential
	rawEcho, ok := top["challenge"]
	if !ok {
		return Credential{}, errors.New("challenge missing")
	}
	var echo map[string]json.RawMessage
	if !isJSONObject(rawEcho) {
		return Credential{}, errors.New("challenge is not a JSON object")
	}
	if err := jsonv2.Unmarshal(rawEcho, &echo); err != nil {
		return Credential{}, fmt.Errorf("challenge: %w", err)
	}
	for _, f := range [...]struct {
		name     string
		dst      *string
		required bool
	}{
		{"id", &c.Challenge.ID, true},
		{"realm", &c.Challenge.Realm, true},
		{"method", &c.Challenge.Method, true},
		{"intent", &c.Challenge.Intent, true},
		{"request", &c.Challenge.Request, true},
		{"expires", &c.Challenge.Expires, false},
		{"description", &c.Challenge.Description, false},
		{"digest", &c.Challenge.Digest, false},
		{"opaque", &c.Challenge.Opaque, false},
	} {
		if err := stringMember(echo, f.name, f.dst); err != nil {
			return Credential{}, fmt.Errorf("challenge.%w", err)
		}
		if f.required && *f.dst == "" {
			return Credential{}, fmt.Errorf("challenge.%s missing", f.name)
		}
	}
	if err := stringMember(top, "source", &c.Source); err != nil {
		return Credential{}, err
	}
	payload, ok := top["payload"]
	if !ok {
		return Credential{}, errors.New("payload missing")
	}
	if !isJSONObject(payload) {
		return Credential{}, errors.New("payload is not a JSON object")
	}
	c.Payload = payload
	return c, nil
}

// stringMember copies obj[name] into dst if present. JSON null counts as
// absent, anything else that is not a string is an error.
func stringMember(obj map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := obj[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("%s is not a string", name)
	}
	// Echo fields are base64url, ids and timestamps: plain ASCII needs no
	// unescaping, and skipping a second encoding/json pass over each one
	// is most of this function's cost.
	if body := raw[1 : len(raw)-1]; isPlainASCII(body) {
		*dst = string(body)
		return nil
	}
	if err := jsonv2.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// isPlainASCII reports whether b is printable ASCII without '\' or '"', i.e.
// the body of a JSON string literal that decodes to itself.
func isPlainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
			return false
		}
	}
	return true
}

// isJSONObject reports whether raw (a json.RawMessage from a decoded
// document, so already valid and trimmed) is an object.
func isJSONObject(raw json.RawMessage) bool {
	return len(raw) > 0 && raw[0] == '{'
}

// checkCredential applies ParseAuthorization's structural rules to a value.
func checkCredential(c Credential) error {
	for _, f := range [...]struct{ name, value string }{
		{"id", c.Challenge.ID}, {"realm", c.Challenge.Realm}, {"method", c.Challenge.Method},
		{"intent", c.Challenge.Intent}, {"request", c.Challenge.Request},
	} {
		if f.value == "" {
			return fmt.Errorf("challenge.%s missing", f.name)
		}
	}
	if t := bytes.TrimLeft(c.Payload, " \t\r\n"); len(t) == 0 || t[0] != '{' || !json.Valid(c.Payload) {
		return errors.New("payload is not a JSON object")
	}
	return nil
}

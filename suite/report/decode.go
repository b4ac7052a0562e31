package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
)

// block is a decoded piece of a frame shown beside it: a credential's
// challenge echo or payload, or a challenge's base64url request.
type block struct {
	Label string
	Text  string // indented JSON, or what the value decoded to
	Err   string // why the value would not decode
}

// pretty indents text that is JSON, keeping its member order; other text
// comes back as it is.
func pretty(text string) string {
	var b bytes.Buffer
	if json.Indent(&b, []byte(text), "", "  ") != nil {
		return text
	}
	return b.String()
}

// decodeFrame finds what a frame carries in base64url and decodes it for a
// reader: a Payment credential (dialect A's credential field, dialect B's
// authorization field) into its challenge echo and payload, and the
// request and opaque of any challenge, echoed or issued. It never fails:
// the suite sends malformed frames on purpose, and those show why they
// would not decode.
func decodeFrame(text string) []block {
	var frame map[string]json.RawMessage
	if json.Unmarshal([]byte(text), &frame) != nil {
		return decodeHeaderParams(text)
	}
	var out []block
	for _, field := range []string{"credential", "authorization"} {
		var token string
		if json.Unmarshal(frame[field], &token) == nil && hasPaymentScheme(token) {
			out = append(out, decodeCredential(token)...)
		}
	}
	if ch, ok := frame["challenge"]; ok {
		out = append(out, decodeChallenge("challenge", ch)...)
	}
	return out
}

func hasPaymentScheme(s string) bool {
	return len(s) > len("Payment ") && strings.EqualFold(s[:len("Payment ")], "Payment ")
}

// decodeCredential splits a "Payment <base64url>" token into blocks.
func decodeCredential(token string) []block {
	raw, err := decodeB64(strings.TrimSpace(token[len("Payment "):]))
	if err != nil {
		return []block{{Label: "credential", Err: "not base64url: " + err.Error()}}
	}
	var cred map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cred); err != nil {
		return []block{{Label: "credential", Text: string(raw), Err: "not a JSON object: " + err.Error()}}
	}
	var out []block
	if ch, ok := cred["challenge"]; ok {
		out = append(out, block{Label: "challenge echo", Text: pretty(string(ch))})
		out = append(out, decodeChallenge("challenge echo", ch)...)
	}
	for _, k := range []string{"payload", "source"} {
		if v, ok := cred[k]; ok {
			out = append(out, block{Label: k, Text: pretty(string(v))})
		}
	}
	if len(out) == 0 {
		out = append(out, block{Label: "credential", Text: pretty(string(raw))})
	}
	return out
}

// decodeChallenge shows what a challenge's base64url request and opaque
// hold.
func decodeChallenge(label string, ch json.RawMessage) []block {
	var params map[string]json.RawMessage
	if json.Unmarshal(ch, &params) != nil {
		return nil
	}
	var out []block
	for _, k := range []string{"request", "opaque"} {
		var s string
		if json.Unmarshal(params[k], &s) == nil && s != "" {
			out = append(out, decodeParam(label+" · "+k, s))
		}
	}
	return out
}

// headerParam finds a challenge's request and opaque in a WWW-Authenticate
// value, as the suite notes a dialect B probe.
var headerParam = regexp.MustCompile(`\b(request|opaque)="([A-Za-z0-9_=-]+)"`)

func decodeHeaderParams(text string) []block {
	if !strings.Contains(text, "Payment ") {
		return nil
	}
	var out []block
	for _, m := range headerParam.FindAllStringSubmatch(text, -1) {
		out = append(out, decodeParam("WWW-Authenticate · "+m[1], m[2]))
	}
	return out
}

func decodeParam(label, s string) block {
	raw, err := decodeB64(s)
	if err != nil {
		return block{Label: label, Err: "not base64url: " + err.Error()}
	}
	return block{Label: label, Text: pretty(string(raw))}
}

// decodeB64 reads base64url as a lenient reader would: padding or not.
func decodeB64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

package mpp

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme is the HTTP authentication scheme name. It is matched
// case-insensitively on input (RFC 9110 §11.1) and emitted in this case.
const Scheme = "Payment"

// MaxHeaderBytes caps a WWW-Authenticate value and an Authorization token.
// It is the 16 KiB limit of mpp-go (whole header) and mpp-rs (token), so
// anything this package accepts every SDK accepts too.
const MaxHeaderBytes = 16 << 10

// FormatChallenge renders c as a WWW-Authenticate value. Parameters come in
// mpp-rs order (id, realm, method, intent, request, then expires,
// description, digest, opaque when set), every value quoted with '\' and '"'
// backslash-escaped, as all three SDKs emit them (protocol.md §1.2).
//
// Control characters other than HTAB, in particular CR and LF, are rejected
// rather than stripped: they would allow header injection, and net/http
// refuses to send such a value anyway.
func FormatChallenge(c Challenge) (string, error) {
	params := [...]struct {
		name, value string
		required    bool
	}{
		{"id", c.ID, true},
		{"realm", c.Realm, true},
		{"method", c.Method, true},
		{"intent", c.Intent, true},
		{"request", c.Request, true},
		{"expires", c.Expires, false},
		{"description", c.Description, false},
		{"digest", c.Digest, false},
		{"opaque", c.Opaque, false},
	}
	var b strings.Builder
	b.WriteString(Scheme)
	first := true
	for _, p := range params {
		if p.value == "" {
			if p.required {
				return "", fmt.Errorf("format challenge: %s is empty", p.name)
			}
			continue
		}
		if err := checkHeaderValue(p.value); err != nil {
			return "", fmt.Errorf("format challenge: %s: %w", p.name, err)
		}
		if first {
			b.WriteByte(' ')
			first = false
		} else {
			b.WriteString(", ")
		}
		b.WriteString(p.name)
		b.WriteString(`="`)
		for i := 0; i < len(p.value); i++ {
			if ch := p.value[i]; ch == '\\' || ch == '"' {
				b.WriteByte('\\')
			}
			b.WriteByte(p.value[i])
		}
		b.WriteByte('"')
	}
	return b.String(), nil
}

// checkHeaderValue rejects bytes an HTTP field value may not carry: CR, LF
// and the other controls except HTAB (RFC 9110 §5.5).
func checkHeaderValue(v string) error {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\r' || c == '\n':
			return errors.New("contains CR or LF")
		case (c < 0x20 && c != '\t') || c == 0x7f:
			return fmt.Errorf("contains control character %#02x", c)
		}
	}
	return nil
}

// ParseChallenges extracts every Payment challenge from one WWW-Authenticate
// value (protocol.md §1.2). The value is read as an RFC 9110 §11.6.1
// challenge list, so it may hold several Payment challenges and challenges of
// other schemes, which are skipped. A new challenge starts at the beginning or
// after a comma outside quotes, with a scheme token followed by a space (the
// split rule of all three SDKs); anything of the form name=value is a
// parameter of the challenge before it.
//
// Parameter names are case-insensitive (as in mppx) and unknown ones are
// ignored, but a repeated parameter is an error, as is a missing or empty id,
// realm, method, intent or request. Values may be quoted-strings, where a
// backslash escapes the next byte, or bare tokens. "\u" is an escaped "u",
// as in mpp-go and mpp-rs; mppx's \uXXXX escaping is not decoded, which only
// affects a non-ASCII description.
func ParseChallenges(header string) ([]Challenge, error) {
	if len(header) > MaxHeaderBytes {
		return nil, fmt.Errorf("parse challenges: header is %d bytes, limit %d", len(header), MaxHeaderBytes)
	}
	elems, err := splitList(header)
	if err != nil {
		return nil, fmt.Errorf("parse challenges: %w", err)
	}
	var (
		out     []Challenge
		params  map[string]string // current Payment challenge, nil inside another scheme
		started bool              // a challenge of any scheme has begun
	)
	finish := func() error {
		if params == nil {
			return nil
		}
		c, err := challengeFromParams(params)
		if err != nil {
			return fmt.Errorf("parse challenges: Payment challenge %d: %w", len(out)+1, err)
		}
		out = append(out, c)
		params = nil
		return nil
	}
	for _, elem := range elems {
		elem = trimOWS(elem)
		if elem == "" {
			continue // RFC 9110 §5.6.1: empty list elements are allowed
		}
		token, rest := cutToken(elem)
		if token != "" && strings.HasPrefix(trimOWS(rest), "=") {
			if !started {
				return nil, fmt.Errorf("parse challenges: parameter %q before any auth-scheme", token)
			}
			if params != nil {
				if err := addParam(params, token, trimOWS(rest)[1:]); err != nil {
					return nil, fmt.Errorf("parse challenges: Payment challenge %d: %w", len(out)+1, err)
				}
			}
			continue
		}
		// A new challenge: auth-scheme [ 1*SP ( token68 / auth-param ) ].
		if token == "" {
			return nil, fmt.Errorf("parse challenges: expected auth-scheme at %q", elem)
		}
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return nil, fmt.Errorf("parse challenges: unexpected %q after auth-scheme %q", rest[0], token)
		}
		if err := finish(); err != nil {
			return nil, err
		}
		started = true
		if !strings.EqualFold(token, Scheme) {
			continue // another scheme: its token68 or parameters are not ours
		}
		params = make(map[string]string)
		if first := trimOWS(rest); first != "" {
			name, value := cutToken(first)
			value = trimOWS(value)
			if name == "" || !strings.HasPrefix(value, "=") {
				return nil, fmt.Errorf("parse challenges: Payment challenge %d: expected name=value, got %q", len(out)+1, first)
			}
			if err := addParam(params, name, value[1:]); err != nil {
				return nil, fmt.Errorf("parse challenges: Payment challenge %d: %w", len(out)+1, err)
			}
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("parse challenges: no Payment challenge in header")
	}
	return out, nil
}

// splitList splits a header value on commas outside quoted-strings. It
// rejects an unterminated quoted-string and control characters other than
// HTAB, which no valid field value contains.
func splitList(s string) ([]string, error) {
	var elems []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case (c < 0x20 && c != '\t') || c == 0x7f:
			return nil, fmt.Errorf("control character %#02x at offset %d", c, i)
		case inQuote && c == '\\':
			i++ // the escaped byte cannot end the quoted-string
			if i < len(s) && ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
				return nil, fmt.Errorf("control character %#02x at offset %d", s[i], i)
			}
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			elems = append(elems, s[start:i])
			start = i + 1
		}
	}
	if inQuote {
		return nil, errors.New("unterminated quoted-string")
	}
	return append(elems, s[start:]), nil
}

// addParam parses the value part of one auth-param (after '=') into params.
func addParam(params map[string]string, name, raw string) error {
	key := strings.ToLower(name)
	if _, dup := params[key]; dup {
		return fmt.Errorf("duplicate parameter %q", key)
	}
	raw = trimOWS(raw)
	var value string
	switch {
	case raw == "":
		return fmt.Errorf("parameter %q has no value", key)
	case raw[0] == '"':
		var b strings.Builder
		i := 1
		for ; i < len(raw) && raw[i] != '"'; i++ {
			if raw[i] == '\\' {
				i++
			}
			if i < len(raw) {
				b.WriteByte(raw[i])
			}
		}
		if i >= len(raw) {
			return fmt.Errorf("parameter %q: unterminated quoted-string", key)
		}
		if tail := trimOWS(raw[i+1:]); tail != "" {
			return fmt.Errorf("parameter %q: unexpected %q after quoted-string", key, tail)
		}
		value = b.String()
	default:
		// Bare value: the SDKs read up to a comma or whitespace, which lets
		// through ':' (in expires) and '=' (in digest) that RFC 9110 tokens
		// lack.
		if i := strings.IndexAny(raw, " \t\""); i >= 0 {
			return fmt.Errorf("parameter %q: unexpected %q in unquoted value", key, raw[i:])
		}
		value = raw
	}
	params[key] = value
	return nil
}

func challengeFromParams(p map[string]string) (Challenge, error) {
	c := Challenge{
		ID:          p["id"],
		Realm:       p["realm"],
		Method:      p["method"],
		Intent:      p["intent"],
		Request:     p["request"],
		Expires:     p["expires"],
		Description: p["description"],
		Digest:      p["digest"],
		Opaque:      p["opaque"],
	}
	for _, f := range [...]struct{ name, value string }{
		{"id", c.ID}, {"realm", c.Realm}, {"method", c.Method}, {"intent", c.Intent}, {"request", c.Request},
	} {
		if f.value == "" {
			return Challenge{}, fmt.Errorf("missing or empty %s", f.name)
		}
	}
	return c, nil
}

// cutToken splits s after its leading run of RFC 9110 tchar bytes.
func cutToken(s string) (token, rest string) {
	i := 0
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// trimOWS removes RFC 9110 optional whitespace (SP and HTAB).
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

// Package jcs implements the JSON Canonicalization Scheme of RFC 8785.
//
// MPP binds base64url(JCS(request)) and base64url(JCS(opaque)) into every
// challenge id (protocol.md §1.3, §2), and the mppx client does not echo the
// request string it received: it decodes it and re-serialises it with JCS. A
// server whose request bytes are not exactly JCS therefore fails the HMAC on
// every echo. encoding/json is close to JCS but not equal to it (it escapes
// U+2028/U+2029 and HTML characters, formats non-integer and huge numbers
// differently, and sorts keys by UTF-8 bytes rather than UTF-16 code units),
// so this package parses JSON text itself and re-emits it canonically.
package jcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds nesting so hostile input cannot exhaust the stack. It
// matches the limit encoding/json applies when decoding.
const maxDepth = 10000

// Canonicalize parses the JSON text in and returns its RFC 8785 canonical
// form: no insignificant whitespace, object members sorted by the UTF-16 code
// units of their names, numbers in ECMAScript Number.prototype.toString form,
// and strings escaped exactly as JSON.stringify escapes them.
//
// Input that RFC 8785 (through I-JSON, RFC 7493) does not allow is rejected
// rather than repaired: invalid JSON, data after the top-level value, invalid
// UTF-8, unpaired surrogate escapes, duplicate member names (compared after
// unescaping) and numbers outside the float64 range.
func Canonicalize(in []byte) ([]byte, error) {
	p := parser{data: in}
	p.skipWhitespace()
	out, err := p.value(make([]byte, 0, len(in)), 0)
	if err != nil {
		return nil, fmt.Errorf("jcs: %w", err)
	}
	p.skipWhitespace()
	if p.pos != len(p.data) {
		return nil, fmt.Errorf("jcs: %w", p.errorf("unexpected data after top-level value"))
	}
	return out, nil
}

// Marshal encodes v with encoding/json and canonicalizes the result, so any
// value encoding/json can marshal (structs, maps, json.RawMessage, types with
// MarshalJSON) gets JCS bytes. encoding/json's HTML and U+2028 escapes are
// undone by the canonicalization step.
func Marshal(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("jcs: marshal: %w", err)
	}
	return Canonicalize(raw)
}

// SyntaxError reports where Canonicalize gave up on its input.
type SyntaxError struct {
	Offset int    // byte offset into the input
	Msg    string // what was wrong there
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg)
}

type parser struct {
	data []byte
	pos  int
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipWhitespace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value parses one JSON value at p.pos and appends its canonical form to dst.
func (p *parser) value(dst []byte, depth int) ([]byte, error) {
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(dst, depth+1)
	case c == '[':
		return p.array(dst, depth+1)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return appendString(dst, s), nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(dst)
	case c == 't':
		return p.literal(dst, "true")
	case c == 'f':
		return p.literal(dst, "false")
	case c == 'n':
		return p.literal(dst, "null")
	default:
		return nil, p.errorf("invalid character %q looking for a value", c)
	}
}

func (p *parser) literal(dst []byte, lit string) ([]byte, error) {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return nil, p.errorf("invalid literal, want %q", lit)
	}
	p.pos += len(lit)
	return append(dst, lit...), nil
}

// member records where one canonical `"name":value` pair sits in the output
// buffer so the pairs can be reordered once the whole object is parsed.
type member struct {
	name       string
	start, end int
}

func (p *parser) object(dst []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, p.errorf("nesting deeper than %d", maxDepth)
	}
	p.pos++ // '{'
	dst = append(dst, '{')
	p.skipWhitespace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return append(dst, '}'), nil
	}
	body := len(dst)
	var members []member
	for {
		p.skipWhitespace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("expected string for object member name")
		}
		name, err := p.string()
		if err != nil {
			return nil, err
		}
		p.skipWhitespace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("expected ':' after object member name")
		}
		p.pos++
		p.skipWhitespace()
		start := len(dst)
		dst = appendString(dst, name)
		dst = append(dst, ':')
		if dst, err = p.value(dst, depth); err != nil {
			return nil, err
		}
		members = append(members, member{name: name, start: start, end: len(dst)})
		p.skipWhitespace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in object")
		}
		if p.data[p.pos] == '}' {
			p.pos++
			break
		}
		if p.data[p.pos] != ',' {
			return nil, p.errorf("expected ',' or '}' in object")
		}
		p.pos++
	}

	slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.name, b.name) })
	for i := 1; i < len(members); i++ {
		if members[i].name == members[i-1].name {
			return nil, p.errorf("duplicate object member name %q", members[i].name)
		}
	}
	// Rewrite the members region in sorted order. The copy is needed because
	// the sorted pairs are read from the same region they are written to.
	unsorted := slices.Clone(dst[body:])
	dst = dst[:body]
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, unsorted[m.start-body:m.end-body]...)
	}
	return append(dst, '}'), nil
}

func (p *parser) array(dst []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, p.errorf("nesting deeper than %d", maxDepth)
	}
	p.pos++ // '['
	dst = append(dst, '[')
	p.skipWhitespace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return append(dst, ']'), nil
	}
	for first := true; ; first = false {
		if !first {
			dst = append(dst, ',')
		}
		p.skipWhitespace()
		var err error
		if dst, err = p.value(dst, depth); err != nil {
			return nil, err
		}
		p.skipWhitespace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in array")
		}
		if p.data[p.pos] == ']' {
			p.pos++
			return append(dst, ']'), nil
		}
		if p.data[p.pos] != ',' {
			return nil, p.errorf("expected ',' or ']' in array")
		}
		p.pos++
	}
}

// string parses a JSON string literal at p.pos and returns its decoded value,
// which is always valid UTF-8 (raw invalid bytes and unpaired surrogate
// escapes are errors, as RFC 8785 §3.2.2.2 requires).
func (p *parser) string() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes, all ASCII printable.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := string(p.data[start:p.pos])
			p.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		p.pos++
	}
	buf := append([]byte(nil), p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character %#02x in string", c)
		case c == '\\':
			var err error
			if buf, err = p.escape(buf); err != nil {
				return "", err
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size == 1 {
				return "", p.errorf("invalid UTF-8 in string")
			}
			buf = append(buf, p.data[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
	return "", p.errorf("unterminated string")
}

// escape decodes one backslash escape at p.pos and appends its UTF-8 form.
func (p *parser) escape(buf []byte) ([]byte, error) {
	if p.pos+1 >= len(p.data) {
		return nil, p.errorf("unterminated escape")
	}
	c := p.data[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(buf, c), nil
	case 'b':
		return append(buf, '\b'), nil
	case 'f':
		return append(buf, '\f'), nil
	case 'n':
		return append(buf, '\n'), nil
	case 'r':
		return append(buf, '\r'), nil
	case 't':
		return append(buf, '\t'), nil
	case 'u':
		r, err := p.hex4()
		if err != nil {
			return nil, err
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return nil, p.errorf("unpaired low surrogate \\u%04x", r)
		case r >= 0xD800 && r <= 0xDBFF:
			if p.pos+1 >= len(p.data) || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
				return nil, p.errorf("unpaired high surrogate \\u%04x", r)
			}
			p.pos += 2
			lo, err := p.hex4()
			if err != nil {
				return nil, err
			}
			if lo < 0xDC00 || lo > 0xDFFF {
				return nil, p.errorf("high surrogate \\u%04x followed by \\u%04x", r, lo)
			}
			r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
		}
		return utf8.AppendRune(buf, r), nil
	default:
		p.pos -= 2
		return nil, p.errorf("invalid escape \\%c", c)
	}
}

func (p *parser) hex4() (rune, error) {
	if len(p.data)-p.pos < 4 {
		return 0, p.errorf("truncated \\u escape")
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, p.errorf("invalid hex digit %q in \\u escape", c)
		}
	}
	p.pos += 4
	return r, nil
}

// number validates the RFC 8259 number grammar, converts to float64 (the only
// number type JCS knows) and appends the ECMAScript form.
func (p *parser) number(dst []byte) ([]byte, error) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.data[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case digits() == 0:
		return nil, p.errorf("invalid number: missing integer digits")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.errorf("invalid number: missing fraction digits")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("invalid number: missing exponent digits")
		}
	}
	text := string(p.data[start:p.pos])
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		// The grammar was checked above, so the only failure left is a
		// magnitude beyond float64, which JCS cannot represent.
		return nil, &SyntaxError{Offset: start, Msg: fmt.Sprintf("number %s out of float64 range", text)}
	}
	return appendNumber(dst, f)
}

// errNonFinite is returned for NaN and ±Inf, which JSON cannot express.
var errNonFinite = errors.New("jcs: NaN and Infinity are not valid JSON numbers")

// appendNumber appends f formatted as ECMAScript Number.prototype.toString
// does (ECMA-262 Number::toString, the serialization RFC 8785 §3.2.2.3
// mandates): the shortest digit string that round-trips, plain notation for
// decimal exponents in [-6, 21), exponent notation with an explicit sign
// otherwise, and -0 as "0".
func appendNumber(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, errNonFinite
	}
	if f == 0 {
		return append(dst, '0'), nil
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// strconv's shortest 'e' form gives the same digits ECMAScript picks
	// (fewest digits, closest to the exact value): "d.ddde±XX".
	var scratch [32]byte
	e := strconv.AppendFloat(scratch[:0], f, 'e', -1, 64)
	var digits []byte
	var exp int
	for i, c := range e {
		if c == 'e' {
			x, err := strconv.Atoi(string(e[i+1:]))
			if err != nil {
				return nil, fmt.Errorf("jcs: unexpected strconv output %q: %w", e, err)
			}
			exp = x
			break
		}
		if c != '.' {
			digits = append(digits, c)
		}
	}
	// ECMA-262 names: k digits, value = digits × 10^(n−k).
	k, n := len(digits), exp+1
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst, nil
}

// appendString appends s (valid UTF-8) as a JSON string literal escaped the
// way JSON.stringify does it (RFC 8785 §3.2.2.2): only '"', '\\' and control
// characters are escaped, the five with short forms use them, the others use
// lower-case \u00xx; everything else, including '/', HTML characters, U+007F
// and U+2028/U+2029, is emitted as raw UTF-8.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			dst = append(dst, '\\', '"')
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c >= 0x20:
			dst = append(dst, c)
		case c == '\b':
			dst = append(dst, '\\', 'b')
		case c == '\f':
			dst = append(dst, '\\', 'f')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
	}
	return append(dst, '"')
}

// compareUTF16 orders valid UTF-8 strings by their UTF-16 code units, the
// member order RFC 8785 §3.2.3 requires. It differs from byte (code point)
// order only when a supplementary-plane character meets a BMP character at or
// above U+E000: in UTF-16 the supplementary one starts with a surrogate
// (0xD800–0xDBFF) and sorts first.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := firstUnit(ra), firstUnit(rb)
			if ua != ub {
				return int(ua) - int(ub)
			}
			// Same high surrogate: low surrogates follow code point order.
			return int(ra) - int(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// firstUnit returns the first UTF-16 code unit encoding r.
func firstUnit(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}

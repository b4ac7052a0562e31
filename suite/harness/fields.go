package harness

import (
	"encoding/json"
	"regexp"
	"strings"
)

var (
	IDPattern      = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	MethodPattern  = regexp.MustCompile(`^[a-z]+$`)
	decimalPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
	RFC3339Pattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
)

// CheckFields checks the exact field names and JSON types of a frame object.
func (c *C) CheckFields(what string, raw json.RawMessage, want map[string]string) map[string]json.RawMessage {
	obj, err := decodeObject(raw)
	c.Check(err == nil && obj != nil, what+" is a JSON object", "%s: %v", raw, err)
	for name, typ := range want {
		v, ok := obj[name]
		optional := strings.HasSuffix(typ, "?")
		typ = strings.TrimSuffix(typ, "?")
		if !ok {
			c.Check(optional, what+" has field "+name, "%s lacks %q; fields: %s", what, name, Keys(obj))
			continue
		}
		// A decimal is a JSON string holding digits: its type is checked
		// as a string, its form on top where a source requires it.
		want := typ
		if typ == "decimal" {
			want = "string"
		}
		got := jsonType(v)
		c.Check(got == want, what+"."+name+" is a JSON "+want, "%s.%s is %s: %s", what, name, got, v)
		if typ == "decimal" {
			var s string
			_ = json.Unmarshal(v, &s)
			c.Check(decimalPattern.MatchString(s), what+"."+name+" is a decimal string", "%s.%s = %s", what, name, v)
		}
	}
	return obj
}

// jsonType names a raw value's JSON type.
func jsonType(v json.RawMessage) string {
	s := strings.TrimSpace(string(v))
	switch {
	case s == "":
		return "nothing"
	case s[0] == '"':
		return "string"
	case s[0] == '{':
		return "object"
	case s[0] == '[':
		return "array"
	case s == "true" || s == "false":
		return "boolean"
	case s == "null":
		return "null"
	}
	return "number"
}

func Keys(m map[string]json.RawMessage) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return strings.Join(out, ", ")
}

// ClipNote is the first line of s, cut to fit a report line.
func ClipNote(s string) string {
	s = firstLine(s)
	if len(s) > 100 {
		return s[:97] + "..."
	}
	return s
}

package mpp_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mppws/conformance/reference/mpp"
)

func testCredential(t *testing.T) mpp.Credential {
	t.Helper()
	return mpp.Credential{
		Challenge: newTestChallenge(t, baseParams()),
		Source:    "did:pkh:eip155:4217:0x742d35cc6634c0532925a3b844bc9e7595f8fe00",
		Payload:   json.RawMessage(`{"action":"voucher","cumulativeAmount":"25"}`),
	}
}

// token builds an Authorization token from raw JSON text, for inputs
// FormatAuthorization refuses to produce.
func token(jsonText string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(jsonText))
}

func TestAuthorizationRoundTrip(t *testing.T) {
	c := testCredential(t)
	h, err := mpp.FormatAuthorization(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "Payment ") || strings.ContainsAny(h[len("Payment "):], "=+/ ") {
		t.Fatalf("header %q is not Payment + base64url-nopad", h)
	}
	// Field order is challenge, source, payload (Rust struct order).
	var raw []byte
	if raw, err = base64.RawURLEncoding.DecodeString(h[len("Payment "):]); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), `{"challenge":{"id":`) || !strings.Contains(string(raw), `"source":"did:pkh:`) ||
		!strings.HasSuffix(string(raw), `"payload":{"action":"voucher","cumulativeAmount":"25"}}`) {
		t.Errorf("credential JSON %s", raw)
	}
	got, err := mpp.ParseAuthorization(h)
	if err != nil {
		t.Fatal(err)
	}
	if got.Challenge != c.Challenge || got.Source != c.Source || string(got.Payload) != string(c.Payload) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
	}
	if !got.Challenge.VerifyID(testSecret) {
		t.Error("echoed challenge does not verify")
	}

	c.Source = ""
	h, err = mpp.FormatAuthorization(c)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := base64.RawURLEncoding.DecodeString(h[len("Payment "):]); strings.Contains(string(raw), "source") {
		t.Errorf("empty source emitted: %s", raw)
	}
}

func TestFormatAuthorizationRejects(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*mpp.Credential)
	}{
		{"nil payload", func(c *mpp.Credential) { c.Payload = nil }},
		{"array payload", func(c *mpp.Credential) { c.Payload = json.RawMessage(`[]`) }},
		{"invalid payload", func(c *mpp.Credential) { c.Payload = json.RawMessage(`{`) }},
		{"missing id", func(c *mpp.Credential) { c.Challenge.ID = "" }},
		{"missing request", func(c *mpp.Credential) { c.Challenge.Request = "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testCredential(t)
			tc.modify(&c)
			if h, err := mpp.FormatAuthorization(c); err == nil {
				t.Fatalf("FormatAuthorization = %q, want error", h)
			}
		})
	}
}

const echoJSON = `{"id":"i","realm":"r","method":"tempo","intent":"charge","request":"e30"}`

func TestParseAuthorization(t *testing.T) {
	valid := token(`{"challenge":` + echoJSON + `,"payload":{}}`)
	want := mpp.Challenge{ID: "i", Realm: "r", Method: "tempo", Intent: "charge", Request: "e30"}
	cases := []struct{ name, header string }{
		{"plain", "Payment " + valid},
		{"lower-case scheme", "payment " + valid},
		{"upper-case scheme", "PAYMENT " + valid},
		{"several spaces", "Payment   " + valid},
		{"tab", "Payment\t" + valid},
		{"surrounding whitespace", "  Payment " + valid + "  "},
		{"after another scheme", "Bearer abc, Payment " + valid},
		{"before another scheme", "Payment " + valid + ", Basic dXNlcjpwYXNz"},
		{"PaymentX is another scheme", "PaymentX foo, Payment " + valid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mpp.ParseAuthorization(tc.header)
			if err != nil {
				t.Fatal(err)
			}
			if c.Challenge != want || string(c.Payload) != `{}` || c.Source != "" {
				t.Fatalf("got %+v", c)
			}
		})
	}

	t.Run("optional echo fields and unknown members", func(t *testing.T) {
		h := "Payment " + token(`{"extra":1,"source":"did:x","payload":{"a":[1]},"challenge":{"opaque":"e30","digest":"sha-256=x",`+
			`"description":"d","expires":"2025-01-06T12:00:00Z","request":"e30","intent":"charge","method":"tempo","realm":"r","id":"i","ext":true}}`)
		c, err := mpp.ParseAuthorization(h)
		if err != nil {
			t.Fatal(err)
		}
		w := want
		w.Opaque, w.Digest, w.Description, w.Expires = "e30", "sha-256=x", "d", "2025-01-06T12:00:00Z"
		if c.Challenge != w || c.Source != "did:x" || string(c.Payload) != `{"a":[1]}` {
			t.Fatalf("got %+v", c)
		}
	})
	t.Run("payload kept byte for byte", func(t *testing.T) {
		h := "Payment " + token(`{"challenge":`+echoJSON+`, "payload" : { "b" : 2, "a" : 1 } }`)
		c, err := mpp.ParseAuthorization(h)
		if err != nil {
			t.Fatal(err)
		}
		if string(c.Payload) != `{ "b" : 2, "a" : 1 }` {
			t.Fatalf("payload %s", c.Payload)
		}
	})
	t.Run("escaped and non-ASCII strings decoded", func(t *testing.T) {
		h := "Payment " + token(`{"challenge":{"id":"\u0069","realm":"r","method":"tempo","intent":"charge","request":"e30","description":"caf\u00e9 ☕ \"q\""},"payload":{}}`)
		c, err := mpp.ParseAuthorization(h)
		if err != nil {
			t.Fatal(err)
		}
		w := want
		w.Description = `café ☕ "q"`
		if c.Challenge != w {
			t.Fatalf("got %+v", c.Challenge)
		}
	})
	t.Run("null optional members are absent", func(t *testing.T) {
		h := "Payment " + token(`{"challenge":{"id":"i","realm":"r","method":"tempo","intent":"charge","request":"e30","expires":null},"source":null,"payload":{}}`)
		c, err := mpp.ParseAuthorization(h)
		if err != nil {
			t.Fatal(err)
		}
		if c.Challenge != want || c.Source != "" {
			t.Fatalf("got %+v", c)
		}
	})
}

func TestParseAuthorizationRejects(t *testing.T) {
	valid := token(`{"challenge":` + echoJSON + `,"payload":{}}`)
	echoWithout := func(field string) string {
		var m map[string]string
		if err := json.Unmarshal([]byte(echoJSON), &m); err != nil {
			panic(err)
		}
		delete(m, field)
		b, _ := json.Marshal(m)
		return string(b)
	}
	echoWith := func(field, rawValue string) string {
		return strings.Replace(echoJSON, `"`+field+`":`, `"`+field+`":`+rawValue+`,"_`+field+`":`, 1)
	}
	cases := []struct {
		name, header string
		slug         string
		detail       string
	}{
		{"empty header", "", mpp.SlugMalformedCredential, "missing Payment scheme"},
		{"other scheme only", "Bearer abc", mpp.SlugMalformedCredential, "missing Payment scheme"},
		{"scheme glued to token", "Payment" + valid, mpp.SlugMalformedCredential, "missing Payment scheme"},
		{"scheme without token", "Payment", mpp.SlugMalformedCredential, "missing Payment token"},
		{"scheme with blank token", "Payment   ", mpp.SlugMalformedCredential, "missing Payment token"},
		{"two Payment credentials", "Payment " + valid + ", Payment " + valid, mpp.SlugBadRequest, "multiple Payment credentials"},
		{"two Payment credentials among others", "Payment " + valid + ", Bearer x, payment " + valid, mpp.SlugBadRequest, "multiple"},
		{"not base64", "Payment !!!", mpp.SlugMalformedCredential, "invalid base64url"},
		{"padding", "Payment " + token(`{"challenge":`+echoJSON+`,"payload":{"a":1}}`) + "=", mpp.SlugMalformedCredential, "invalid base64url"},
		{"padded encoding", "Payment " + base64.URLEncoding.EncodeToString([]byte(`{"challenge":`+echoJSON+`,"payload":{}}`)), mpp.SlugMalformedCredential, "invalid base64url"},
		{"standard alphabet", "Payment " + base64.RawStdEncoding.EncodeToString([]byte(`{"challenge":`+echoJSON+`,"payload":{"k":"???>>>"}}`)), mpp.SlugMalformedCredential, "invalid base64url"},
		{"space inside token", "Payment " + valid[:10] + " " + valid[10:], mpp.SlugMalformedCredential, "invalid base64url"},
		{"oversize", "Payment " + strings.Repeat("A", mpp.MaxHeaderBytes+1), mpp.SlugMalformedCredential, "token exceeds 16384 bytes"},
		{"not JSON", "Payment " + token(`hello`), mpp.SlugMalformedCredential, "invalid JSON"},
		{"truncated JSON", "Payment " + token(`{"challenge":`), mpp.SlugMalformedCredential, "invalid JSON"},
		{"trailing data", "Payment " + token(`{"challenge":`+echoJSON+`,"payload":{}} x`), mpp.SlugMalformedCredential, "invalid JSON"},
		{"JSON array", "Payment " + token(`[]`), mpp.SlugMalformedCredential, "not a JSON object"},
		{"JSON null", "Payment " + token(`null`), mpp.SlugMalformedCredential, "not a JSON object"},
		{"missing challenge", "Payment " + token(`{"payload":{}}`), mpp.SlugMalformedCredential, "challenge missing"},
		{"challenge is a string", "Payment " + token(`{"challenge":"abc","payload":{}}`), mpp.SlugMalformedCredential, "challenge is not a JSON object"},
		{"missing id", "Payment " + token(`{"challenge":`+echoWithout("id")+`,"payload":{}}`), mpp.SlugMalformedCredential, "challenge.id missing"},
		{"empty id", "Payment " + token(`{"challenge":`+strings.Replace(echoJSON, `"id":"i"`, `"id":""`, 1)+`,"payload":{}}`), mpp.SlugMalformedCredential, "challenge.id missing"},
		{"missing realm", "Payment " + token(`{"challenge":`+echoWithout("realm")+`,"payload":{}}`), mpp.SlugMalformedCredential, "challenge.realm missing"},
		{"missing method", "Payment " + token(`{"challenge":`+echoWithout("method")+`,"payload":{}}`), mpp.SlugMalformedCredential, "challenge.method missing"},
		{"missing intent", "Payment " + token(`{"challenge":`+echoWithout("intent")+`,"payload":{}}`), mpp.SlugMalformedCredential, "challenge.intent missing"},
		{"missing request", "Payment " + token(`{"challenge":`+echoWithout("request")+`,"payload":{}}`), mpp.SlugMalformedCredential, "challenge.request missing"},
		{"id wrong case", "Payment " + token(`{"challenge":`+strings.Replace(echoJSON, `"id"`, `"ID"`, 1)+`,"payload":{}}`), mpp.SlugMalformedCredential, "challenge.id missing"},
		{"id is a number", "Payment " + token(`{"challenge":`+echoWith("id", "1")+`,"payload":{}}`), mpp.SlugMalformedCredential, "challenge.id is not a string"},
		{"opaque is an object", "Payment " + token(`{"challenge":`+strings.Replace(echoJSON, `}`, `,"opaque":{"pi":"x"}}`, 1)+`,"payload":{}}`), mpp.SlugMalformedCredential, "challenge.opaque is not a string"},
		{"source is a number", "Payment " + token(`{"challenge":`+echoJSON+`,"source":1,"payload":{}}`), mpp.SlugMalformedCredential, "source is not a string"},
		{"missing payload", "Payment " + token(`{"challenge":`+echoJSON+`}`), mpp.SlugMalformedCredential, "payload missing"},
		{"null payload", "Payment " + token(`{"challenge":`+echoJSON+`,"payload":null}`), mpp.SlugMalformedCredential, "payload is not a JSON object"},
		{"string payload", "Payment " + token(`{"challenge":`+echoJSON+`,"payload":"x"}`), mpp.SlugMalformedCredential, "payload is not a JSON object"},
		{"array payload", "Payment " + token(`{"challenge":`+echoJSON+`,"payload":[{}]}`), mpp.SlugMalformedCredential, "payload is not a JSON object"},
		// encoding/json would take the last of a repeated name; serde refuses
		// it and JavaScript's reader could differ from ours, so none passes.
		{"two challenge members", "Payment " + token(`{"challenge":{},"payload":{},"challenge":`+echoJSON+`}`), mpp.SlugMalformedCredential, "duplicate"},
		{"repeated echo member", "Payment " + token(`{"challenge":`+strings.Replace(echoJSON, `}`, `,"id":"j"}`, 1)+`,"payload":{}}`), mpp.SlugMalformedCredential, "duplicate"},
		{"repeated payload member", "Payment " + token(`{"challenge":`+echoJSON+`,"payload":{"a":1,"a":2}}`), mpp.SlugMalformedCredential, "duplicate"},
		{"payload wrong case", "Payment " + token(`{"challenge":`+echoJSON+`,"Payload":{}}`), mpp.SlugMalformedCredential, "payload missing"},
		{"invalid UTF-8", "Payment " + token("{\"challenge\":"+echoJSON+",\"payload\":{\"a\":\"\xff\"}}"), mpp.SlugMalformedCredential, "invalid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mpp.ParseAuthorization(tc.header)
			if err == nil {
				t.Fatalf("ParseAuthorization = %+v, want error", c)
			}
			p := wantProblem(t, err, tc.slug, tc.detail)
			wantStatus := http.StatusPaymentRequired
			if tc.slug == mpp.SlugBadRequest {
				wantStatus = http.StatusBadRequest
			}
			if p.Status != wantStatus {
				t.Errorf("status %d, want %d", p.Status, wantStatus)
			}
		})
	}

	// A token of exactly the limit is decoded (and then fails on content,
	// not on size).
	atLimit := "Payment " + strings.Repeat("A", mpp.MaxHeaderBytes)
	_, err := mpp.ParseAuthorization(atLimit)
	if p := wantProblem(t, err, mpp.SlugMalformedCredential, ""); strings.Contains(p.Detail, "exceeds") {
		t.Errorf("token of exactly %d bytes rejected for size", mpp.MaxHeaderBytes)
	}
}

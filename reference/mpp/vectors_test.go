package mpp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mppws/conformance/reference/jcs"
	"github.com/mppws/conformance/reference/mpp"
)

// vector is one challenge-id test vector of protocol.md §2.1. request and
// opaque are Go values; wantRequest/wantOpaque are the JCS texts the sheet
// shows, so each case also checks that our JCS produces those exact bytes.
type vector struct {
	name        string
	secret      string
	realm       string
	method      string
	intent      string
	request     any
	wantRequest string
	expires     string
	digest      string
	opaque      map[string]string
	wantOpaque  string
	wantID      string
}

const (
	vecSecret = "test-vector-secret"
	vecRealm  = "api.example.com"
	vecDigest = "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE"
	vecExpiry = "2025-01-06T12:00:00Z"
	currency  = "0x20c0000000000000000000000000000000000000"
)

var amountOnly = map[string]any{"amount": "1000000"}

const amountOnlyJCS = `{"amount":"1000000"}`

// sharedVectors are the 14 rows present verbatim in all three SDK suites.
var sharedVectors = []vector{
	{name: "required only", request: amountOnly, wantRequest: amountOnlyJCS,
		wantID: "X6v1eo7fJ76gAxqY0xN9Jd__4lUyDDYmriryOM-5FO4"},
	{name: "with expires", request: amountOnly, wantRequest: amountOnlyJCS, expires: vecExpiry,
		wantID: "ChPX33RkKSZoSUyZcu8ai4hhkvjZJFkZVnvWs5s0iXI"},
	{name: "with digest", request: amountOnly, wantRequest: amountOnlyJCS, digest: vecDigest,
		wantID: "JHB7EFsPVb-xsYCo8LHcOzeX1gfXWVoUSzQsZhKAfKM"},
	{name: "expires+digest", request: amountOnly, wantRequest: amountOnlyJCS, expires: vecExpiry, digest: vecDigest,
		wantID: "m39jbWWCIfmfJZSwCfvKFFtBl0Qwf9X4nOmDb21peLA"},
	{name: "multi-field",
		request:     map[string]any{"recipient": "0xabcd", "currency": "0x1234", "amount": "1000000"},
		wantRequest: `{"amount":"1000000","currency":"0x1234","recipient":"0xabcd"}`,
		wantID:      "_H5TOnnlW0zduQ5OhQ3EyLVze_TqxLDPda2CGZPZxOc"},
	{name: "nested",
		request:     map[string]any{"methodDetails": map[string]any{"chainId": 42431}, "currency": "0x1234", "amount": "1000000"},
		wantRequest: `{"amount":"1000000","currency":"0x1234","methodDetails":{"chainId":42431}}`,
		wantID:      "TqujwpuDDg_zsWGINAd5XObO2rRe6uYufpqvtDmr6N8"},
	{name: "empty request", request: map[string]any{}, wantRequest: `{}`,
		wantID: "yLN7yChAejW9WNmb54HpJIWpdb1WWXeA3_aCx4dxmkU"},
	{name: "other realm", realm: "payments.other.com", request: amountOnly, wantRequest: amountOnlyJCS,
		wantID: "3F5bOo2a9RUihdwKk4hGRvBvzQmVPBMDvW0YM-8GD00"},
	{name: "method stripe", method: "stripe", request: amountOnly, wantRequest: amountOnlyJCS,
		wantID: "o0ra2sd7HcB4Ph0Vns69gRDUhSj5WNOnUopcDqKPLz4"},
	{name: "intent session", intent: "session", request: amountOnly, wantRequest: amountOnlyJCS,
		wantID: "aAY7_IEDzsznNYplhOSE8cERQxvjFcT4Lcn-7FHjLVE"},
	{name: "opaque", request: amountOnly, wantRequest: amountOnlyJCS,
		opaque: map[string]string{"pi": "pi_3abc123XYZ"}, wantOpaque: `{"pi":"pi_3abc123XYZ"}`,
		wantID: "rxzKZ2qjXvinqCH96RORTZEPs1KXsA-0AUjrCAPFOWc"},
	{name: "opaque+expires", request: amountOnly, wantRequest: amountOnlyJCS, expires: vecExpiry,
		opaque: map[string]string{"pi": "pi_3abc123XYZ"}, wantOpaque: `{"pi":"pi_3abc123XYZ"}`,
		wantID: "KAfoMrA4fnzS1DPWN_cUv_b3_yHxCizdp6OhH7gluMY"},
	{name: "empty opaque", request: amountOnly, wantRequest: amountOnlyJCS,
		opaque: map[string]string{}, wantOpaque: `{}`,
		wantID: "vb4IyH-0LdJ3s7L0QAw8jIzcZkyxksPhIvEfmHmzA9k"},
	{name: "multi-key opaque", request: amountOnly, wantRequest: amountOnlyJCS,
		opaque: map[string]string{"pi": "pi_3abc123XYZ", "deposit": "dep_456"}, wantOpaque: `{"deposit":"dep_456","pi":"pi_3abc123XYZ"}`,
		wantID: "aKskU8sadR5ZuFbUCsIwhO-ENxuVpTw17FdwHEXsJDk"},
}

// extraVectors are the additional rows of the mpp-go and mpp-rs suites.
var extraVectors = []vector{
	{name: "go/rust basic", secret: "test-secret-key-12345",
		request: map[string]any{
			"recipient": "0x1234567890abcdef1234567890abcdef12345678",
			"currency":  currency,
			"amount":    "1000000",
		},
		wantRequest: `{"amount":"1000000","currency":"0x20c0000000000000000000000000000000000000","recipient":"0x1234567890abcdef1234567890abcdef12345678"}`,
		wantID:      "XmJ98SdsAdzwP9Oa-8In322Uh6yweMO6rywdomWk_V4"},
	{name: "go/rust with expires", secret: "test-secret-key-12345", expires: "2026-01-29T12:00:00Z",
		request: map[string]any{
			"amount":    "5000000",
			"currency":  currency,
			"recipient": "0xabcdef1234567890abcdef1234567890abcdef12",
		},
		wantRequest: `{"amount":"5000000","currency":"0x20c0000000000000000000000000000000000000","recipient":"0xabcdef1234567890abcdef1234567890abcdef12"}`,
		wantID:      "EvqUWMPJjqhoVJVG3mhTYVqCa3Mk7bUVd_OjeJGek1A"},
	{name: "unicode", secret: "unicode-test-key",
		request: map[string]any{
			"recipient":   "0x1111111111111111111111111111111111111111",
			"description": "Payment for café ☕",
			"currency":    "EUR",
			"amount":      "100",
		},
		wantRequest: `{"amount":"100","currency":"EUR","description":"Payment for café ☕","recipient":"0x1111111111111111111111111111111111111111"}`,
		wantID:      "1_GKJqATKvVnIUY3f8MFq48bMs18JHz_3CBK8pu52yA"},
	{name: "nested feePayer", secret: "nested-test-key", realm: "api.tempo.xyz",
		request: map[string]any{
			"methodDetails": map[string]any{"feePayer": true, "chainId": 42431},
			"recipient":     "0x2222222222222222222222222222222222222222",
			"currency":      currency,
			"amount":        "5000000",
		},
		wantRequest: `{"amount":"5000000","currency":"0x20c0000000000000000000000000000000000000","methodDetails":{"chainId":42431,"feePayer":true},"recipient":"0x2222222222222222222222222222222222222222"}`,
		wantID:      "VkSq83C7vQFvdX3MqHM7s-N1QOo2nae4F1iHmbV5pgg"},
	{name: "HTML-sensitive characters", secret: vecSecret,
		request: map[string]any{
			"nested":      map[string]any{"z": 1, "a": 2},
			"items":       []string{"b", "a"},
			"description": "<tag>&value",
			"amount":      "100",
		},
		wantRequest: `{"amount":"100","description":"<tag>&value","items":["b","a"],"nested":{"a":2,"z":1}}`,
		wantID:      "7sN4-SNxjcU69yFUFT39nXXwvc9SRjod6WRoO_wmfgQ"},
	{name: "authorize intent", secret: "test-key", realm: "test.example.com", intent: "authorize",
		request: map[string]any{}, wantRequest: `{}`,
		wantID: "MYEC2oq3_B3cHa_My1Lx3NQKn_iUiMfsns6361N0SX0"},
}

func (v vector) defaults() vector {
	if v.secret == "" {
		v.secret = vecSecret
	}
	if v.realm == "" {
		v.realm = vecRealm
	}
	if v.method == "" {
		v.method = "tempo"
	}
	if v.intent == "" {
		v.intent = "charge"
	}
	return v
}

// challenge builds the challenge the vector describes, checking on the way
// that JCS turns the Go values into exactly the JSON text shown in the sheet.
func (v vector) challenge(t *testing.T) mpp.Challenge {
	t.Helper()
	v = v.defaults()
	checkJCS(t, "request", v.request, v.wantRequest)
	request, err := mpp.EncodeJSON(v.request)
	if err != nil {
		t.Fatalf("EncodeJSON(request): %v", err)
	}
	c := mpp.Challenge{
		Realm: v.realm, Method: v.method, Intent: v.intent,
		Request: request, Expires: v.expires, Digest: v.digest,
	}
	if v.opaque != nil {
		checkJCS(t, "opaque", v.opaque, v.wantOpaque)
		if c.Opaque, err = mpp.EncodeJSON(v.opaque); err != nil {
			t.Fatalf("EncodeJSON(opaque): %v", err)
		}
	}
	return c
}

func checkJCS(t *testing.T, what string, v any, want string) {
	t.Helper()
	got, err := jcs.Marshal(v)
	if err != nil {
		t.Fatalf("jcs.Marshal(%s): %v", what, err)
	}
	if string(got) != want {
		t.Fatalf("JCS(%s) = %s, want %s", what, got, want)
	}
	// The sheet's text is already canonical.
	again, err := jcs.Canonicalize([]byte(want))
	if err != nil || string(again) != want {
		t.Fatalf("Canonicalize(%s) = %s, %v; want it unchanged", want, again, err)
	}
}

func runVectors(t *testing.T, vectors []vector) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			c := v.challenge(t)
			secret := []byte(v.defaults().secret)
			if got := mpp.ComputeID(secret, c); got != v.wantID {
				t.Fatalf("ComputeID = %s, want %s", got, v.wantID)
			}
			c.ID = v.wantID
			if !c.VerifyID(secret) {
				t.Fatal("VerifyID rejected the vector id")
			}
			if c.VerifyID([]byte("wrong-secret")) {
				t.Fatal("VerifyID accepted the vector under another secret")
			}
		})
	}
}

func TestSharedVectors(t *testing.T) { runVectors(t, sharedVectors) }

func TestExtraVectors(t *testing.T) { runVectors(t, extraVectors) }

// TestDescriptionNotInHMAC is the "with description" vector: description is
// display text only and must not change the id (protocol.md §2).
func TestDescriptionNotInHMAC(t *testing.T) {
	c := sharedVectors[0].challenge(t)
	c.Description = "Payment for API access"
	if got, want := mpp.ComputeID([]byte(vecSecret), c), sharedVectors[0].wantID; got != want {
		t.Fatalf("id with description = %s, want %s (same as without)", got, want)
	}
}

// sessionRequest is the request of the computed session challenge example of
// protocol.md §2.1.
func sessionRequest() map[string]any {
	return map[string]any{
		"unitType":         "llm_token",
		"suggestedDeposit": "10000000",
		"recipient":        "0x742d35cc6634c0532925a3b844bc9e7595f8fe00",
		"methodDetails": map[string]any{
			"sessionProtocol": "v2",
			"escrowContract":  "0x4d50500000000000000000000000000000000000",
			"chainId":         4217,
		},
		"currency": currency,
		"amount":   "25",
	}
}

const (
	sessionJCS       = `{"amount":"25","currency":"0x20c0000000000000000000000000000000000000","methodDetails":{"chainId":4217,"escrowContract":"0x4d50500000000000000000000000000000000000","sessionProtocol":"v2"},"recipient":"0x742d35cc6634c0532925a3b844bc9e7595f8fe00","suggestedDeposit":"10000000","unitType":"llm_token"}`
	sessionID        = "3bdEB8ysvfXO9jQMrTziQsws9AuzKT0M86ujlt2ufjY"
	sessionB64Prefix = "eyJhbW91bnQiOiIyNSIsImN1cnJlbmN5Ijoi"
	sessionB64Suffix = "InVuaXRUeXBlIjoibGxtX3Rva2VuIn0"
)

func TestSessionChallengeVector(t *testing.T) {
	v := vector{
		name: "session", intent: "session", expires: "2025-01-06T12:05:00Z",
		request: sessionRequest(), wantRequest: sessionJCS, wantID: sessionID,
	}
	c := v.challenge(t)
	if !strings.HasPrefix(c.Request, sessionB64Prefix) || !strings.HasSuffix(c.Request, sessionB64Suffix) {
		t.Fatalf("request b64 = %s, want prefix %s and suffix %s", c.Request, sessionB64Prefix, sessionB64Suffix)
	}
	if got := mpp.ComputeID([]byte(vecSecret), c); got != sessionID {
		t.Fatalf("ComputeID = %s, want %s", got, sessionID)
	}
	c.ID = sessionID

	// The header form round-trips to the same challenge and still verifies.
	h, err := mpp.FormatChallenge(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `Payment id="` + sessionID + `", realm="api.example.com", method="tempo", intent="session", request="` + c.Request + `", expires="2025-01-06T12:05:00Z"`
	if h != want {
		t.Fatalf("FormatChallenge =\n%s\nwant\n%s", h, want)
	}
	parsed, err := mpp.ParseChallenges(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed) != 1 || parsed[0] != c {
		t.Fatalf("ParseChallenges = %+v, want [%+v]", parsed, c)
	}
	now := time.Date(2025, 1, 6, 12, 0, 0, 0, time.UTC)
	if err := mpp.Verify([]byte(vecSecret), parsed[0], now); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestNewChallengeMatchesVectorEncoding checks that NewChallenge encodes the
// request exactly as the vectors do and binds the expires string it emits.
func TestNewChallengeMatchesVectorEncoding(t *testing.T) {
	exp := time.Date(2025, 1, 6, 12, 5, 0, 0, time.UTC)
	c, err := mpp.NewChallenge([]byte(vecSecret), mpp.ChallengeParams{
		Realm: vecRealm, Method: "tempo", Intent: "session",
		Request: sessionRequest(), Expires: exp,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Expires != "2025-01-06T12:05:00.000Z" {
		t.Errorf("Expires = %s, want 2025-01-06T12:05:00.000Z", c.Expires)
	}
	if !strings.HasPrefix(c.Request, sessionB64Prefix) || !strings.HasSuffix(c.Request, sessionB64Suffix) {
		t.Errorf("Request = %s, want the session vector's encoding", c.Request)
	}
	var decoded map[string]any
	if err := mpp.DecodeJSON(c.Request, &decoded); err != nil {
		t.Fatal(err)
	}
	checkJCS(t, "decoded request", decoded, sessionJCS)
	// Same request, same realm/method/intent, only the expires spelling
	// differs from the vector: the id must be the HMAC of what was emitted.
	if want := mpp.ComputeID([]byte(vecSecret), c); c.ID != want {
		t.Errorf("ID = %s, want %s", c.ID, want)
	}
	if c.ID == sessionID {
		t.Errorf("ID equals the vector id although expires is spelled differently")
	}
	if c.Opaque != "" || c.Digest != "" || c.Description != "" {
		t.Errorf("unexpected optional fields: %+v", c)
	}
}

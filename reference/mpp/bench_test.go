package mpp_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mppws/conformance/reference/mpp"
)

// BenchmarkChallengeIssueVerify measures the per-402 server cost: build a
// session challenge (JCS, base64url, HMAC) and verify its echo.
func BenchmarkChallengeIssueVerify(b *testing.B) {
	p := mpp.ChallengeParams{
		Realm: "api.example.com", Method: "tempo", Intent: "session",
		Request: sessionRequest(),
		Opaque:  map[string]string{"pi": "pi_3abc123XYZ"},
		Expires: time.Now().Add(time.Hour),
	}
	secret := []byte(vecSecret)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		c, err := mpp.NewChallenge(secret, p)
		if err != nil {
			b.Fatal(err)
		}
		if err := mpp.Verify(secret, c, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAuthorization measures the per-request cost of reading a
// session voucher credential.
func BenchmarkParseAuthorization(b *testing.B) {
	c, err := mpp.NewChallenge([]byte(vecSecret), mpp.ChallengeParams{
		Realm: "api.example.com", Method: "tempo", Intent: "session",
		Request: sessionRequest(), Expires: time.Now().Add(time.Hour),
	})
	if err != nil {
		b.Fatal(err)
	}
	h, err := mpp.FormatAuthorization(mpp.Credential{
		Challenge: c,
		Source:    "did:pkh:eip155:4217:0x742d35cc6634c0532925a3b844bc9e7595f8fe00",
		Payload: json.RawMessage(`{"action":"voucher","channelId":"0x` + strings.Repeat("ab", 32) +
			`","cumulativeAmount":"1000","signature":"0x` + strings.Repeat("11", 64) + `1b"}`),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(h)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mpp.ParseAuthorization(h); err != nil {
			b.Fatal(err)
		}
	}
}

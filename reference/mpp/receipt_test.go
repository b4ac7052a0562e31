package mpp_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mppws/conformance/reference/mpp"
)

func TestReceiptEncoding(t *testing.T) {
	r := mpp.Receipt{
		Status:     mpp.ReceiptStatusSuccess,
		Method:     "tempo",
		Timestamp:  "2025-01-06T12:00:00.123Z",
		Reference:  "0xabc",
		ExternalID: "order<1>&2",
	}
	s, err := mpp.EncodeReceipt(r)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("receipt %q is not base64url-nopad: %v", s, err)
	}
	want := `{"status":"success","method":"tempo","timestamp":"2025-01-06T12:00:00.123Z","reference":"0xabc","externalId":"order<1>&2"}`
	if string(raw) != want {
		t.Errorf("receipt JSON %s, want %s", raw, want)
	}
	var back mpp.Receipt
	if err := mpp.DecodeReceipt(s, &back); err != nil {
		t.Fatal(err)
	}
	if back != r {
		t.Errorf("round trip %+v, want %+v", back, r)
	}
	if err := mpp.DecodeReceipt(s+"=", &back); err == nil {
		t.Error("padded receipt accepted")
	}

	r.ExternalID = ""
	s, _ = mpp.EncodeReceipt(r)
	raw, _ = base64.RawURLEncoding.DecodeString(s)
	if want := `{"status":"success","method":"tempo","timestamp":"2025-01-06T12:00:00.123Z","reference":"0xabc"}`; string(raw) != want {
		t.Errorf("receipt JSON %s, want %s", raw, want)
	}
}

func TestSessionReceiptEncoding(t *testing.T) {
	units := uint64(7)
	r := mpp.SessionReceipt{
		Method: "tempo", Intent: "session", Status: mpp.ReceiptStatusSuccess,
		Timestamp: "2025-01-06T12:00:00.000Z", Reference: "0x01", ChallengeID: "cid",
		ChannelID: "0x01", AcceptedCumulative: "100", Spent: "25", Units: &units, TxHash: "0xff",
	}
	s, err := mpp.EncodeReceipt(r)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(s)
	want := `{"method":"tempo","intent":"session","status":"success","timestamp":"2025-01-06T12:00:00.000Z","reference":"0x01",` +
		`"challengeId":"cid","channelId":"0x01","acceptedCumulative":"100","spent":"25","units":7,"txHash":"0xff"}`
	if string(raw) != want {
		t.Errorf("session receipt JSON\n %s\nwant\n %s", raw, want)
	}
	var back mpp.SessionReceipt
	if err := mpp.DecodeReceipt(s, &back); err != nil {
		t.Fatal(err)
	}
	if back.Units == nil || *back.Units != 7 || back.TxHash != "0xff" || back.ChallengeID != "cid" {
		t.Errorf("round trip %+v", back)
	}

	r.Units, r.TxHash = nil, ""
	s, _ = mpp.EncodeReceipt(r)
	raw, _ = base64.RawURLEncoding.DecodeString(s)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["units"]; ok {
		t.Errorf("nil units emitted: %s", raw)
	}
	if _, ok := m["txHash"]; ok {
		t.Errorf("empty txHash emitted: %s", raw)
	}
}

func TestProblems(t *testing.T) {
	cases := []struct {
		slug   string
		status int
		title  string
	}{
		{mpp.SlugPaymentRequired, http.StatusPaymentRequired, "Payment Required"},
		{mpp.SlugPaymentInsufficient, http.StatusPaymentRequired, "Payment Insufficient"},
		{mpp.SlugPaymentExpired, http.StatusPaymentRequired, "Payment Expired"},
		{mpp.SlugVerificationFailed, http.StatusPaymentRequired, "Verification Failed"},
		{mpp.SlugMethodUnsupported, http.StatusBadRequest, "Method Unsupported"},
		{mpp.SlugMalformedCredential, http.StatusPaymentRequired, "Malformed Credential"},
		{mpp.SlugInvalidChallenge, http.StatusPaymentRequired, "Invalid Challenge"},
		{mpp.SlugInvalidPayload, http.StatusPaymentRequired, "Invalid Payload"},
		{mpp.SlugBadRequest, http.StatusBadRequest, "Bad Request"},
		{mpp.SlugPaymentActionRequired, http.StatusPaymentRequired, "Payment Action Required"},
		{mpp.SlugInvalidSignature, http.StatusPaymentRequired, "Invalid Signature"},
		{mpp.SlugSignerMismatch, http.StatusPaymentRequired, "Signer Mismatch"},
		{mpp.SlugAmountExceedsDeposit, http.StatusPaymentRequired, "Amount Exceeds Deposit"},
		{mpp.SlugDeltaTooSmall, http.StatusPaymentRequired, "Delta Too Small"},
		{mpp.SlugChannelNotFound, http.StatusGone, "Channel Not Found"},
		{mpp.SlugChannelFinalized, http.StatusGone, "Channel Closed"},
		{mpp.SlugChallengeNotFound, http.StatusPaymentRequired, "Challenge Not Found"},
		{mpp.SlugInsufficientBalance, http.StatusPaymentRequired, "Insufficient Balance"},
	}
	for _, tc := range cases {
		p := mpp.NewProblem(tc.slug, "why")
		if p.Type != mpp.ProblemBase+tc.slug || p.Status != tc.status || p.Title != tc.title || p.Detail != "why" {
			t.Errorf("NewProblem(%s) = %+v, want status %d title %q", tc.slug, p, tc.status, tc.title)
		}
		if p.Slug() != tc.slug {
			t.Errorf("Slug() = %q, want %q", p.Slug(), tc.slug)
		}
		if p.Error() != tc.slug+": why" {
			t.Errorf("Error() = %q", p.Error())
		}
	}

	unknown := mpp.NewProblem("session/some-new-thing", "")
	if unknown.Status != http.StatusPaymentRequired || unknown.Title != "Some New Thing" || unknown.Error() != "session/some-new-thing" {
		t.Errorf("unknown slug problem %+v", unknown)
	}
	foreign := &mpp.Problem{Type: "https://mpp.dev/errors/invalid-payload"}
	if foreign.Slug() == mpp.SlugInvalidPayload {
		t.Error("a foreign problem type must not map to a paymentauth.org slug")
	}

	p := mpp.NewProblem(mpp.SlugPaymentExpired, "challenge expired at 2025-01-06T12:00:00Z")
	p.ChallengeID = "abc"
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"https://paymentauth.org/problems/payment-expired","title":"Payment Expired","status":402,"detail":"challenge expired at 2025-01-06T12:00:00Z","challengeId":"abc"}`
	if string(raw) != want {
		t.Errorf("problem JSON %s, want %s", raw, want)
	}
}

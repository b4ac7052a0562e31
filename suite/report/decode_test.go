package report

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mppws/conformance/reference/mpp"
)

func labels(bs []block) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Label)
	}
	return out
}

func TestDecodeCredentialInEitherDialect(t *testing.T) {
	ch := fixtureChallenge(t)
	auth := fixtureAuthorization(t, ch, 3000)
	for name, frame := range map[string]map[string]string{
		"A": {"type": "credential", "credential": auth},
		"B": {"mpp": "authorization", "authorization": auth},
	} {
		raw, _ := json.Marshal(frame)
		blocks := decodeFrame(string(raw))
		want := []string{"challenge echo", "challenge echo · request", "challenge echo · opaque", "payload", "source"}
		if !slices.Equal(labels(blocks), want) {
			t.Fatalf("dialect %s: blocks %q, want %q", name, labels(blocks), want)
		}
		for i, wantText := range []string{`"id": "` + ch.ID + `"`, `"amount": "1000"`, `"nonce": "yt4g36j_RmhHygIU"`, `"cumulativeAmount": "3000"`, `"did:pkh:eip155:4217:` + fixturePayer + `"`} {
			if blocks[i].Err != "" || !strings.Contains(blocks[i].Text, wantText) {
				t.Errorf("dialect %s: %s block %q (err %q) lacks %q", name, blocks[i].Label, blocks[i].Text, blocks[i].Err, wantText)
			}
		}
	}
}

func TestDecodeChallengeFrameAndProbeHeader(t *testing.T) {
	ch := fixtureChallenge(t)
	raw, _ := json.Marshal(map[string]any{"type": "challenge", "challenge": ch})
	blocks := decodeFrame(string(raw))
	if got := labels(blocks); !slices.Equal(got, []string{"challenge · request", "challenge · opaque"}) || !strings.Contains(blocks[0].Text, `"sessionProtocol": "v2"`) {
		t.Errorf("challenge frame: %q %q", got, blocks)
	}
	header, err := mpp.FormatChallenge(ch)
	if err != nil {
		t.Fatal(err)
	}
	blocks = decodeFrame("probe GET http://h/: HTTP 402, WWW-Authenticate: " + header)
	if got := labels(blocks); !slices.Equal(got, []string{"WWW-Authenticate · request", "WWW-Authenticate · opaque"}) || !strings.Contains(blocks[0].Text, `"unitType": "message"`) {
		t.Errorf("probe note: %q %q", got, blocks)
	}
}

// The suite sends malformed credentials on purpose: they show why they do
// not decode, and frames that carry nothing encoded show nothing.
func TestDecodeMalformedAndPlainFrames(t *testing.T) {
	for _, tc := range []struct{ frame, label, err string }{
		{`{"type":"credential","credential":"Payment !!!"}`, "credential", "not base64url"},
		{`{"type":"credential","credential":"Payment bm90IGpzb24"}`, "credential", "not a JSON object"},
		{`{"type":"challenge","challenge":{"request":"%%%"}}`, "challenge · request", "not base64url"},
	} {
		blocks := decodeFrame(tc.frame)
		i := slices.IndexFunc(blocks, func(b block) bool { return b.Label == tc.label })
		if i < 0 || !strings.Contains(blocks[i].Err, tc.err) {
			t.Errorf("%s: blocks %q, want %s with error %q", tc.frame, blocks, tc.label, tc.err)
		}
	}
	for _, plain := range []string{`{"type":"message","data":"unit-1"}`, `{"type":"credential","credential":42}`, `close 1000 ""`, "not json {"} {
		if blocks := decodeFrame(plain); len(blocks) != 0 {
			t.Errorf("%s: decoded %q", plain, blocks)
		}
	}
}

func TestPrettyKeepsMemberOrder(t *testing.T) {
	if got, want := pretty(`{"z":1,"a":{"b":2}}`), "{\n  \"z\": 1,\n  \"a\": {\n    \"b\": 2\n  }\n}"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := pretty("close 1000"); got != "close 1000" {
		t.Errorf("non-JSON changed: %q", got)
	}
}

package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/reference/mpp"
	"github.com/mppws/conformance/reference/server"
)

// rawCredential builds a credential frame from hand-written credential JSON,
// for shapes FormatAuthorization refuses to produce.
func rawCredential(credJSON string) []byte {
	b, _ := frame.A.Encode(frame.Frame{Kind: frame.KindCredential, Credential: "Payment " + base64.RawURLEncoding.EncodeToString([]byte(credJSON))})
	return b
}

// voucherJSON is a v2-payer-signs voucher payload for amount, with extra
// members spliced in before the closing brace.
func voucherJSON(t *testing.T, amount int64, extra string) string {
	t.Helper()
	b, err := json.Marshal(voucher(t, "v2-payer-signs", amount, ""))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "}") + extra + "}"
}

func echoJSON(t *testing.T, ch mpp.Challenge) string {
	t.Helper()
	b, err := json.Marshal(ch)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (c *conn) writeRaw(b []byte) {
	c.t.Helper()
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// TestStrictJSON: credentials and frames are read as serde and JavaScript
// read them (exact member names) and a repeated name is refused, where
// encoding/json would match "CumulativeAmount" and take the last of two.
func TestStrictJSON(t *testing.T) {
	url := start(t, server.Config{Intent: server.IntentSession, Messages: 100, Tick: big.NewInt(10)})

	t.Run("a case variant is not the member", func(t *testing.T) {
		c := dial(t, url)
		p := strings.Replace(voucherJSON(t, 30, ""), `"cumulativeAmount"`, `"CumulativeAmount"`, 1)
		c.writeRaw(rawCredential(`{"challenge":` + echoJSON(t, c.challenge) + `,"payload":` + p + `}`))
		c.rejected("invalid-payload: cumulativeAmount")
	})
	t.Run("a later case variant does not override", func(t *testing.T) {
		c := dial(t, url)
		// Signed for 30; a case-insensitive reader would take 40 and
		// reject the signature.
		p := voucherJSON(t, 30, `,"CUMULATIVEAMOUNT":"40"`)
		c.writeRaw(rawCredential(`{"challenge":` + echoJSON(t, c.challenge) + `,"payload":` + p + `}`))
		for range 3 {
			if f := c.next(); f.Kind != frame.KindMessage {
				t.Fatalf("got %s %q, want the 3 messages 30 pays for", f.Kind, f.Error)
			}
		}
		if f := c.next(); f.Kind != frame.KindNeedVoucher || f.NeedVoucher.AcceptedCumulative != "30" {
			t.Fatalf("got %+v, want needVoucher with accepted 30", f)
		}
	})
	t.Run("a repeated payload member", func(t *testing.T) {
		c := dial(t, url)
		p := voucherJSON(t, 30, `,"cumulativeAmount":"30"`)
		c.writeRaw(rawCredential(`{"challenge":` + echoJSON(t, c.challenge) + `,"payload":` + p + `}`))
		c.rejected("malformed-credential")
	})
	t.Run("two challenge members", func(t *testing.T) {
		c := dial(t, url)
		bad := c.challenge
		bad.Realm = "evil.example"
		// The last one is genuine: a last-wins reader would accept it.
		c.writeRaw(rawCredential(`{"challenge":` + echoJSON(t, bad) + `,"payload":` + voucherJSON(t, 30, "") + `,"challenge":` + echoJSON(t, c.challenge) + `}`))
		c.rejected("malformed-credential")
	})
	t.Run("a repeated frame member", func(t *testing.T) {
		c := dial(t, url)
		good := rawCredential(`{"challenge":` + echoJSON(t, c.challenge) + `,"payload":` + voucherJSON(t, 30, "") + `}`)
		c.writeRaw(append(bytes.TrimSuffix(good, []byte("}")), []byte(`,"type":"credential"}`)...))
		c.rejected("malformed frame")
	})
	t.Run("a case variant frame member", func(t *testing.T) {
		c := dial(t, url)
		good := rawCredential(`{"challenge":` + echoJSON(t, c.challenge) + `,"payload":` + voucherJSON(t, 30, "") + `}`)
		c.writeRaw(bytes.Replace(good, []byte(`"credential":`), []byte(`"Credential":`), 1))
		c.rejected(`missing field "credential"`)
	})
	t.Run("unknown members are ignored", func(t *testing.T) {
		c := dial(t, url)
		p := voucherJSON(t, 40, `,"extra":{"a":[1,2]}`) // 30 is accepted already
		f := rawCredential(`{"challenge":` + echoJSON(t, c.challenge) + `,"payload":` + p + `,"x":1}`)
		c.writeRaw(append(bytes.TrimSuffix(f, []byte("}")), []byte(`,"unknown":true}`)...))
		if f := c.next(); f.Kind != frame.KindMessage {
			t.Fatalf("got %s %q, want a message", f.Kind, f.Error)
		}
	})
}

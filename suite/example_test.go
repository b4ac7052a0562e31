package suite_test

import (
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/server"
	"github.com/mppws/conformance/reference/tempo"
	"github.com/mppws/conformance/suite"
)

// TestGoAPI is how a Go implementation gates its own go test on the suite
// (README, "Gating a Go implementation"): start the server, hand its URL to
// suite.Test, get one subtest per case ID. The server here is the
// reference; yours goes in its place.
func TestGoAPI(t *testing.T) {
	var channels []tempo.Channel
	for _, ch := range fixtures.Default() {
		channels = append(channels, ch.Channel)
	}
	srv, err := server.New(server.Config{Secret: []byte("example secret"), Tick: big.NewInt(1000), Channels: channels})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()

	s := suite.Test(t, suite.Config{
		Targets: []string{"ws" + strings.TrimPrefix(hs.URL, "http")},
		Secret:  "example secret",
		Select:  []string{"wire", "replay"}, // leave empty for every case
	})
	if !s.Passed {
		t.Errorf("not conformant: %v", s.Problems)
	}
}

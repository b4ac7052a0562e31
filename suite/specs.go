package suite

import . "github.com/onsi/ginkgo/v2"

// One top-level container holds every area, so the cases run in this
// order (Ginkgo shuffles only top-level containers unless asked to shuffle
// everything): cases that close a channel for good run last.
var _ = Describe("MPP WebSocket conformance", func() {
	wireCases()
	replayCases()
	voucherCases()
	robustCases()
	dialectBCases()
	closingCases()
})

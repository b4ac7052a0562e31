// Package harness runs conformance cases and knows none of them: the
// connection to a target (one reader, one event loop), the dialects, the
// suite's wallet and its accounting of every channel, the case context that
// assertions and failures go through, and the scheduler that runs cases side
// by side. The cases live in the packages under suite/cases, one per area.
package harness

// Package suite is the MPP WebSocket conformance suite: the cases of
// suite/cases run by the harness against any target, reported as Ginkgo
// specs (the CLI, JUnit and JSON reports) or as Go subtests (Test). With no
// target it starts the embedded reference implementation.
package suite

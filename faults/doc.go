// Package faults holds edged's fault suites, run against the built binary
// from outside, the way a device meets them: `make powercut` pulls the plug
// (a state directory on LazyFS, whose unsynced writes a simulated power cut
// throws away, or tears), `make chaos` kills edged in loops, flaps and
// blackholes its uplink, damages its buffer file and fills a tiny
// partition. Each scenario counts, per topic, what edged acknowledged and
// what reached the upstream Mosquitto: acknowledged, delivered, lost,
// duplicates, out of order.
//
// Everything here is test code: the harness (rig, edged runner, raw MQTT
// clients, ledger) is compiled and vetted by `go test ./...`, which runs
// only the ledger's own test; the suites themselves are behind the build
// tag `faults`. They print their figures with -v. They do not test edged's parts
// one by one — each part's own tests do that — nor anything that needs more
// than loopback.
package faults

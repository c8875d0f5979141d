// Package testpeer starts the real peers edged's tests talk to — Mosquitto,
// its command-line clients, pymodbus, socat pty pairs — and cleans them up
// with t.Cleanup. A missing peer skips the test with a clear message, or
// fails it when EDGED_REQUIRE_PEERS=1 (as in CI).
//
// It is imported by tests only.
package testpeer

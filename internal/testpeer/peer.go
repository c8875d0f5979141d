package testpeer

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Need returns the path of the named program, or skips the test when it is
// missing (fails it when EDGED_REQUIRE_PEERS=1). install names the Debian
// package that provides it.
func Need(t testing.TB, program, install string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	if os.Getenv("EDGED_REQUIRE_PEERS") == "1" {
		t.Fatalf("peer %s not found and EDGED_REQUIRE_PEERS=1: apt-get install %s", program, install)
	}
	t.Skipf("peer %s not found: apt-get install %s (set EDGED_REQUIRE_PEERS=1 to fail instead)", program, install)
	return ""
}

// FreePort returns a loopback TCP address that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Port returns the port part of a host:port address as an int.
func Port(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

// Eventually polls cond every 10ms until it holds or limit passes, then fails
// the test with what. It is a bounded wait on an observable event, not a sleep.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitListening waits until something accepts TCP connections on addr.
func WaitListening(t testing.TB, addr string, limit time.Duration) {
	t.Helper()
	Eventually(t, limit, "a listener on "+addr, func() bool { return listening(addr) })
}

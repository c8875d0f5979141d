package testpeer

import (
	"fmt"
	"net"
	"testing"
)

// TestMosquittoStartsAgainWhenAPortIsTaken takes the extra listener's port
// before mosquitto can bind it, as another test's connection may: the
// broker must be started again on other ports, not fail the test.
func TestMosquittoStartsAgainWhenAPortIsTaken(t *testing.T) {
	calls := 0
	var extra string
	m := StartMosquittoPorts(t, 1, func(addrs []string) string {
		calls++
		if calls == 1 {
			ln, err := net.Listen("tcp", addrs[0])
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}
		extra = addrs[0]
		return fmt.Sprintf("max_queued_messages 0\nlistener %d 127.0.0.1\n", Port(t, extra))
	})
	if calls != 2 {
		t.Errorf("configured %d times, want 2 (the first port was taken)", calls)
	}
	if !listening(m.Addr) || !listening(extra) {
		t.Errorf("not listening on %s and %s", m.Addr, extra)
	}
}

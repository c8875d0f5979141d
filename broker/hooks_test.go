package broker

import "testing"

func TestHookEventsHoldExactlyTheirEvents(t *testing.T) {
	s := newHookEvents(0, 63, 64, 200, 255)
	for e := range 256 {
		want := e == 0 || e == 63 || e == 64 || e == 200 || e == 255
		if got := s.has(byte(e)); got != want {
			t.Errorf("has(%d) = %v, want %v", e, got, want)
		}
	}
}

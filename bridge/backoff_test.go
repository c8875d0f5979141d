package bridge

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	lo := func() float64 { return 0 }
	hi := func() float64 { return 0.999999 }
	cases := []struct {
		name   string
		n      int
		max    time.Duration
		rnd    func() float64
		lo, hi time.Duration
	}{
		{"the first wait is between a quarter and half a second", 0, 30 * time.Second, lo, 250 * time.Millisecond, 250 * time.Millisecond},
		{"the first wait with the most jitter stays under half a second", 0, 30 * time.Second, hi, 499 * time.Millisecond, 500 * time.Millisecond},
		{"each failed round doubles the wait", 3, 30 * time.Second, lo, 2 * time.Second, 2 * time.Second},
		{"the wait never exceeds max_backoff", 20, 30 * time.Second, hi, 29 * time.Second, 30 * time.Second},
		{"the wait is at least half of max_backoff once capped", 20, 30 * time.Second, lo, 15 * time.Second, 15 * time.Second},
		{"a tiny max_backoff is raised to the first step", 5, time.Millisecond, hi, 249 * time.Millisecond, 500 * time.Millisecond},
		{"a huge number of failures does not overflow", 1 << 20, time.Hour, lo, 30 * time.Minute, 30 * time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := backoff(c.n, minBackoff, c.max, c.rnd)
			if got < c.lo || got > c.hi {
				t.Errorf("backoff(%d, %v) = %v, want within [%v, %v]", c.n, c.max, got, c.lo, c.hi)
			}
		})
	}
}

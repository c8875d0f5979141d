package bridge

import "time"

// minBackoff is the first wait after a failed connection round.
const minBackoff = 500 * time.Millisecond

// backoff is the wait before connection round n (0 after a connection that
// worked, then 1, 2, ... while rounds keep failing): exponential from
// first (minBackoff but in tests), capped by max, with "equal jitter" (half fixed, half random)
// so a fleet of gateways that lost the same upstream does not come back in
// lockstep. rnd returns a number in [0, 1).
func backoff(n int, first, max time.Duration, rnd func() float64) time.Duration {
	if max < first {
		max = first
	}
	d := first
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	half := d / 2
	return half + time.Duration(rnd()*float64(d-half))
}

package modbus

import "time"

// latencyBounds are the upper bounds of the request-latency buckets: from a
// fast Modbus TCP answer to an RTU timeout at a low baud rate.
var latencyBounds = [...]time.Duration{
	2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// Latency is a histogram of how long the bus's transactions took, answered
// or not. Its Sum is the time the bus was busy, so the share of wall time
// a bus is busy is the growth of Sum over an interval divided by it.
type Latency struct {
	Count uint64
	Sum   time.Duration
	// Buckets[i] counts the transactions that took at most Bounds()[i]
	// (cumulative, as Prometheus histograms count). Count includes
	// those slower than every bound.
	Buckets [len(latencyBounds)]uint64
}

// Bounds returns the buckets' upper bounds (shared; do not modify).
func (Latency) Bounds() []time.Duration { return latencyBounds[:] }

func (l *Latency) add(d time.Duration) {
	l.Count++
	l.Sum += d
	for i, b := range latencyBounds {
		if d <= b {
			l.Buckets[i]++
		}
	}
}

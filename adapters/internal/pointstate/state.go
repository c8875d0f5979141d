package pointstate

import (
	"math"
	"time"
)

// State is what was last published for one point. The zero value publishes
// every good reading (no deadband, no heartbeat) and a failed one once per
// transition to bad.
type State struct {
	// Deadband holds a good reading back while it differs from the last
	// published value by no more than this; 0 publishes every reading.
	Deadband float64
	// Heartbeat publishes a reading the deadband holds back once this long
	// has passed since the last publication; 0 never does.
	Heartbeat time.Duration

	published bool
	last      any
	lastAt    time.Time
	bad       bool
	badErr    string
}

// Good reports whether a good reading v taken at now is to be published,
// and if so records it as published.
func (s *State) Good(v any, now time.Time) bool {
	if s.published && !s.bad && !s.changed(v) && (s.Heartbeat <= 0 || now.Sub(s.lastAt) < s.Heartbeat) {
		return false
	}
	s.Set(v, now)
	return true
}

// Set records v as published at now whatever the deadband says: the
// read-back after a write is always published.
func (s *State) Set(v any, now time.Time) {
	s.published, s.last, s.lastAt, s.bad, s.badErr = true, v, now, false, ""
}

// Bad records a failed reading and reports whether it is to be published:
// only when the point goes bad. reason is true when the point was bad
// already and err says something new (a timeout becoming a closed port),
// which is worth a log line but not a publication.
func (s *State) Bad(err error) (publish, reason bool) {
	msg := err.Error()
	if s.bad {
		reason = s.badErr != msg
		s.badErr = msg
		return false, reason
	}
	s.bad, s.badErr = true, msg
	return true, false
}

// changed reports whether v differs from the last published value by more
// than the deadband. Without a deadband every reading counts.
func (s *State) changed(v any) bool {
	if s.Deadband <= 0 {
		return true
	}
	a, aok := toFloat(s.last)
	c, cok := toFloat(v)
	if !aok || !cok {
		return s.last != v
	}
	if math.IsNaN(a) || math.IsNaN(c) {
		return math.IsNaN(a) != math.IsNaN(c)
	}
	return math.Abs(c-a) > s.Deadband
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

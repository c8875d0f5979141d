package liveness

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Loop is one goroutine's progress record. The zero value is not usable;
// make one with Set.Loop. Its methods are safe for concurrent use: the loop
// calls Busy and Idle, a supervisor calls Check.
type Loop struct {
	name  string
	limit time.Duration
	now   func() time.Time

	since atomic.Int64 // unix nanoseconds the current operation began; 0 while idle
	what  atomic.Pointer[string]
}

// Busy records that the loop has begun an operation (what names it, e.g.
// "read holding 0..9"). It replaces any operation still recorded. A loop
// that names the same operation as last time allocates nothing.
func (l *Loop) Busy(what string) {
	if p := l.what.Load(); p == nil || *p != what {
		w := what
		l.what.Store(&w)
	}
	l.since.Store(l.now().UnixNano())
}

// Idle records that the loop finished its operation and waits for work.
func (l *Loop) Idle() { l.since.Store(0) }

// Do runs fn as one operation: Busy before, Idle after.
func (l *Loop) Do(what string, fn func()) {
	l.Busy(what)
	defer l.Idle()
	fn()
}

// Check returns an error naming the loop and its operation when that
// operation has lasted longer than the loop's limit at now.
func (l *Loop) Check(now time.Time) error {
	s := l.since.Load()
	if s == 0 {
		return nil
	}
	d := now.Sub(time.Unix(0, s))
	if d <= l.limit {
		return nil
	}
	what := ""
	if p := l.what.Load(); p != nil {
		what = *p
	}
	return fmt.Errorf("%s: stuck in %s for %v (limit %v)", l.name, what, d.Round(time.Second), l.limit)
}

// Set is a part's collection of loops.
type Set struct {
	now func() time.Time

	mu    sync.Mutex
	loops []*Loop
}

// NewSet returns an empty set that reads the clock with now (nil: time.Now).
func NewSet(now func() time.Time) *Set {
	if now == nil {
		now = time.Now
	}
	return &Set{now: now}
}

// Loop adds a loop named name whose single operations must each finish
// within limit.
func (s *Set) Loop(name string, limit time.Duration) *Loop {
	l := &Loop{name: name, limit: limit, now: s.now}
	s.mu.Lock()
	s.loops = append(s.loops, l)
	s.mu.Unlock()
	return l
}

// Remove forgets l (a loop whose goroutine has ended).
func (s *Set) Remove(l *Loop) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.loops {
		if x == l {
			s.loops = append(s.loops[:i], s.loops[i+1:]...)
			return
		}
	}
}

// Check returns every stuck loop's error, joined, or nil.
func (s *Set) Check() error {
	now := s.now()
	s.mu.Lock()
	loops := append([]*Loop(nil), s.loops...)
	s.mu.Unlock()
	var errs []error
	for _, l := range loops {
		if err := l.Check(now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

package testpeer

import (
	"sync/atomic"
	"time"
)

// Clock is the real clock moved forward by what the test adds, so a test
// can let hours pass for a watchdog (package liveness) without waiting for
// them. Its zero value reads as time.Now; it is safe for concurrent use.
type Clock struct{ ahead atomic.Int64 }

// Now returns the real time plus everything added so far.
func (c *Clock) Now() time.Time { return time.Now().Add(time.Duration(c.ahead.Load())) }

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) { c.ahead.Add(int64(d)) }

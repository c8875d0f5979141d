package testpeer

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// StopWait is how long the stop function from Go waits for run to return
// after its context ends.
const StopWait = 10 * time.Second

// Go runs run in a goroutine of its own with a context that only stop ends,
// so every part a test starts has an owner that waits for it. stop cancels
// that context and waits up to StopWait; it returns an error when run did
// not return in time or returned one (a part's Run returns nil once its
// context ends). A later call of stop returns the same at once. When the
// test has not called stop by its end, the test's cleanup does and fails the
// test on the error.
func Go(t testing.TB, run func(ctx context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var (
		once   sync.Once
		err    error
		byTest atomic.Bool
	)
	wait := func() error {
		once.Do(func() {
			cancel()
			select {
			case e := <-done:
				if e != nil {
					err = fmt.Errorf("run returned %v, want nil", e)
				}
			case <-time.After(StopWait):
				err = fmt.Errorf("run did not return within %v of cancel", StopWait)
			}
		})
		return err
	}
	t.Cleanup(func() {
		// A test that stopped run itself has dealt with the error.
		if err := wait(); err != nil && !byTest.Load() {
			t.Error(err)
		}
	})
	return func() error {
		byTest.Store(true)
		return wait()
	}
}

// GoroutinesGone waits up to limit until no goroutine's stack mentions any
// of names (function names as a stack trace prints them, e.g.
// "adapters/serialline.runSession"), and fails the test otherwise.
func GoroutinesGone(t testing.TB, limit time.Duration, names ...string) {
	t.Helper()
	Eventually(t, limit, "no goroutine in "+strings.Join(names, " or "), func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, n := range names {
			if strings.Contains(stacks, n) {
				return false
			}
		}
		return true
	})
}

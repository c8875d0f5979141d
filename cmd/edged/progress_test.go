package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stuckPart is a part whose Stalled answer the test sets.
type stuckPart struct{ err atomic.Pointer[error] }

func (p *stuckPart) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (p *stuckPart) Stalled() error {
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}
func (p *stuckPart) set(err error) { p.err.Store(&err) }

func TestTheWatchdogIsPingedOnlyWhileEveryPartMakesProgress(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var logs bytes.Buffer
	stuck := &stuckPart{}
	stuck.set(errors.New("modbus bus rs485: stuck in read holding 0..9 for 1m0s (limit 5s)"))
	p := &progress{parts: []part{&stuckPart{}, stuck}, log: slog.New(slog.NewTextHandler(&logs, nil))}

	// Count the watchdog's health checks so the test can wait for ticks
	// rather than for time.
	checks := make(chan bool, 100)
	n := &notifier{socket: sock, watchdog: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.pingWatchdog(ctx, func() bool { ok := p.ok(); checks <- ok; return ok })
	}()
	defer func() { cancel(); <-done }()

	t.Run("no ping while a part is stuck", func(t *testing.T) {
		for range 5 {
			select {
			case ok := <-checks:
				if ok {
					t.Fatal("a stuck part was reported healthy")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the watchdog loop stopped checking")
			}
		}
		_ = conn.SetReadDeadline(time.Now())
		if _, err := conn.Read(make([]byte, 64)); err == nil {
			t.Fatal("WATCHDOG=1 was sent while a part was stuck")
		}
		if c := strings.Count(logs.String(), "no longer pinging"); c != 1 {
			t.Fatalf("the stall was logged %d times, want once:\n%s", c, logs.String())
		}
		if !strings.Contains(logs.String(), "rs485: stuck in read holding 0..9") {
			t.Fatalf("the log does not say which part is stuck:\n%s", logs.String())
		}
	})
	t.Run("pings resume once it makes progress again", func(t *testing.T) {
		stuck.set(nil)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		k, err := conn.Read(buf)
		if err != nil || string(buf[:k]) != "WATCHDOG=1" {
			t.Fatalf("got %q, %v; want WATCHDOG=1", buf[:k], err)
		}
		if !strings.Contains(logs.String(), "makes progress again") {
			t.Fatalf("the recovery was not logged:\n%s", logs.String())
		}
	})
}

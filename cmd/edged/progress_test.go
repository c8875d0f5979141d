package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edged/edged/broker"
	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
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
	p := &progress{parts: []staller{&stuckPart{}, stuck}, log: slog.New(slog.NewTextHandler(&logs, nil))}

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

// plainPart is a part that cannot tell whether it makes progress.
type plainPart struct{}

func (plainPart) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func TestTheWatchdogChecksTheBrokerAndTheBuffer(t *testing.T) {
	dir := t.TempDir()
	brk, err := broker.New(config.DefaultBroker(config.Broker{Listeners: []config.Listener{{Type: "tcp", Address: "127.0.0.1:0"}}}), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := buffer.Open(buffer.Options{Path: filepath.Join(dir, "buffer.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	stuck := &stuckPart{}
	t.Run("with an uplink: the broker, the buffer and every part that can tell", func(t *testing.T) {
		got := watched(brk, buf, []part{stuck, plainPart{}})
		want := []staller{brk, buf, stuck}
		if !slices.Equal(got, want) {
			t.Fatalf("watched = %v, want %v", got, want)
		}
	})
	t.Run("without an uplink: no buffer to check", func(t *testing.T) {
		got := watched(brk, nil, []part{stuck})
		if want := []staller{brk, stuck}; !slices.Equal(got, want) {
			t.Fatalf("watched = %v, want %v", got, want)
		}
	})
}

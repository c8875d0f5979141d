package modbus

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/adapters/modbus/modbussim"
	"github.com/edged/edged/config"
	"github.com/edged/edged/config/configtest"
	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/liveness"
)

// silentServer accepts Modbus TCP connections and reads requests but never
// answers, like a gateway whose serial side hangs. Each request's first
// bytes are sent on the returned channel. hangUp closes the listener and
// every connection; a bus stuck in a request waits for that, not for ctx.
func silentServer(t *testing.T) (addr string, requests <-chan []byte, hangUp func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 16)
	done := make(chan struct{})
	var once sync.Once
	hangUp = func() { once.Do(func() { ln.Close(); <-done }) }
	t.Cleanup(hangUp)
	go func() {
		var conns []net.Conn
		var wg sync.WaitGroup
		defer func() {
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
			close(done)
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			wg.Go(func() {
				buf := make([]byte, 260)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						select {
						case got <- append([]byte(nil), buf[:n]...):
						default:
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	}()
	return ln.Addr().String(), got, hangUp
}

func TestTheWatchdogSeesABusStuckInARequestPastItsTimeout(t *testing.T) {
	addr, requests, hangUp := silentServer(t)
	cfg := config.Bus{Name: "hung", Address: addr, Timeout: dur(time.Hour), Devices: []config.Device{{
		Name: "meter", Unit: 1, Interval: dur(time.Hour),
		Points: []config.Point{{Name: "v", Table: "holding", Address: 0, Type: "uint16"}},
	}}}
	b, err := New(configtest.Bus(t, cfg), "gw", testpeer.NewRecorder(), nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	clock := &testpeer.Clock{}
	b.live = liveness.NewSet(clock.Now)
	stop := testpeer.Go(t, b.Run)
	defer func() {
		hangUp()
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()

	select {
	case <-requests:
	case <-time.After(15 * time.Second):
		t.Fatal("the bus sent no request")
	}
	if err := b.Stalled(); err != nil {
		t.Fatalf("a request inside its timeout was reported stuck: %v", err)
	}
	clock.Add(time.Hour + stallMargin + time.Minute)
	err = b.Stalled()
	if err == nil {
		t.Fatal("a request past its timeout and margin was not reported")
	}
	for _, want := range []string{`"hung"`, `"meter"`, "read holding registers 0..0", "limit 1h0m10s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Stalled() = %q, want it to name %s", err, want)
		}
	}
}

func TestTheWatchdogSeesAHealthyBusMakeProgress(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := modbussim.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Bus{Name: "ok", Address: addr, Timeout: dur(time.Second), Devices: []config.Device{{
		Name: "meter", Unit: 1, Interval: dur(time.Hour),
		Points: []config.Point{{Name: "voltage", Table: "input", Address: 0, Type: "float32"}},
	}}}
	rec := testpeer.NewRecorder()
	b, err := New(configtest.Bus(t, cfg), "gw", rec, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	clock := &testpeer.Clock{}
	b.live = liveness.NewSet(clock.Now)
	testpeer.Go(t, b.Run)

	// Once the reading is out the bus waits an hour for the next poll:
	// waiting is progress, however long it lasts.
	waitFor(t, "a reading", func() bool { return rec.Last("gw/meter/voltage") != "" })
	clock.Add(24 * time.Hour)
	if err := b.Stalled(); err != nil {
		t.Fatalf("a bus waiting for its next poll was reported stuck: %v", err)
	}
}

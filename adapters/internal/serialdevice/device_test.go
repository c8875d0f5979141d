package serialdevice

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/adapters/internal/serialport"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/liveness"
	"github.com/edged/edged/telemetry"
)

// TestNewRefusesOnlyANilPublisher: the rules of a [[serial]] or [[at]]
// table are config's (config's TestEveryRuleAnAdapterOnceCheckedIsConfigs);
// New converts what config validated.
func TestNewRefusesOnlyANilPublisher(t *testing.T) {
	if _, err := New(validConfig("serial", "/dev/null", 9600), "gw", nil, nil); err == nil {
		t.Error("accepted no publisher")
	}
	if _, err := New(validConfig("serial", "/dev/null", 9600), "gw", testpeer.NewRecorder(), nil); err != nil {
		t.Error(err)
	}
}

// validConfig is a device's config as config.Load completes it.
func validConfig(kind, port string, baud int) Config {
	return Config{Kind: kind, Name: "s", Port: config.SerialPort{Port: port, Baud: baud, Parity: "N", DataBits: 8, StopBits: 1},
		Topic: telemetry.DefaultTemplate, Payload: "json"}
}

func TestRunShowsTheDeviceOfflineWhenItsPortCloses(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	rec := testpeer.NewRecorder()
	cfg := validConfig("at", pair.A, 115200)
	cfg.Name = "m"
	d, err := New(cfg, "gw", rec, testpeer.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	session := func(ctx context.Context, c *serialport.Conn) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case _, ok := <-c.Data:
				if !ok {
					return c.Err()
				}
			}
		}
	}
	// The adapter decides when the device is online; here, with its port.
	testpeer.Go(t, func(ctx context.Context) error {
		d.Run(ctx, session, func(open bool) {
			if open {
				d.Status.Set(true)
			}
		})
		return nil
	})
	rec.WaitLast(t, "gw/m/status", "online")
	pair.Stop()
	rec.WaitLast(t, "gw/m/status", "offline")
	if got := rec.On("gw/m/status"); !slices.Equal(got, []string{"offline", "online", "offline"}) {
		t.Errorf("status history %q", got)
	}
	if d.Opens() != 1 {
		t.Errorf("opens = %d, want 1", d.Opens())
	}
}

// writer runs a device on a pty pair whose session writes p once and then
// waits for the end. The device's watchdog clock is the returned one;
// wrote says how the write went.
type writer struct {
	d     *Device
	pair  *testpeer.PtyPair
	clock *testpeer.Clock
	stop  func() error
	wrote chan error
}

func startWriter(t *testing.T, p []byte) *writer {
	t.Helper()
	pair := testpeer.StartPtyPair(t)
	d, err := New(validConfig("serial", pair.A, 115200), "gw", testpeer.NewRecorder(), testpeer.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{d: d, pair: pair, clock: &testpeer.Clock{}, wrote: make(chan error, 1)}
	d.live = liveness.NewSet(w.clock.Now)
	w.stop = testpeer.Go(t, func(ctx context.Context) error {
		d.Run(ctx, func(ctx context.Context, c *serialport.Conn) error {
			err := d.Write(c, p)
			select {
			case w.wrote <- err:
			default: // a later session after a reopen
			}
			if err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		}, nil)
		return nil
	})
	return w
}

// written waits for the write to end and returns its error.
func (w *writer) written(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.wrote:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("the write did not end")
		return nil
	}
}

func TestTheWatchdogSeesAWriteThatNoLongerMoves(t *testing.T) {
	// Nobody reads the far end of the pair: once socat's and the kernel's
	// buffers are full, the write blocks, as on a line whose flow control
	// never lets it send.
	w := startWriter(t, make([]byte, 16<<20))
	// Let an hour pass at every look: a chunk that is still being written
	// an hour (of the shifted clock) after it began is stuck.
	var stalled error
	testpeer.Eventually(t, 15*time.Second, "the blocked write to be reported", func() bool {
		w.clock.Add(time.Hour)
		stalled = w.d.Stalled()
		return stalled != nil
	})
	if !strings.Contains(stalled.Error(), `serial "s": stuck in write 512 bytes`) {
		t.Errorf("Stalled() = %q, want it to name the device and the write", stalled)
	}
	w.pair.Stop() // the write fails once the port vanishes, and Run can end
	if err := w.written(t); err == nil {
		t.Error("the blocked write returned no error when its port vanished")
	}
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestTheWatchdogSeesADeviceWaitingForDataMakeProgress(t *testing.T) {
	w := startWriter(t, []byte("PING\r\n"))
	if err := w.written(t); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(24 * time.Hour)
	if err := w.d.Stalled(); err != nil {
		t.Fatalf("a device waiting for data was reported stuck: %v", err)
	}
}

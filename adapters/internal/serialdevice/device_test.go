package serialdevice

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/edged/edged/adapters/internal/serialport"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

func TestNewRefusesWhatNoSerialDeviceCanRun(t *testing.T) {
	ok := Config{Kind: "serial", Name: "s", Port: config.SerialPort{Port: "/dev/null"}, DefaultBaud: 9600}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "serial: name is empty"},
		{"no port", func(c *Config) { c.Port.Port = "" }, `serial "s": port is empty`},
		{"an unknown parity", func(c *Config) { c.Port.Parity = "M" }, `serial "s": parity "M"`},
		{"an unknown payload format", func(c *Config) { c.Payload = "xml" }, `serial "s": payload "xml"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.edit(&cfg)
			if _, err := New(cfg, "gw", testpeer.NewRecorder(), nil); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
	if _, err := New(ok, "gw", nil, nil); err == nil {
		t.Error("accepted no publisher")
	}
}

func TestRunShowsTheDeviceOfflineWhenItsPortCloses(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	rec := testpeer.NewRecorder()
	d, err := New(Config{Kind: "at", Name: "m", Port: config.SerialPort{Port: pair.A}}, "gw", rec, testpeer.Logger(t))
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

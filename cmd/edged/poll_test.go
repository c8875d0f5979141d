package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// pollConfig is a config for the commissioning bus: the meter and the
// sensor answer, the third device answers only with an exception.
func pollConfig(t *testing.T, bus string) string {
	return writeConfig(t, fmt.Sprintf(`
[gateway]
id = "gw"

[[modbus]]
name = "field"
%s
timeout = "2s"

  [[modbus.device]]
  name = "meter"
  unit = 1
  points = [
    { name = "voltage", table = "input", address = 0, type = "float32", unit = "V" },
    { name = "setpoint", table = "holding", address = 20, type = "uint16", scale = 0.01 },
  ]

  [[modbus.device]]
  name = "sensor"
  unit = 17
  payload = "value"
  points = [ { name = "temperature", table = "input", address = 0, type = "int16", scale = 0.1, unit = "°C" } ]

  [[modbus.device]]
  name = "broken"
  unit = 2
  points = [ { name = "state", table = "holding", address = 0, type = "uint16" } ]

[[serial]]
name = "weather"
port = "/dev/null"
patterns = ['T=(?P<t>[0-9.]+)']
`, bus))
}

func TestPollOncePrintsEveryPointAndFailsOnABadOne(t *testing.T) {
	commissioning(t, func(t *testing.T, bus []string, dev *testpeer.PyModbus) {
		line := fmt.Sprintf("address = %q", dev.Addr)
		if bus[0] == "--port" {
			line = fmt.Sprintf("port = %q\nbaud = 19200", bus[1])
		}
		cfg := pollConfig(t, line)
		code, out, errOut := cli(t, "poll", "-c", cfg, "--once")
		if code != exitError {
			t.Fatalf("exit %d, want 1 for the failed point\n%s%s", code, out, errOut)
		}
		for _, want := range []string{
			"gw/meter/voltage       230.5  V     good",
			"gw/meter/setpoint      23.45        good",
			"gw/sensor/temperature  21.5   °C    good",
			"gw/broken/state        -            bad: read holding registers 0..0: exception 4 (server device failure)",
			"1 point(s) failed",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in:\n%s", want, out)
			}
		}
		if !strings.Contains(errOut, "not polled") || !strings.Contains(errOut, "[[serial]] weather") {
			t.Errorf("the serial device was not named as skipped: %s", errOut)
		}

		code, out, errOut = cli(t, "poll", "-c", cfg, "--once", "--device", "sensor")
		if code != exitOK || !strings.Contains(out, "gw/sensor/temperature") || strings.Contains(out, "gw/meter") {
			t.Fatalf("--device sensor: exit %d\n%s%s", code, out, errOut)
		}
		code, _, errOut = cli(t, "poll", "-c", cfg, "--once", "--device", "weather")
		if code != exitError || !strings.Contains(errOut, `"weather" is a [[serial]] device`) {
			t.Fatalf("--device weather: exit %d\n%s", code, errOut)
		}
	})
}

// lockedBuffer is a bytes.Buffer the poll goroutine writes and the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPollPrintsEveryPublishUntilInterrupted(t *testing.T) {
	dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: commissioningBus()})
	cfg := pollConfig(t, fmt.Sprintf("address = %q", dev.Addr))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"poll", "-c", cfg, "--device", "meter"}, strings.NewReader(""), &out, &errOut)
	}()
	testpeer.Eventually(t, 15*time.Second, "the voltage printed", func() bool {
		return strings.Contains(out.String(), "gw/meter/voltage  230.5 V")
	})
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after Ctrl-C, want 0\n%s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("poll did not stop after its context ended")
	}
	if !strings.Contains(out.String(), "gw/meter/status  online") {
		t.Errorf("the device's status was not shown:\n%s", out.String())
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// deviceScript is the pymodbus device the adapter's own tests use.
const deviceScript = "../../adapters/modbus/testdata/pymodbus_device.py"

// cli runs one edged command in-process and returns its exit code and output.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// commissioningBus is a bus of three devices as one finds them: unit 1 a
// meter with a float32 voltage (230.5 V at input 0) and holding registers
// to write, unit 2 a device that refuses with exceptions (holding 0 fails
// with exception 4, it has no input registers), unit 17 a sensor with one
// input register. No other unit id answers.
func commissioningBus() map[string]map[string]map[string]any {
	return map[string]map[string]map[string]any{
		"1": {
			"holding":  {"0": 17254, "1": 32768, "10": 0, "11": 0, "12": 0, "20": 2345},
			"input":    {"0": 17254, "1": 32768, "2": 0, "3": 0},
			"coil":     {"0": false},
			"discrete": {},
		},
		"2":  {"holding": {"0": "fail"}, "input": {}, "coil": {}, "discrete": {}},
		"17": {"holding": {}, "input": {"0": 215}, "coil": {}, "discrete": {}},
	}
}

// identity is what every unit of the commissioning bus answers to a read
// of its device identification (function 43/14).
const identity = "Edged Labs,EL-100,1.2"

// commissioning runs f against the bus served over Modbus TCP and over RTU
// on a socat pty, with the flags that name it.
func commissioning(t *testing.T, f func(t *testing.T, bus []string, dev *testpeer.PyModbus)) {
	t.Run("over Modbus TCP", func(t *testing.T) {
		dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: commissioningBus(), Identity: identity})
		f(t, []string{"--address", dev.Addr}, dev)
	})
	t.Run("over RTU on a serial line", func(t *testing.T) {
		pair := testpeer.StartPtyPair(t)
		// A pty ignores line settings; pyserial refuses even parity on one.
		dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: commissioningBus(), RTU: pair.B, Baud: 19200, Parity: "N", Identity: identity})
		f(t, []string{"--port", pair.A, "--baud", "19200"}, dev)
	})
}

func TestModbusScanFindsTheUnitsThatAnswer(t *testing.T) {
	commissioning(t, func(t *testing.T, bus []string, dev *testpeer.PyModbus) {
		code, out, errOut := cli(t, append([]string{"modbus", "scan", "--units", "1-3,15-18", "--timeout", "1s"}, bus...)...)
		if code != exitOK {
			t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
		}
		if !strings.Contains(out, "scanned 7 unit ids") || !strings.Contains(out, "3 answered") {
			t.Errorf("summary missing:\n%s", out)
		}
		for _, want := range []string{
			"1     ok (0x4366)  ok (0x4366)  ok (false)   exception 2  Edged Labs EL-100 1.2",
			"2     exception 4  exception 2  exception 2  exception 2  Edged Labs EL-100 1.2",
			"17    exception 2  ok (0x00D7)  exception 2  exception 2  Edged Labs EL-100 1.2",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("missing row %q in:\n%s", want, out)
			}
		}
		if strings.Contains(out, "\n3 ") || strings.Contains(out, "\n15 ") {
			t.Errorf("a silent unit is listed:\n%s", out)
		}
		if !strings.Contains(errOut, "scanning") || !strings.Contains(errOut, "unit 18 (7 of 7)") {
			t.Errorf("no progress line on stderr: %q", errOut)
		}
	})
}

func TestModbusScanOfADeadBusSaysWhatToCheck(t *testing.T) {
	commissioning(t, func(t *testing.T, bus []string, dev *testpeer.PyModbus) {
		code, out, errOut := cli(t, append([]string{"modbus", "scan", "--units", "30-33", "--timeout", "100ms"}, bus...)...)
		if code != exitNoAnswer || !strings.Contains(out, "0 answered") || !strings.Contains(out, "Check the unit id") {
			t.Fatalf("exit %d, want %d with a hint\n%s%s", code, exitNoAnswer, out, errOut)
		}
	})
}

func TestModbusReadShowsTheValueOrEveryDecoding(t *testing.T) {
	commissioning(t, func(t *testing.T, bus []string, dev *testpeer.PyModbus) {
		read := func(args ...string) (int, string, string) {
			return cli(t, append(append([]string{"modbus", "read"}, bus...), args...)...)
		}
		t.Run("with a type it prints the value", func(t *testing.T) {
			code, out, errOut := read("--unit", "1", "--table", "input", "--register", "0", "--type", "float32")
			if code != exitOK || !strings.Contains(out, "0        4366 8000  230.5") {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
		})
		t.Run("without a type it shows every decoding with the plausible ones marked", func(t *testing.T) {
			code, out, errOut := read("--unit", "1", "--table", "input", "--register", "0")
			if code != exitOK {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			for _, want := range []string{"input registers 0..3", "address  type", "float32  230.5 *", "1.1791628e-38"} {
				if !strings.Contains(out, want) {
					t.Errorf("missing %q in:\n%s", want, out)
				}
			}
		})
		t.Run("coils print as booleans", func(t *testing.T) {
			code, out, errOut := read("--unit", "1", "--table", "coil", "--register", "0", "--count", "1")
			if code != exitOK || !strings.Contains(out, "0        false") {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
		})
		t.Run("an exception prints its name and code and exits 4", func(t *testing.T) {
			code, _, errOut := read("--unit", "2", "--table", "holding", "--register", "0", "--count", "1")
			if code != exitException || !strings.Contains(errOut, "unit 2: read holding registers 0..0: exception 4 (server device failure)") {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			code, _, errOut = read("--unit", "1", "--table", "input", "--register", "100", "--count", "2")
			if code != exitException || !strings.Contains(errOut, "read input registers 100..101: exception 2 (illegal data address)") ||
				!strings.Contains(errOut, "0-based protocol address") {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
		})
		t.Run("a unit that does not answer exits 3 and says what to check", func(t *testing.T) {
			code, _, errOut := read("--unit", "9", "--timeout", "150ms")
			if code != exitNoAnswer || !strings.Contains(errOut, "no response (timeout)") || !strings.Contains(errOut, "Check the unit id") {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
		})
	})
}

func TestModbusWriteWritesAndReadsBack(t *testing.T) {
	commissioning(t, func(t *testing.T, bus []string, dev *testpeer.PyModbus) {
		write := func(args ...string) (int, string, string) {
			return cli(t, append(append([]string{"modbus", "write"}, bus...), args...)...)
		}
		code, out, errOut := write("--unit", "1", "--register", "10", "--type", "int16", "--", "-5")
		if code != exitOK || !strings.Contains(out, `wrote "-5" to holding register 10; it reads back -5`) {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		code, out, errOut = write("--unit", "1", "--register", "11", "--type", "float32", "230.5")
		if code != exitOK || !strings.Contains(out, "reads back 230.5") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		code, out, errOut = write("--unit", "1", "--table", "coil", "--register", "0", "on")
		if code != exitOK || !strings.Contains(out, "reads back true") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		got := fmt.Sprint(dev.Stats(t).Writes)
		for _, want := range []string{"{1 6 10 [65531]}", "{1 16 11 [17254 32768]}", "{1 5 0 [true]}"} {
			if !strings.Contains(got, want) {
				t.Errorf("device took writes %s, want %s among them", got, want)
			}
		}
		code, _, errOut = write("--unit", "1", "--register", "10", "--", "-5")
		if code != exitError || !strings.Contains(errOut, "-5 is out of range for uint16") {
			t.Errorf("a negative uint16: exit %d\n%s", code, errOut)
		}
		code, _, errOut = write("--unit", "2", "--register", "5", "7")
		if code != exitException || !strings.Contains(errOut, "unit 2: write holding register 5: exception 2 (illegal data address)") {
			t.Errorf("a refused write: exit %d\n%s", code, errOut)
		}
	})
}

func TestModbusCommandsTakeTheBusFromTheConfig(t *testing.T) {
	dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: commissioningBus()})
	cfg := writeConfig(t, fmt.Sprintf(`
[[modbus]]
name = "plant"
address = %q
timeout = "2s"

  [[modbus.device]]
  name = "meter"
  points = [ { name = "v", table = "input", address = 0, type = "float32" } ]

[[modbus]]
name = "other"
address = "127.0.0.1:1"
`, dev.Addr))
	code, out, errOut := cli(t, "modbus", "read", "-c", cfg, "--bus", "plant", "--table", "input", "--type", "float32")
	if code != exitOK || !strings.Contains(out, "230.5") || !strings.Contains(out, "timeout 2s") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = cli(t, "modbus", "read", "-c", cfg, "--table", "input")
	if code != exitError || !strings.Contains(errOut, "has 2 buses: say which with --bus (plant, other)") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	code, _, errOut = cli(t, "modbus", "read")
	if code != exitError || !strings.Contains(errOut, "say which bus") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}

package modbus

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/config"
	"github.com/edged/edged/config/configtest"
	"github.com/edged/edged/internal/testpeer"
)

// These tests talk to pymodbus (Debian python3-pymodbus) running
// testdata/pymodbus_device.py: over Modbus TCP on loopback, and over RTU on
// a socat pty pair.

const deviceScript = "testdata/pymodbus_device.py"

// fixture is one point of the every-type map: its config, the registers the
// device holds for it, and the value edged must publish.
type fixture struct {
	point config.Point
	regs  []uint16 // register tables
	bits  []bool   // coil and discrete tables
	want  string   // the JSON value, as published
}

// wireWords lays out big-endian value bytes in the given order, written
// apart from the adapter's own code so the test checks it.
func wireWords(be []byte, order string) []uint16 {
	w := make([]uint16, len(be)/2)
	for i := range w {
		w[i] = binary.BigEndian.Uint16(be[2*i:])
	}
	if order == "CDAB" || order == "DCBA" {
		for i, j := 0, len(w)-1; i < j; i, j = i+1, j-1 {
			w[i], w[j] = w[j], w[i]
		}
	}
	if order == "BADC" || order == "DCBA" {
		for i := range w {
			w[i] = w[i]<<8 | w[i]>>8
		}
	}
	return w
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// everyType is one point of every type, in every order, in every table.
func everyType() []fixture {
	var fx []fixture
	add := func(name, table, typ, order string, regs []uint16, want string) {
		fx = append(fx, fixture{point: config.Point{Name: name, Table: table, Type: typ, Order: order}, regs: regs, want: want})
	}
	for _, o := range []string{"ABCD", "CDAB", "BADC", "DCBA"} {
		l := strings.ToLower(o)
		add("int32_"+l, "holding", "int32", o, wireWords(be32(uint32(0xF8A432EB)), o), "-123456789")
		add("uint32_"+l, "holding", "uint32", o, wireWords(be32(3000000000), o), "3000000000")
		add("int64_"+l, "holding", "int64", o, wireWords(be64(uint64(0xEEDDEF0B82167EEB)), o), "-1234567890123456789")
		add("uint64_"+l, "holding", "uint64", o, wireWords(be64(18000000000000000000), o), "18000000000000000000")
		add("float32_"+l, "input", "float32", o, wireWords(be32(math.Float32bits(-3.5)), o), "-3.5")
		add("float64_"+l, "input", "float64", o, wireWords(be64(math.Float64bits(12345.678)), o), "12345.678")
	}
	add("int16", "holding", "int16", "", wireWords(be16(uint16(0xCFC7)), "ABCD"), "-12345")
	add("uint16_badc", "input", "uint16", "BADC", wireWords(be16(54321), "BADC"), "54321")
	add("label", "holding", "string", "", []uint16{0x6564, 0x6765, 0x6400}, `"edged"`)
	fx[len(fx)-1].point.Length = 3
	flags := fixture{point: config.Point{Name: "flag3", Table: "holding", Type: "bool", Bit: ptr(3)}, regs: []uint16{0x0008}, want: "true"}
	fx = append(fx, flags)
	scaled := fixture{point: config.Point{Name: "temperature", Table: "input", Type: "int16", Scale: ptr(0.1), Unit: "°C"},
		regs: wireWords(be16(uint16(0xFF33)), "ABCD"), want: "-20.5"}
	fx = append(fx, scaled)
	fx = append(fx,
		fixture{point: config.Point{Name: "relay", Table: "coil", Type: "bool"}, bits: []bool{true}, want: "true"},
		fixture{point: config.Point{Name: "alarm", Table: "coil", Type: "bool"}, bits: []bool{false}, want: "false"},
		fixture{point: config.Point{Name: "door", Table: "discrete", Type: "bool"}, bits: []bool{true}, want: "true"},
		fixture{point: config.Point{Name: "fuse", Table: "discrete", Type: "bool"}, bits: []bool{false}, want: "false"},
	)
	// Lay the points out one after another in each table, with a one-register
	// hole between some of them so coalescing has gaps to bridge.
	next := map[string]int{}
	for i := range fx {
		t := fx[i].point.Table
		fx[i].point.Address = next[t]
		n := len(fx[i].regs) + len(fx[i].bits)
		next[t] += n + i%2
	}
	return fx
}

// deviceMap is the pymodbus map of the fixtures for one unit.
func deviceMap(fx []fixture) map[string]map[string]any {
	tables := map[string]map[string]any{"holding": {}, "input": {}, "coil": {}, "discrete": {}}
	for _, f := range fx {
		for i, r := range f.regs {
			tables[f.point.Table][strconv.Itoa(f.point.Address+i)] = r
		}
		for i, b := range f.bits {
			tables[f.point.Table][strconv.Itoa(f.point.Address+i)] = b
		}
	}
	out := map[string]map[string]any{}
	for k, v := range tables {
		out[k] = v
	}
	return out
}

func pointsOf(fx []fixture) []config.Point {
	var ps []config.Point
	for _, f := range fx {
		ps = append(ps, f.point)
	}
	return ps
}

// valueOf returns the JSON value of a published reading, as written.
func valueOf(t testing.TB, payload string) (string, reading) {
	t.Helper()
	var raw struct {
		Value json.RawMessage `json:"value"`
	}
	_ = json.Unmarshal([]byte(payload), &raw)
	return string(raw.Value), parseReading(t, payload)
}

func sameValue(got, want string) bool {
	if got == want {
		return true
	}
	g, err1 := strconv.ParseFloat(got, 64)
	w, err2 := strconv.ParseFloat(want, 64)
	return err1 == nil && err2 == nil && strings.Contains(want, ".") && math.Abs(g-w) < 1e-9*math.Max(1, math.Abs(w))
}

// transports runs f against pymodbus over Modbus TCP, RTU framed in TCP, and
// RTU on a pty pair.
func transports(t *testing.T, units map[string]map[string]map[string]any, f func(t *testing.T, bus config.Bus, dev *testpeer.PyModbus)) {
	t.Run("over Modbus TCP", func(t *testing.T) {
		dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: units})
		f(t, config.Bus{Name: "tcp", Address: dev.Addr, Timeout: dur(time.Second)}, dev)
	})
	t.Run("over RTU framed in TCP", func(t *testing.T) {
		dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: units, RTUOverTCP: true})
		f(t, config.Bus{Name: "gateway", Transport: "rtu-over-tcp", Address: dev.Addr, Timeout: dur(time.Second)}, dev)
	})
	t.Run("over RTU on a serial line", func(t *testing.T) {
		pair := testpeer.StartPtyPair(t)
		// A pty ignores line settings, and pyserial refuses to set even parity
		// on one, so the device side stays at N while edged uses its default E.
		dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: units, RTU: pair.B, Baud: 38400, Parity: "N"})
		f(t, config.Bus{Name: "rtu", Port: pair.A, Baud: 38400, Parity: "E", Timeout: dur(time.Second)}, dev)
	})
}

func TestEveryTypeOrderAndTableIsPublishedCorrectly(t *testing.T) {
	fx := everyType()
	units := map[string]map[string]map[string]any{"1": deviceMap(fx)}
	transports(t, units, func(t *testing.T, bus config.Bus, dev *testpeer.PyModbus) {
		bus.Devices = []config.Device{{Name: "plc", Unit: 1, Interval: dur(200 * time.Millisecond), Points: pointsOf(fx)}}
		rec := testpeer.NewRecorder()
		runBus(t, bus, rec)
		// A transient timeout (a slow -race run) is retried by the poller;
		// what is checked here is the decoding of the good readings.
		waitFor(t, "a good reading of every point", func() bool {
			for _, f := range fx {
				ps := rec.On("gw/plc/" + f.point.Name)
				if len(ps) == 0 || strings.Contains(ps[len(ps)-1], `"quality":"bad"`) {
					return false
				}
			}
			return true
		})
		for _, f := range fx {
			t.Run(fmt.Sprintf("%s %s %s at %d reads %s", f.point.Table, f.point.Type, f.point.Order, f.point.Address, f.want), func(t *testing.T) {
				payload := rec.Last("gw/plc/" + f.point.Name)
				got, r := valueOf(t, payload)
				if r.Quality == "bad" {
					t.Fatalf("bad quality: %s", payload)
				}
				if !sameValue(got, f.want) {
					t.Fatalf("published %s, want value %s", payload, f.want)
				}
				if r.Unit != f.point.Unit {
					t.Fatalf("unit %q, want %q", r.Unit, f.point.Unit)
				}
			})
		}
		if s := rec.Last("gw/plc/status"); s != "online" {
			t.Errorf("status %q, want online", s)
		}
	})
}

// pollOnce runs exactly one poll cycle of every device of bus, outside Run,
// so a test can count what reached the device per cycle.
func pollOnce(t *testing.T, b *Bus, l *link) {
	t.Helper()
	for _, d := range b.devices {
		b.pollDevice(context.Background(), l, d)
	}
}

// newPolled returns a Bus for bus that publishes to a fresh recorder and
// does not subscribe, and the link a test drives it over with pollOnce; the
// link is closed when the test ends.
func newPolled(t *testing.T, bus config.Bus) (*Bus, *link, *testpeer.Recorder) {
	t.Helper()
	rec := testpeer.NewRecorder()
	b, err := New(configtest.Bus(t, bus), "gw", rec, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	l := newLink(b)
	t.Cleanup(l.closeAll)
	return b, l, rec
}

func TestCoalescingIsMeasuredAtTheDevice(t *testing.T) {
	// Holding 0..6 is one read (a 2-register hole is bridged), 30 is too far
	// for max_gap 10, and 100..104 looks mergeable but the device has no
	// registers 101..103: it must answer Illegal Data Address once, after
	// which the read stays split.
	units := map[string]map[string]map[string]any{"1": {
		"holding": {"0": 1, "1": 2, "2": 0, "3": 0, "4": 0, "5": 0, "6": 7, "30": 30, "100": 100, "104": 104},
		"input":   {}, "coil": {}, "discrete": {},
	}}
	points := []config.Point{
		{Name: "a", Table: "holding", Address: 0, Type: "uint16"},
		{Name: "b", Table: "holding", Address: 1, Type: "uint16"},
		{Name: "c", Table: "holding", Address: 5, Type: "uint32"},
		{Name: "d", Table: "holding", Address: 30, Type: "uint16"},
		{Name: "e", Table: "holding", Address: 100, Type: "uint16"},
		{Name: "f", Table: "holding", Address: 104, Type: "uint16"},
	}
	want := map[string]string{"a": "1", "b": "2", "c": "7", "d": "30", "e": "100", "f": "104"}
	transports(t, units, func(t *testing.T, bus config.Bus, dev *testpeer.PyModbus) {
		bus.Devices = []config.Device{{Name: "meter", Unit: 1, Points: points}}
		b, l, rec := newPolled(t, bus)

		pollOnce(t, b, l)
		first := dev.Stats(t).Count(1, 3)
		pollOnce(t, b, l)
		second := dev.Stats(t).Count(1, 3) - first
		t.Logf("requests at the device: first cycle %d (3 planned + 1 refused + 1 extra after the split), then %d per cycle for %d points", first, second, len(points))
		if first != 5 {
			t.Errorf("first cycle sent %d requests, want 5", first)
		}
		if second != 4 {
			t.Errorf("later cycles send %d requests, want 4", second)
		}
		if got := b.Stats().Devices[0].Splits; got != 1 {
			t.Errorf("splits = %d, want 1", got)
		}
		for name, v := range want {
			payload := rec.Last("gw/meter/" + name)
			if got, _ := valueOf(t, payload); got != v {
				t.Errorf("point %s published %s, want value %s", name, payload, v)
			}
		}
		for _, m := range rec.Messages() {
			if strings.Contains(m.Payload, "bad") {
				t.Errorf("a split read must not publish bad quality: %s %s", m.Topic, m.Payload)
			}
		}
	})
}

func TestAnExceptionPublishesBadQualityOnceAndKeepsTheDeviceOnline(t *testing.T) {
	units := map[string]map[string]map[string]any{"1": {
		"holding": {"0": 5, "10": "fail"}, "input": {}, "coil": {}, "discrete": {},
	}}
	transports(t, units, func(t *testing.T, bus config.Bus, dev *testpeer.PyModbus) {
		bus.Devices = []config.Device{{Name: "meter", Unit: 1, Points: []config.Point{
			{Name: "good", Table: "holding", Address: 0, Type: "uint16"},
			{Name: "broken", Table: "holding", Address: 10, Type: "uint16"},
		}, MaxGap: ptr(0)}}
		b, l, rec := newPolled(t, bus)
		for i := 0; i < 4; i++ {
			pollOnce(t, b, l)
		}
		bad := rec.On("gw/meter/broken")
		if len(bad) != 1 {
			t.Fatalf("broken point published %d times over 4 cycles, want once: %v", len(bad), bad)
		}
		r := parseReading(t, bad[0])
		if r.Quality != "bad" || !strings.Contains(r.Error, "read holding registers 10..10: exception 4") || r.Value != nil {
			t.Fatalf("published %s, want bad quality naming exception 4 and no value", bad[0])
		}
		if got := len(rec.On("gw/meter/good")); got != 4 {
			t.Errorf("good point published %d times, want 4", got)
		}
		if s := rec.Last("gw/meter/status"); s != "online" {
			t.Errorf("a device answering with exceptions is online; status %q", s)
		}
		if ex := b.Stats().Devices[0].Exceptions; ex != 4 {
			t.Errorf("exceptions counted %d, want 4", ex)
		}
	})
}

func TestARefused4xxxxAddressGetsTheConversionInItsError(t *testing.T) {
	units := map[string]map[string]map[string]any{"1": {
		"holding": {"0": 5}, "input": {}, "coil": {}, "discrete": {},
	}}
	transports(t, units, func(t *testing.T, bus config.Bus, dev *testpeer.PyModbus) {
		bus.Devices = []config.Device{{Name: "meter", Unit: 1, Points: []config.Point{
			{Name: "energy", Table: "holding", Address: 40001, Type: "uint16"},
		}}}
		b, l, rec := newPolled(t, bus)
		pollOnce(t, b, l)
		r := parseReading(t, rec.Last("gw/meter/energy"))
		if r.Quality != "bad" || !strings.Contains(r.Error, "exception 2") ||
			!strings.Contains(r.Error, "address 40001 looks like 4xxxx notation: try address 0") {
			t.Fatalf("published %+v, want bad quality with the 4xxxx hint", r)
		}
	})
}

func TestADeviceThatStopsAnsweringGoesOfflineAndComesBack(t *testing.T) {
	units := map[string]map[string]map[string]any{
		"1": {"holding": {"0": 11, "1": 12}, "input": {}, "coil": {}, "discrete": {}},
		"2": {"holding": {"0": 21}, "input": {}, "coil": {}, "discrete": {}},
	}
	transports(t, units, func(t *testing.T, bus config.Bus, dev *testpeer.PyModbus) {
		// The answering device must never time out, even on a loaded
		// machine (pymodbus on a pty answered late at 300 ms); the muted
		// one costs a timeout per cycle.
		bus.Timeout = dur(time.Second)
		bus.Devices = []config.Device{
			{Name: "dead", Unit: 1, Interval: dur(100 * time.Millisecond), Points: []config.Point{
				{Name: "x", Table: "holding", Address: 0, Type: "uint16"},
				{Name: "y", Table: "holding", Address: 1, Type: "uint16"},
			}},
			{Name: "alive", Unit: 2, Interval: dur(100 * time.Millisecond), Points: []config.Point{
				{Name: "z", Table: "holding", Address: 0, Type: "uint16"},
			}},
		}
		rec := testpeer.NewRecorder()
		runBus(t, bus, rec)
		waitFor(t, "both devices online", func() bool {
			a := rec.Last("gw/dead/status")
			b := rec.Last("gw/alive/status")
			return a == "online" && b == "online"
		})
		dev.Mute(t, 1)
		waitFor(t, "the muted device offline", func() bool { s := rec.Last("gw/dead/status"); return s == "offline" })
		aliveBefore := len(rec.On("gw/alive/z"))
		waitFor(t, "the other device still polled while its neighbour times out", func() bool {
			return len(rec.On("gw/alive/z")) >= aliveBefore+3
		})
		dev.Mute(t)
		waitFor(t, "the device online again", func() bool { s := rec.Last("gw/dead/status"); return s == "online" })
		waitFor(t, "a good reading after recovery", func() bool {
			p := rec.Last("gw/dead/x")
			return strings.Contains(p, `"value":11`)
		})

		var statuses []string
		for _, m := range rec.Messages() {
			if m.Topic == "gw/dead/status" {
				statuses = append(statuses, m.Payload)
				if !m.Retain {
					t.Errorf("status published without retain")
				}
			}
		}
		if strings.Join(statuses, ",") != "online,offline,online" {
			t.Errorf("status sequence %v, want online, offline, online", statuses)
		}
		for _, name := range []string{"x", "y"} {
			bad := 0
			for _, p := range rec.On("gw/dead/" + name) {
				r := parseReading(t, p)
				if r.Quality == "bad" {
					bad++
					if r.Value != nil {
						t.Errorf("a failed read carried a value: %s", p)
					}
					continue
				}
				if v, _ := valueOf(t, p); v == "0" {
					t.Errorf("published 0 for %s: %s", name, p)
				}
			}
			if bad != 1 {
				t.Errorf("point %s published bad quality %d times during one outage, want once", name, bad)
			}
		}
		if s := b2s(rec, "gw/alive/status"); s != "online" {
			t.Errorf("the answering device's status went %q", s)
		}
	})
}

func b2s(rec *testpeer.Recorder, topic string) string {
	var s []string
	for _, m := range rec.Messages() {
		if m.Topic == topic {
			s = append(s, m.Payload)
		}
	}
	return strings.Join(s, ",")
}

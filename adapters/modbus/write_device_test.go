package modbus

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

func TestWritesReachTheDeviceAndAreReadBack(t *testing.T) {
	units := map[string]map[string]map[string]any{"1": {
		"holding": {"0": 100, "2": 0, "3": 0, "10": 0, "11": 0, "20": 0, "21": 0, "22": 0, "30": 1, "40": 9},
		"input":   {}, "coil": {"0": false}, "discrete": {},
	}}
	points := []config.Point{
		{Name: "setpoint", Table: "holding", Address: 0, Type: "uint16", Scale: ptr(0.1), Writable: true},
		{Name: "count", Table: "holding", Address: 2, Type: "int32", Order: "CDAB", Writable: true},
		{Name: "level", Table: "holding", Address: 10, Type: "float32", Writable: true},
		{Name: "label", Table: "holding", Address: 20, Type: "string", Length: 3, Writable: true},
		{Name: "enable", Table: "holding", Address: 30, Type: "bool", Bit: ptr(2), Writable: true},
		{Name: "relay", Table: "coil", Address: 0, Type: "bool", Writable: true},
		{Name: "readonly", Table: "holding", Address: 40, Type: "uint16"},
		{Name: "ghost", Table: "holding", Address: 50, Type: "uint16", Writable: true},
	}
	transports(t, units, func(t *testing.T, bus config.Bus, dev *testpeer.PyModbus) {
		bus.Devices = []config.Device{{Name: "plc", Unit: 1, Interval: dur(300 * time.Millisecond), Points: points}}
		rec := testpeer.NewRecorder()
		b := runBus(t, bus, rec)
		waitFor(t, "the adapter subscribed to every point's /set", func() bool {
			for _, p := range points {
				if !rec.Subscribed("gw/plc/" + p.Name + "/set") {
					return false
				}
			}
			return true
		})
		waitFor(t, "a first poll", func() bool { return len(rec.On("gw/plc/setpoint")) > 0 })

		sends := []struct{ topic, payload string }{
			{"setpoint", "23.4"},
			{"count", `{"value": -2}`},
			{"level", "230.5"},
			{"label", "hello"},
			{"enable", "true"},
			{"relay", "true"},
			// refused before anything is written
			{"readonly", "5"},
			{"setpoint", "7000"},
			{"count", "{bad"},
			{"label", "far too long"},
			// refused by the device
			{"ghost", "1"},
		}
		for _, s := range sends {
			if !rec.Deliver("gw/plc/"+s.topic+"/set", []byte(s.payload)) {
				t.Fatalf("nobody subscribed to gw/plc/%s/set", s.topic)
			}
		}
		waitFor(t, "every write answered", func() bool {
			st := b.Stats().Devices[0]
			return st.Writes+st.WriteErrors >= uint64(len(sends))
		})

		want := []string{
			"fc6 @0 [234]",
			"fc16 @2 [65534 65535]",
			"fc16 @10 [17254 32768]",
			"fc16 @20 [26725 27756 28416]",
			"fc6 @30 [5]",
			"fc5 @0 [true]",
		}
		var got []string
		for _, w := range dev.Stats(t).Writes {
			got = append(got, fmt.Sprintf("fc%d @%d %v", w.FC, w.Address, w.Values))
		}
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Errorf("device saw writes\n  %v\nwant\n  %v", got, want)
		}

		readBack := map[string]string{"setpoint": "23.4", "count": "-2", "level": "230.5", "label": `"hello"`, "enable": "true", "relay": "true"}
		for name, v := range readBack {
			t.Run("the write of "+name+" is read back and published", func(t *testing.T) {
				waitFor(t, name+" read back", func() bool {
					p := rec.Last("gw/plc/" + name)
					g, _ := valueOf(t, p)
					return sameValue(g, v)
				})
			})
		}

		refusals := map[string][]string{
			"readonly": {"not writable"},
			"setpoint": {"out of range"},
			"count":    {"unparsable"},
			"label":    {"does not fit"},
			"ghost":    {"device refused", "exception 2"},
		}
		for name, words := range refusals {
			t.Run("a refused write of "+name+" is answered on /set/error", func(t *testing.T) {
				errs := rec.On("gw/plc/" + name + "/set/error")
				if len(errs) != 1 {
					t.Fatalf("got %d error replies: %v", len(errs), errs)
				}
				for _, w := range words {
					if !strings.Contains(errs[0], w) {
						t.Errorf("reply %s does not say %q", errs[0], w)
					}
				}
			})
		}
	})
}

func TestARetainedWriteIsNotReplayedAtStart(t *testing.T) {
	units := map[string]map[string]map[string]any{"1": {
		"holding": {"0": 100}, "input": {}, "coil": {}, "discrete": {},
	}}
	transports(t, units, func(t *testing.T, bus config.Bus, dev *testpeer.PyModbus) {
		bus.Devices = []config.Device{{Name: "plc", Unit: 1, Interval: dur(300 * time.Millisecond), Points: []config.Point{
			{Name: "setpoint", Table: "holding", Address: 0, Type: "uint16", Writable: true},
		}}}
		rec := testpeer.NewRecorder()
		rec.Retain("gw/plc/setpoint/set", []byte("50")) // left by someone long ago
		b := runBus(t, bus, rec)
		waitFor(t, "the adapter subscribed to /set", func() bool { return rec.Subscribed("gw/plc/setpoint/set") })
		// A live write after it: writes are served in order, so once it is
		// answered a replayed retained one would have reached the device.
		if !rec.Deliver("gw/plc/setpoint/set", []byte("7")) {
			t.Fatal("nobody subscribed to gw/plc/setpoint/set")
		}
		waitFor(t, "the live write answered", func() bool {
			st := b.Stats().Devices[0]
			return st.Writes+st.WriteErrors >= 1
		})
		var got []string
		for _, w := range dev.Stats(t).Writes {
			got = append(got, fmt.Sprintf("fc%d @%d %v", w.FC, w.Address, w.Values))
		}
		if strings.Join(got, "; ") != "fc6 @0 [7]" {
			t.Fatalf("device saw writes %v, want only the live one, fc6 @0 [7]", got)
		}
	})
}

func TestAVanishedSerialPortIsReopenedWhenItReturns(t *testing.T) {
	units := map[string]map[string]map[string]any{"1": {"holding": {"0": 42}, "input": {}, "coil": {}, "discrete": {}}}
	pair := testpeer.StartPtyPair(t)
	dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: units, RTU: pair.B, Baud: 38400, Parity: "N"})
	bus := config.Bus{Name: "usb", Port: pair.A, Baud: 38400, Timeout: dur(150 * time.Millisecond), Devices: []config.Device{
		{Name: "sensor", Unit: 1, Interval: dur(100 * time.Millisecond), Points: []config.Point{{Name: "v", Table: "holding", Address: 0, Type: "uint16"}}},
	}}
	rec := testpeer.NewRecorder()
	b := runBus(t, bus, rec)
	waitFor(t, "the sensor online", func() bool { s := rec.Last("gw/sensor/status"); return s == "online" })

	// Unplug: the device and the port both go away.
	dev.Stop()
	pair.Stop()
	waitFor(t, "the sensor offline", func() bool { s := rec.Last("gw/sensor/status"); return s == "offline" })

	// Plug back in under the same name.
	pair.Start()
	testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: units, RTU: pair.B, Baud: 38400, Parity: "N"})
	waitFor(t, "the sensor online again", func() bool { s := rec.Last("gw/sensor/status"); return s == "online" })
	waitFor(t, "a good reading after the replug", func() bool {
		p := rec.Last("gw/sensor/v")
		return strings.Contains(p, `"value":42`)
	})
	if opens := b.Stats().Opens; opens < 2 {
		t.Errorf("port opened %d times, want a reopen", opens)
	}
	for _, p := range rec.On("gw/sensor/v") {
		if strings.Contains(p, `"value":0`) {
			t.Errorf("published 0 while the port was gone: %s", p)
		}
	}
}

func TestAFloodOfWritesAndABusyPollScheduleShareTheBus(t *testing.T) {
	units := map[string]map[string]map[string]any{"1": {"holding": {"0": 0, "10": 77}, "input": {}, "coil": {}, "discrete": {}}}
	dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: units})
	bus := config.Bus{Name: "b", Address: dev.Addr, Devices: []config.Device{{Name: "d", Unit: 1,
		// An interval far below a round trip keeps the poller always behind.
		Interval: dur(time.Millisecond), MaxGap: ptr(0), Points: []config.Point{
			{Name: "w", Table: "holding", Address: 0, Type: "uint16", Writable: true},
			{Name: "p", Table: "holding", Address: 10, Type: "uint16"},
		}}}}
	rec := testpeer.NewRecorder()
	b := runBus(t, bus, rec)
	waitFor(t, "the first poll", func() bool { return len(rec.On("gw/d/p")) > 0 && rec.Subscribed("gw/d/w/set") })
	const n = 20
	for i := 1; i <= n; i++ {
		rec.Deliver("gw/d/w/set", []byte(fmt.Sprint(i)))
	}
	waitFor(t, "every write done and read back", func() bool { return b.Stats().Devices[0].Writes == n })
	first, last := -1, -1
	msgs := rec.Messages()
	for i, m := range msgs {
		if m.Topic == "gw/d/w" && strings.Contains(m.Payload, `"value":1,`) && first < 0 {
			first = i
		}
		if m.Topic == "gw/d/w" && strings.Contains(m.Payload, fmt.Sprintf(`"value":%d,`, n)) {
			last = i
			break
		}
	}
	if first < 0 || last < 0 {
		t.Fatal("the first and last writes were not read back")
	}
	polls := 0
	for _, m := range msgs[first:last] {
		if m.Topic == "gw/d/p" {
			polls++
		}
	}
	t.Logf("%d polls of another point while %d writes went through", polls, n)
	if polls < n/5 {
		t.Errorf("only %d polls of p happened during %d writes: writes starve polling", polls, n)
	}
	if got := len(dev.Stats(t).Writes); got != n {
		t.Errorf("device saw %d writes, want %d", got, n)
	}
}

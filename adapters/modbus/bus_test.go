package modbus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

func TestNewRejectsBadConfigNamingTheKey(t *testing.T) {
	ok := config.Point{Name: "v", Table: "holding", Address: 0, Type: "uint16"}
	with := func(f func(*config.Point)) []config.Point { p := ok; f(&p); return []config.Point{p} }
	cases := []struct {
		name string
		bus  config.Bus
		want string
	}{
		{"a bus with neither port nor address", config.Bus{Name: "b"}, "set port (RTU) or address"},
		{"an unknown transport", config.Bus{Transport: "udp", Address: "x:1"}, `transport: "udp" is not one of`},
		{"an unknown parity", config.Bus{Port: "/dev/null", Parity: "X"}, `parity: "X"`},
		{"a device without a name", config.Bus{Address: "x:1", Devices: []config.Device{{Points: []config.Point{ok}}}}, "device[0].name"},
		{"two devices with one name", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a"}, {Name: "a"}}}, `device[1].name: "a" is used`},
		{"a unit id past 255", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Unit: 300}}}, "device[0].unit"},
		{"a misspelt type", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Type = "flaot32" })}}}, `points[0]: type: type "flaot32" is not one of`},
		{"an unknown table", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Table = "holdings" })}}}, `table "holdings"`},
		{"4xxxx notation", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Address = 400001 })}}}, "3xxxx/4xxxx notation"},
		{"a 32-bit value past the last register", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Address = 65535; p.Type = "uint32" })}}}, "outside 0..65535"},
		{"a writable input register", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Table = "input"; p.Writable = true })}}}, "read-only"},
		{"a coil typed as a number", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Table = "coil" })}}}, "holds bits"},
		{"a bool register without a bit", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Type = "bool" })}}}, "needs bit = N"},
		{"bit 16", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Type = "bool"; p.Bit = ptr(16) })}}}, "bit: 16"},
		{"a string without a length", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Type = "string" })}}}, "length"},
		{"a scale of zero", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Scale = ptr(0.0) })}}}, "scale: 0"},
		{"an unknown order", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: with(func(p *config.Point) { p.Order = "ACBD" })}}}, `order "ACBD"`},
		{"a wildcard in a topic", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Topic: "x/+/{point}", Points: []config.Point{ok}}}}, "wildcard"},
		{"two points with one name", config.Bus{Address: "x:1", Devices: []config.Device{{Name: "a", Points: []config.Point{ok, ok}}}}, `"v" is used by another point`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.bus, "gw", testpeer.NewRecorder(), nil, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestNewSurvivesZeroValues(t *testing.T) {
	// What a config that skipped config.Load's defaults looks like.
	bus := config.Bus{Port: "/dev/ttyUSB9", Devices: []config.Device{{Name: "d", Points: []config.Point{
		{Name: "a", Table: "holding", Type: "uint32"},
		{Name: "b", Table: "holding", Address: 5, Type: "uint16"},
	}}}}
	b, err := New(bus, "gw", testpeer.NewRecorder(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := b.devices[0]
	if d.unit != 1 || d.interval != defaultInterval || d.timeout != defaultTimeout ||
		d.maxGap != defaultMaxGap || d.maxRegs != defaultMaxRegs || d.maxBits != defaultMaxBits {
		t.Fatalf("defaults not applied: %+v", d)
	}
	if p := d.points[0]; p.scale != 1 || p.order != ABCD {
		t.Fatalf("point defaults not applied: %+v", p)
	}
	if planString(d.reads) != "holding registers 0..5" {
		t.Fatalf("plan %s", planString(d.reads))
	}
	if b.transport != "rtu" || b.name != "/dev/ttyUSB9" {
		t.Fatalf("transport %q name %q", b.transport, b.name)
	}
}

func TestScheduleKeepsAFixedRateAndCountsOverrunsOnce(t *testing.T) {
	b, err := New(config.Bus{Address: "x:1", Devices: []config.Device{{Name: "d", Interval: dur(time.Second),
		Points: []config.Point{{Name: "v", Table: "holding", Type: "uint16"}}}}}, "gw", testpeer.NewRecorder(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := b.devices[0]
	t0 := time.Unix(1_800_000_000, 0)
	d.next = t0
	b.schedule(d, t0.Add(300*time.Millisecond))
	if !d.next.Equal(t0.Add(time.Second)) {
		t.Fatalf("a cycle that fits: next %v after start, want 1s", d.next.Sub(t0))
	}
	b.schedule(d, t0.Add(3500*time.Millisecond)) // this cycle ran 2.5s long
	if !d.next.Equal(t0.Add(4 * time.Second)) {
		t.Fatalf("after an overrun: next at %v, want 4s (missed slots skipped, not piled up)", d.next.Sub(t0))
	}
	b.schedule(d, t0.Add(6500*time.Millisecond))
	if got := b.Stats().Devices[0].Overruns; got != 2 {
		t.Fatalf("overruns %d, want 2", got)
	}
	if !d.overrunning {
		t.Fatal("an overrun must be remembered so it is logged once")
	}
	b.schedule(d, t0.Add(7100*time.Millisecond))
	if d.overrunning {
		t.Fatal("a cycle that fits again must clear the overrun state")
	}
	d.status.Set(false)
	now := t0.Add(10 * time.Second)
	var waits []time.Duration
	for i := 0; i < 6; i++ {
		b.schedule(d, now)
		waits = append(waits, d.next.Sub(now))
	}
	if waits[0] != time.Second || waits[1] != 2*time.Second || waits[5] != 10*time.Second {
		t.Fatalf("offline retries wait %v, want 1s doubling up to 10s", waits)
	}
}

// TestAPointPublishesWithItsConfiguredDeadband checks the wiring only: the
// rule itself (deadband, heartbeat, bad quality once per change) is tested
// in adapters/internal/pointstate and adapters/internal/mqttdevice.
func TestAPointPublishesWithItsConfiguredDeadband(t *testing.T) {
	rec := testpeer.NewRecorder()
	qos := 1
	b, err := New(config.Bus{Address: "x:1", Devices: []config.Device{{Name: "d", Points: []config.Point{
		{Name: "t", Table: "holding", Type: "uint16", Unit: "C", Deadband: 0.5, Heartbeat: dur(time.Minute), QoS: &qos, Retain: true},
	}}}}, "gw", rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := b.devices[0].points[0]
	t0 := time.Unix(1_800_000_000, 0)
	b.out.Value(&p.mqtt, 20.0, t0)
	b.out.Value(&p.mqtt, 20.3, t0.Add(time.Second)) // inside the deadband
	b.out.Bad(&p.mqtt, errString("timeout"), t0)
	b.out.Bad(&p.mqtt, errString("timeout"), t0)
	b.out.ReadBack(&p.mqtt, 20.0, t0) // a read-back ignores the deadband
	msgs := rec.Messages()
	if len(msgs) != 3 {
		t.Fatalf("published %+v, want the value, bad once and the read-back", msgs)
	}
	for _, m := range msgs {
		if m.Topic != "gw/d/t" || m.QoS != 1 || !m.Retain {
			t.Errorf("published %+v, want gw/d/t at qos 1, retained", m)
		}
	}
	if !strings.Contains(msgs[0].Payload, `"unit":"C"`) || !strings.Contains(msgs[1].Payload, `"quality":"bad"`) {
		t.Errorf("payloads %+v", msgs)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// loadProfile decodes a shipped profile strictly, as config.LoadProfile will.
func loadProfile(t testing.TB, name string) config.Profile {
	t.Helper()
	var p config.Profile
	md, err := toml.DecodeFile(filepath.Join("..", "..", "configs", "profiles", name+".toml"), &p)
	if err != nil {
		t.Fatalf("profile %s: %v", name, err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("profile %s has unknown keys %v", name, u)
	}
	return p
}

func TestShippedProfilesAreValid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "configs", "profiles", "*.toml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("want at least two profiles, found %v (%v)", files, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".toml")
		t.Run(name+" decodes and plans", func(t *testing.T) {
			p := loadProfile(t, name)
			if p.Description == "" || len(p.Points) == 0 {
				t.Fatal("a profile needs a description and points")
			}
			b, err := New(config.Bus{Port: "/dev/ttyUSB0", Devices: []config.Device{{Name: "d", Points: p.Points}}}, "gw", testpeer.NewRecorder(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d points in %d reads: %s", len(p.Points), len(b.devices[0].reads), planString(b.devices[0].reads))
		})
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "configs", "profiles", "eastron-sdm120.toml"))
	if err != nil || !strings.Contains(string(raw), "float32") {
		t.Fatal("the SDM120 profile must describe float32 registers")
	}
}

func TestTheXYMD02ProfileReadsTheVendorsExampleValues(t *testing.T) {
	// The vendor sheet's examples: 0xFF33 is -20.5 °C and 0x0222 is 54.6 %RH.
	units := map[string]map[string]map[string]any{"1": {
		"input":   {"1": 0xFF33, "2": 0x0222},
		"holding": {"257": 1, "258": 0, "259": 0, "260": 0}, "coil": {}, "discrete": {},
	}}
	prof := loadProfile(t, "xy-md02")
	transports(t, units, func(t *testing.T, bus config.Bus, dev *testpeer.PyModbus) {
		bus.Devices = []config.Device{{Name: "room", Unit: 1, Points: prof.Points}}
		b, l, rec := newPolled(t, bus)
		pollOnce(t, b, l)
		for name, want := range map[string]string{"temperature": "-20.5", "humidity": "54.6", "unit_id": "1"} {
			p := rec.Last("gw/room/" + name)
			if got, _ := valueOf(t, p); !sameValue(got, want) {
				t.Errorf("%s published %s, want %s", name, p, want)
			}
		}
		if n := dev.Stats(t).Total; n != 2 {
			t.Errorf("the profile took %d requests, want 2 (one per table)", n)
		}
	})
}

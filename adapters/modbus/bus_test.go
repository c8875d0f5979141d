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
	if planString(d.reads) != "holding 0..5" {
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

func TestDeadbandAndHeartbeat(t *testing.T) {
	rec := testpeer.NewRecorder()
	b, err := New(config.Bus{Address: "x:1", Devices: []config.Device{{Name: "d", Points: []config.Point{
		{Name: "t", Table: "holding", Type: "uint16", Deadband: 0.5, Heartbeat: dur(time.Minute)},
		{Name: "every", Table: "holding", Address: 1, Type: "uint16"},
	}}}}, "gw", rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := b.devices[0]
	p, every := d.points[0], d.points[1]
	t0 := time.Unix(1_800_000_000, 0)
	steps := []struct {
		at   time.Duration
		v    float64
		want bool
		why  string
	}{
		{0, 20.0, true, "the first reading"},
		{time.Second, 20.3, false, "a change inside the deadband"},
		{2 * time.Second, 20.6, true, "a change beyond the deadband"},
		{3 * time.Second, 20.2, false, "back inside the deadband of the last published value"},
		{63 * time.Second, 20.2, true, "the heartbeat"},
		{64 * time.Second, 20.2, false, "no change after the heartbeat"},
		{65 * time.Second, 19.6, true, "a fall beyond the deadband"},
	}
	for _, s := range steps {
		before := len(rec.On("gw/d/t"))
		b.out.Value(&p.mqtt, s.v, t0.Add(s.at))
		if got := len(rec.On("gw/d/t")) > before; got != s.want {
			t.Fatalf("%s: published %v, want %v", s.why, got, s.want)
		}
	}
	for i := 0; i < 3; i++ {
		b.out.Value(&every.mqtt, uint64(7), t0)
	}
	if n := len(rec.On("gw/d/every")); n != 3 {
		t.Fatalf("without a deadband every reading is published; got %d of 3", n)
	}
	before := len(rec.On("gw/d/t"))
	b.out.Bad(&p.mqtt, errString("timeout"), t0)
	b.out.Bad(&p.mqtt, errString("timeout"), t0)
	b.out.Bad(&p.mqtt, errString("port gone"), t0)
	if n := len(rec.On("gw/d/t")) - before; n != 1 {
		t.Fatalf("a point going bad published %d times, want once", n)
	}
	b.out.Value(&p.mqtt, 19.9, t0)
	msgs := rec.On("gw/d/t")
	if !strings.Contains(msgs[len(msgs)-2], `"quality":"bad"`) || !strings.Contains(msgs[len(msgs)-1], `"value":19.9`) {
		t.Fatalf("bad once, then the unchanged value again after recovery: %v", msgs[len(msgs)-3:])
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

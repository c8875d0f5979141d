package modbus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edged/edged/config"
	"github.com/edged/edged/config/configtest"
	"github.com/edged/edged/internal/testpeer"
)

// TestNewTakesTheBusAsConfigCompletedIt: the rules of a [[modbus]] table
// and its defaults are config's (config's
// TestEveryRuleAnAdapterOnceCheckedIsConfigs); New reads what config
// resolved — the transport from port or address, the device's unit,
// interval, timeout and read limits from the bus, a point's order and scale
// — and refuses a bus that skipped config rather than poll with zeros.
func TestNewTakesTheBusAsConfigCompletedIt(t *testing.T) {
	bus := config.Bus{Name: "b", Port: "/dev/ttyUSB9", Devices: []config.Device{{Name: "d", Points: []config.Point{
		{Name: "a", Table: "holding", Type: "uint32"},
		{Name: "b", Table: "holding", Address: 5, Type: "uint16"},
	}}}}
	if _, err := New(bus, "gw", testpeer.NewRecorder(), nil, nil); err == nil || !strings.Contains(err.Error(), "config.Check") {
		t.Fatalf("a bus that skipped config: err %v", err)
	}
	b, err := New(configtest.Bus(t, bus), "gw", testpeer.NewRecorder(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := b.devices[0]
	if d.unit != 1 || d.interval != 10*time.Second || d.timeout != time.Second ||
		d.maxGap != 10 || d.maxRegs != maxReadRegs || d.maxBits != maxReadBits {
		t.Fatalf("config's defaults not taken: %+v", d)
	}
	if p := d.points[0]; p.scale != 1 || p.order != ABCD || p.rounds {
		t.Fatalf("point defaults not taken: %+v", p)
	}
	if planString(d.reads) != "holding registers 0..5" {
		t.Fatalf("plan %s", planString(d.reads))
	}
	if b.transport != "rtu" || b.target != "/dev/ttyUSB9" || b.name != "b" {
		t.Fatalf("transport %q target %q name %q", b.transport, b.target, b.name)
	}
}

func TestScheduleKeepsAFixedRateAndCountsOverrunsOnce(t *testing.T) {
	b, err := New(configtest.Bus(t, config.Bus{Name: "b", Address: "x:1", Devices: []config.Device{{Name: "d", Interval: dur(time.Second),
		Points: []config.Point{{Name: "v", Table: "holding", Type: "uint16"}}}}}), "gw", testpeer.NewRecorder(), nil, nil)
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
	b, err := New(configtest.Bus(t, config.Bus{Name: "b", Address: "x:1", Devices: []config.Device{{Name: "d", Points: []config.Point{
		{Name: "t", Table: "holding", Type: "uint16", Unit: "C", Deadband: 0.5, Heartbeat: dur(time.Minute), QoS: &qos, Retain: true},
	}}}}), "gw", rec, nil, nil)
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
			b, err := New(configtest.Bus(t, config.Bus{Name: "b", Port: "/dev/ttyUSB0", Devices: []config.Device{{Name: "d", Points: p.Points}}}), "gw", testpeer.NewRecorder(), nil, nil)
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

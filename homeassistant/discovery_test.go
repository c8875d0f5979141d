package homeassistant

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

const testConfig = `
[gateway]
id = "pi-01"
state_dir = "/tmp"

[homeassistant]
enabled = true

[[modbus]]
name = "rs485"
port = "/dev/ttyUSB0"

  [[modbus.device]]
  name = "meter1"
  homeassistant = { name = "Kitchen meter", manufacturer = "Eastron", model = "SDM120" }
  points = [
    { name = "voltage", table = "input", address = 0, type = "float32", unit = "V", precision = 1 },
    { name = "energy", table = "input", address = 2, type = "uint32", scale = 0.01, unit = "kWh" },
    { name = "reactive", table = "input", address = 6, type = "float32", unit = "kvarh" },
    { name = "alarm", table = "discrete", address = 0 },
    { name = "relay", table = "coil", address = 0, writable = true },
    { name = "setpoint", table = "holding", address = 10, type = "int16", scale = 0.1, offset = 5, writable = true, unit = "°C" },
    { name = "humidity", table = "input", address = 4, type = "uint16", scale = 0.1, unit = "%" },
    { name = "serial", table = "holding", address = 20, type = "string", length = 4 },
    { name = "secret", table = "input", address = 30, type = "uint16", homeassistant = false },
    { name = "p", table = "input", address = 31, type = "int16", unit = "W", homeassistant = { name = "Grid power", icon = "mdi:flash" } },
  ]

  [[modbus.device]]
  name = "hidden"
  homeassistant = false
  points = [ { name = "x", table = "input", address = 0, type = "uint16" } ]

  [[modbus.device]]
  name = "bare"
  payload = "value"
  points = [ { name = "on", table = "coil", address = 0 } ]

[[serial]]
name = "weather"
port = "/dev/ttyAMA0"
patterns = ['T=(?P<temperature>-?[0-9.]+),H=(?P<humidity>[0-9.]+)']
`

func load(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("edged.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// configs maps each discovery topic's object id to its checked config.
func configs(t *testing.T, d *Discovery) map[string]testpeer.HAConfig {
	t.Helper()
	out := map[string]testpeer.HAConfig{}
	topics, payloads := d.Configs()
	for i, topic := range topics {
		c, errs := testpeer.CheckHADiscovery(topic, payloads[i], config.HADeviceClasses)
		for _, e := range errs {
			t.Errorf("%s: %s\n%s", topic, e, payloads[i])
		}
		parts := strings.Split(topic, "/")
		out[parts[2]+"/"+parts[3]] = c
	}
	return out
}

func TestEveryPointBecomesAnEntityOnItsPlatform(t *testing.T) {
	d, err := New(load(t, testConfig), testpeer.NewRecorder(), testpeer.NewRecorder(), Options{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	got := configs(t, d)
	want := map[string]struct{ platform, class, unit, state string }{
		"pi-01_meter1/voltage":      {"sensor", "voltage", "V", "measurement"},
		"pi-01_meter1/energy":       {"sensor", "energy", "kWh", "total_increasing"},
		"pi-01_meter1/alarm":        {"binary_sensor", "", "", ""},
		"pi-01_meter1/reactive":     {"sensor", "", "kvarh", "total_increasing"},
		"pi-01_meter1/relay":        {"switch", "", "", ""},
		"pi-01_meter1/setpoint":     {"number", "temperature", "°C", ""},
		"pi-01_meter1/humidity":     {"sensor", "humidity", "%", "measurement"},
		"pi-01_meter1/serial":       {"sensor", "", "", ""},
		"pi-01_meter1/p":            {"sensor", "power", "W", "measurement"},
		"pi-01_bare/on":             {"binary_sensor", "", "", ""},
		"pi-01_weather/temperature": {"sensor", "", "", ""},
		"pi-01_weather/humidity":    {"sensor", "", "", ""},
		"pi-01/devices_offline":     {"sensor", "", "", "measurement"},
	}
	for id, w := range want {
		c, ok := got[id]
		if !ok {
			t.Errorf("%s: not announced", id)
			continue
		}
		if c.Platform != w.platform || c.Str("device_class") != w.class || c.Str("unit_of_measurement") != w.unit || c.Str("state_class") != w.state {
			t.Errorf("%s: %s class %q unit %q state %q, want %+v", id, c.Platform, c.Str("device_class"), c.Str("unit_of_measurement"), c.Str("state_class"), w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("announced %d entities, want %d (hidden ones left out, no uplink entities without [uplink])", len(got), len(want))
	}

	v := got["pi-01_meter1/voltage"]
	if n, _ := v.Num("suggested_display_precision"); n != 1 || v.Str("name") != "Voltage" || v.Str("state_topic") != "pi-01/meter1/voltage" {
		t.Errorf("voltage: %v", v.Fields)
	}
	dev := v.Fields["device"].(map[string]any)
	if dev["name"] != "Kitchen meter" || dev["manufacturer"] != "Eastron" || dev["via_device"] != "edged-pi-01" {
		t.Errorf("device: %v", dev)
	}
	if p := got["pi-01_meter1/p"]; p.Str("name") != "Grid power" || p.Str("icon") != "mdi:flash" {
		t.Errorf("overrides: %v", p.Fields)
	}
	sp := got["pi-01_meter1/setpoint"]
	lo, _ := sp.Num("min")
	hi, _ := sp.Num("max")
	step, _ := sp.Num("step")
	if lo != -3271.8 || hi != 3281.7 || step != 0.1 || sp.Str("command_topic") != "pi-01/meter1/setpoint/set" {
		t.Errorf("number: min %v max %v step %v command %q", lo, hi, step, sp.Str("command_topic"))
	}
	if r := got["pi-01_meter1/relay"]; r.Str("command_topic") != "pi-01/meter1/relay/set" || r.Str("state_on") != "True" {
		t.Errorf("switch: %v", r.Fields)
	}
	if got["pi-01_bare/on"].Str("payload_on") != "true" {
		t.Errorf("a bare bool payload is true/false: %v", got["pi-01_bare/on"].Fields)
	}
}

func TestTemplatesRenderGoodAndBadReadings(t *testing.T) {
	cases := []struct {
		tmpl, payload, want string
	}{
		{valueJSON, `{"value":230.5,"unit":"V","ts":"x"}`, "230.5"},
		{valueJSON, `{"value":true,"ts":"x"}`, "True"},
		{valueJSON, `{"quality":"bad","error":"timeout","ts":"x"}`, "None"},
		{availableJSON, `{"value":1,"ts":"x"}`, "online"},
		{availableJSON, `{"quality":"bad","error":"timeout","ts":"x"}`, "offline"},
		{valueBare, `230.5`, "230.5"},
		{valueBare, `hello`, "hello"},
		{valueBare, `{"quality":"bad","error":"timeout","ts":"x"}`, "None"},
		{availableBare, `true`, "online"},
		{availableBare, `{"quality":"bad","error":"timeout","ts":"x"}`, "offline"},
		{uplinkConnected, `{"connected":false,"buffered":3}`, "OFF"},
		{uplinkBuffered, `{"connected":false,"buffered":3}`, "3"},
	}
	for _, c := range cases {
		got, err := testpeer.RenderHATemplate(c.tmpl, []byte(c.payload))
		if err != nil || got != c.want {
			t.Errorf("%s on %s: %q, %v; want %q", c.tmpl, c.payload, got, err, c.want)
		}
	}
	for _, tmpl := range Templates {
		if err := testpeer.CheckHATemplate(tmpl); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestUniqueIDsDoNotDependOnOrder(t *testing.T) {
	ids := func(text string) map[string]string {
		d, err := New(load(t, text), testpeer.NewRecorder(), testpeer.NewRecorder(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		topics, payloads := d.Configs()
		for i := range topics {
			var c struct {
				UniqueID string `json:"unique_id"`
			}
			_ = json.Unmarshal(payloads[i], &c)
			out[topics[i]] = c.UniqueID
		}
		return out
	}
	a := ids(testConfig)
	reordered := strings.Replace(testConfig,
		`    { name = "voltage", table = "input", address = 0, type = "float32", unit = "V", precision = 1 },
    { name = "energy", table = "input", address = 2, type = "uint32", scale = 0.01, unit = "kWh" },`,
		`    { name = "energy", table = "input", address = 2, type = "uint32", scale = 0.01, unit = "kWh" },
    { name = "voltage", table = "input", address = 0, type = "float32", unit = "V", precision = 1 },`, 1)
	if reordered == testConfig {
		t.Fatal("the reordering did not apply")
	}
	b := ids(reordered)
	seen := map[string]bool{}
	for topic, id := range a {
		if b[topic] != id {
			t.Errorf("%s: unique_id %q became %q", topic, id, b[topic])
		}
		if seen[id] {
			t.Errorf("unique_id %q used twice", id)
		}
		seen[id] = true
	}
}

func TestStaleConfigsAreClearedAndBirthsAnnounceAgain(t *testing.T) {
	rec := testpeer.NewRecorder()
	stale := "homeassistant/sensor/pi-01_meter1/removed/config"
	foreign := "homeassistant/sensor/other/thing/config"
	rec.Retain(stale, []byte(`{"unique_id":"edged-pi-01/meter1/removed"}`))
	rec.Retain(foreign, []byte(`{"unique_id":"zigbee2mqtt_0x1234"}`))
	d, err := New(load(t, testConfig), rec, rec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	topics, _ := d.Configs()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	testpeer.Eventually(t, 30*time.Second, "every config published", func() bool { return len(rec.On(topics[len(topics)-1])) == 1 })
	if got := rec.On(stale); len(got) != 1 || got[0] != "" {
		t.Errorf("stale config: published %q, want one empty payload", got)
	}
	if got := rec.On(foreign); len(got) != 0 {
		t.Errorf("another program's config was touched: %q", got)
	}
	rec.Inject(t, "homeassistant/status", []byte("online"))
	testpeer.Eventually(t, 30*time.Second, "every config published again", func() bool { return len(rec.On(topics[len(topics)-1])) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDisabledClearsWhatAnEarlierRunAnnounced(t *testing.T) {
	rec := testpeer.NewRecorder()
	old := "homeassistant/sensor/pi-01_meter1/voltage/config"
	rec.Retain(old, []byte(`{"unique_id":"edged-pi-01/meter1/voltage"}`))
	d, err := New(load(t, strings.Replace(testConfig, "enabled = true", "enabled = false", 1)), rec, rec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	testpeer.Eventually(t, 30*time.Second, "the old config cleared", func() bool { return len(rec.On(old)) == 1 })
	cancel()
	<-done
}

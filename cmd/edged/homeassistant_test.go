package main

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// haPoints are the points of the meter in the Home Assistant test; the
// setpoint is the one removed before the restart.
const haPoints = `
    { name = "voltage", table = "input", address = 0, type = "float32", unit = "V", precision = 1 },
    { name = "energy", table = "input", address = 2, type = "uint32", scale = 0.01, unit = "kWh" },
    { name = "alarm", table = "discrete", address = 0 },
    { name = "relay", table = "coil", address = 0, writable = true },
    { name = "setpoint", table = "holding", address = 10, type = "int16", scale = 0.1, writable = true, unit = "°C", homeassistant = { name = "Heating setpoint" } },`

func haConfig(t *testing.T, state, listen, device, upstream, points string) string {
	return writeConfig(t, fmt.Sprintf(`
[gateway]
id = "gw"
state_dir = %q

[[broker.listener]]
address = %q

[homeassistant]
enabled = true

[uplink]
url = "mqtt://%s"
max_backoff = "500ms"
forward = [ { local = "gw/meter/#", remote_prefix = "up/", qos = 1 } ]

[[modbus]]
name = "bus"
address = %q
timeout = "2s"

  [[modbus.device]]
  name = "meter"
  unit = 1
  interval = "300ms"
  points = [%s
  ]

  [[modbus.device]]
  name = "dead"
  unit = 5
  interval = "300ms"
  points = [ { name = "temperature", table = "input", address = 0, type = "int16", scale = 0.1, unit = "°C" } ]
`, state, listen, upstream, device, points))
}

// haView is what a Home Assistant subscribed to edged's broker has seen:
// the discovery configs and the last message of every other topic.
type haView struct {
	configs map[string]testpeer.HAConfig
	last    map[string]string
}

func (v *haView) take(t *testing.T, msg string) {
	t.Helper()
	topic, payload, _ := strings.Cut(msg, " ")
	if strings.HasPrefix(topic, "homeassistant/") && strings.HasSuffix(topic, "/config") {
		c, errs := testpeer.CheckHADiscovery(topic, []byte(payload), config.HADeviceClasses)
		for _, e := range errs {
			t.Errorf("%s breaks Home Assistant's discovery rules: %s\n%s", topic, e, payload)
		}
		v.configs[topic] = c
		return
	}
	v.last[topic] = payload
}

// complete reports whether every config in want arrived and every topic
// they name has a message.
func (v *haView) complete(want []string) bool {
	for _, topic := range want {
		c, ok := v.configs[topic]
		if !ok {
			return false
		}
		for _, a := range c.Availability() {
			if _, ok := v.last[a[0]]; !ok {
				return false
			}
		}
		if _, ok := v.last[c.Str("state_topic")]; !ok {
			return false
		}
	}
	return true
}

// TestHomeAssistantSeesEveryDeviceWithoutYAML runs edged with discovery on
// against a pymodbus meter (and a unit that never answers) and reads the
// broker as Home Assistant would: every config keeps the discovery rules,
// every topic it names carries messages, its templates resolve on the real
// readings (the dead unit's entity is unavailable, not zero), a switch and a
// number write through their command topics and read back, and a point
// removed from the config loses its entity at the next start.
func TestHomeAssistantSeesEveryDeviceWithoutYAML(t *testing.T) {
	dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: map[string]map[string]map[string]any{
		"1": {
			"input":    {"0": 17254, "1": 32768, "2": 0, "3": 12345},
			"discrete": {"0": true},
			"coil":     {"0": false},
			"holding":  {"10": 200},
		},
	}})
	state := t.TempDir()
	listen := testpeer.FreePort(t)
	host, port, _ := net.SplitHostPort(listen)
	up := testpeer.StartMosquitto(t, "")
	cfg := haConfig(t, state, listen, dev.Addr, up.Addr, haPoints)

	p := startEdged(t, nil, "run", "-c", cfg)
	testpeer.WaitListening(t, listen, 10*time.Second)
	sub := testpeer.StartMosquittoSub(t, "-h", host, "-p", port, "-q", "1", "-t", "homeassistant/#", "-t", "gw/#")

	want := []string{
		"homeassistant/sensor/gw_meter/voltage/config",
		"homeassistant/sensor/gw_meter/energy/config",
		"homeassistant/binary_sensor/gw_meter/alarm/config",
		"homeassistant/switch/gw_meter/relay/config",
		"homeassistant/number/gw_meter/setpoint/config",
		"homeassistant/sensor/gw_dead/temperature/config",
		"homeassistant/sensor/gw/devices_offline/config",
		"homeassistant/binary_sensor/gw/uplink_connected/config",
		"homeassistant/sensor/gw/messages_buffered/config",
		"homeassistant/sensor/gw/oldest_buffered_age/config",
	}
	v := &haView{configs: map[string]testpeer.HAConfig{}, last: map[string]string{}}
	deadline := time.Now().Add(20 * time.Second)
	for !v.complete(want) || v.last["gw/dead/status"] != "offline" || !strings.Contains(v.last["gw/dead/temperature"], `"bad"`) {
		if time.Now().After(deadline) {
			t.Fatalf("within 20s, not every config and topic it names arrived; configs %v, topics %v", keys(v.configs), keys(v.last))
		}
		v.take(t, sub.Next(t, time.Until(deadline)))
	}
	for topic := range v.configs {
		if !slices.Contains(want, topic) {
			t.Errorf("unexpected config %s", topic)
		}
	}

	// Every template resolves on the real readings, to what the platform takes.
	render := func(tmpl, topic string) string {
		t.Helper()
		out, err := testpeer.RenderHATemplate(tmpl, []byte(v.last[topic]))
		if err != nil {
			t.Errorf("%s on %s (%s): %v", tmpl, topic, v.last[topic], err)
		}
		return out
	}
	available := func(c testpeer.HAConfig) bool {
		for _, a := range c.Availability() {
			got := v.last[a[0]]
			if a[1] != "" {
				got = render(a[1], a[0])
			}
			if got != "online" && got != "offline" {
				t.Errorf("availability %s gives %q, neither online nor offline", a[0], got)
			}
			if got != "online" {
				return false
			}
		}
		return true
	}
	state1 := func(topic string) (testpeer.HAConfig, string, bool) {
		c := v.configs[topic]
		return c, render(c.Str("value_template"), c.Str("state_topic")), available(c)
	}
	if c, s, ok := state1(want[0]); !ok || s != "230.5" || c.Str("device_class") != "voltage" {
		t.Errorf("voltage: %q available %v", s, ok)
	}
	if _, s, ok := state1(want[1]); !ok || s != "123.45" {
		t.Errorf("energy: %q available %v", s, ok)
	}
	if c, s, ok := state1(want[2]); !ok || s != c.Str("payload_on") {
		t.Errorf("alarm: %q available %v, want payload_on %q", s, ok, c.Str("payload_on"))
	}
	if c, s, ok := state1(want[3]); !ok || s != c.Str("state_off") {
		t.Errorf("relay: %q available %v, want state_off %q", s, ok, c.Str("state_off"))
	}
	if _, s, ok := state1(want[4]); !ok || s != "20" {
		t.Errorf("setpoint: %q available %v", s, ok)
	}
	if _, s, ok := state1(want[5]); ok || s != "None" {
		t.Errorf("the dead unit's temperature: %q available %v, want None and unavailable", s, ok)
	}
	for _, topic := range want[6:] {
		c, s, ok := state1(topic)
		if _, err := strconv.ParseFloat(s, 64); !ok || (c.Platform == "sensor" && err != nil) || (c.Platform == "binary_sensor" && s != "ON" && s != "OFF") {
			t.Errorf("%s: %q available %v", topic, s, ok)
		}
	}

	// A switch and a number write through their command topics.
	pub := func(topic, payload string) {
		t.Helper()
		if out, err := testpeer.MosquittoPub(t, "-h", host, "-p", port, "-q", "1", "-t", topic, "-m", payload); err != nil {
			t.Fatalf("mosquitto_pub: %v %s", err, out)
		}
	}
	relay, setpoint := v.configs[want[3]], v.configs[want[4]]
	pub(relay.Str("command_topic"), relay.Str("payload_on"))
	pub(setpoint.Str("command_topic"), "42.5")
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, r, _ := state1(want[3])
		_, s, _ := state1(want[4])
		if r == relay.Str("state_on") && s == "42.5" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the writes, relay reads %q and setpoint %q", r, s)
		}
		v.take(t, sub.Next(t, time.Until(deadline)))
	}
	writes := fmt.Sprint(dev.Stats(t).Writes)
	for _, w := range []string{"{1 5 0 [true]}", "{1 6 10 [425]}"} {
		if !strings.Contains(writes, w) {
			t.Errorf("pymodbus took writes %s, want %s among them", writes, w)
		}
	}

	// A clean stop says offline for the gateway. The broker stops with
	// edged, so a client may lose its connection before the message is
	// written to it: a persistent session keeps it for the next start,
	// which then says online.
	session := func() *testpeer.MosquittoSub {
		return testpeer.StartMosquittoSub(t, "-h", host, "-p", port, "-q", "1", "-c", "-i", "ha-session", "-t", "gw/status")
	}
	s1 := session()
	if got := s1.Next(t, 10*time.Second); got != "gw/status online" {
		t.Fatalf("gw/status while running: %q", got)
	}
	s1.Stop()
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	// Without the setpoint, the next start clears its config.
	without := strings.Replace(haPoints, `
    { name = "setpoint", table = "holding", address = 10, type = "int16", scale = 0.1, writable = true, unit = "°C", homeassistant = { name = "Heating setpoint" } },`, "", 1)
	if err := os.WriteFile(cfg, []byte(strings.Replace(mustRead(t, cfg), haPoints, without, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	p = startEdged(t, nil, "run", "-c", cfg)
	p.waitLine(t, "announced to Home Assistant", 15*time.Second)
	s2 := session()
	for _, want := range []string{"gw/status offline", "gw/status online"} {
		if got := s2.Next(t, 10*time.Second); got != want {
			t.Fatalf("the gateway's status across a clean restart: %q, want %q", got, want)
		}
	}
	// Retained messages reach a new subscription before anything published
	// after it: when the marker arrives, a config still retained would have.
	check := testpeer.StartMosquittoSub(t, "-h", host, "-p", port, "-q", "1", "-t", "homeassistant/+/gw_meter/+/config", "-t", "test/marker")
	pub("test/marker", "end")
	var seen []string
	for {
		topic, _, _ := strings.Cut(check.Next(t, 10*time.Second), " ")
		if topic == "test/marker" {
			break
		}
		seen = append(seen, topic)
	}
	if slices.Contains(seen, want[4]) {
		t.Errorf("the removed setpoint's config is still retained: %v", seen)
	}
	for _, w := range want[:4] {
		if !slices.Contains(seen, w) {
			t.Errorf("%s is not retained after the restart: %v", w, seen)
		}
	}
	if !strings.Contains(p.output(), "entity removed from Home Assistant") {
		t.Errorf("the removal was not logged")
	}

	// Home Assistant's birth brings every config again.
	n := strconv.Itoa(len(seen))
	pub("homeassistant/status", "online")
	again := 0
	deadline = time.Now().Add(10 * time.Second)
	for again < len(seen) {
		topic, _, _ := strings.Cut(check.Next(t, time.Until(deadline)), " ")
		if slices.Contains(seen, topic) {
			again++
		}
	}
	t.Logf("%s configs announced again on Home Assistant's birth", n)
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package config

import (
	"slices"
	"testing"
)

func TestHomeAssistantKeysAreCheckedWhereTheyAre(t *testing.T) {
	text := `[homeassistant]
enabled = true
prefix = "ha/#"
` + bus + `
  [[modbus.device]]
  name = "meter"
  homeassistant = { name = "Kitchen meter", icon = "mdi:flash" }
  points = [
    { name = "v", table = "input", address = 0, type = "float32", homeassistant = { device_class = "voltag" } },
    { name = "relay", table = "coil", address = 0, writable = true, homeassistant = { device_class = "voltage" } },
    { name = "p", table = "input", address = 2, type = "int16", homeassistant = { icon = "flash", model = "X" } },
    { name = "q", table = "input", address = 3, type = "int16", homeassistant = 1 },
    { name = "r", table = "input", address = 4, type = "int16", homeassistant = { name = "" } },
  ]
`
	got := errorLines(t, text)
	want := []string{
		`edged.toml:3: homeassistant.prefix: "ha/#" is not a topic prefix (no wildcards, not starting with $; Home Assistant's default is "homeassistant")`,
		`edged.toml:11: modbus[0].device[0].homeassistant.icon: a device has no icon; set it on a point's homeassistant`,
		`edged.toml:13: modbus[0].device[0].points[0].homeassistant.device_class: "voltag" is not a device class of Home Assistant's sensor platform (did you mean "voltage"?)`,
		`edged.toml:14: modbus[0].device[0].points[1].homeassistant.device_class: "voltage" is not a device class of Home Assistant's switch platform`,
		`edged.toml:15: modbus[0].device[0].points[2].homeassistant.icon: "flash" is not an icon name such as "mdi:flash"`,
		`edged.toml:15: modbus[0].device[0].points[2].homeassistant.model: a point has no model; set it on the device's homeassistant`,
		`edged.toml:16: modbus[0].device[0].points[3].homeassistant: expected false (hide it) or a table such as { name = "Grid voltage" }, got the integer 1`,
		`edged.toml:17: modbus[0].device[0].points[4].homeassistant.name: must not be empty (leave it out for the default name)`,
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing error\n  %s\ngot:\n  %s", w, join(got))
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d:\n  %s", len(got), len(want), join(got))
	}
}

func join(lines []string) string {
	out := ""
	for _, l := range lines {
		out += l + "\n  "
	}
	return out
}

func TestHomeAssistantDefaultsAndOverrides(t *testing.T) {
	c, err := parseTest(t, bus+`
  [[modbus.device]]
  name = "meter"
  homeassistant = false
  points = [
    { name = "v", table = "input", address = 0, type = "float32", homeassistant = false },
    { name = "w", table = "input", address = 2, type = "float32", homeassistant = true },
    { name = "x", table = "input", address = 4, type = "float32", homeassistant = { name = "Grid", device_class = "voltage" } },
  ]
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.HomeAssistant.Enabled || c.HomeAssistant.Prefix != "homeassistant" {
		t.Errorf("defaults: %+v", c.HomeAssistant)
	}
	d := c.Modbus[0].Devices[0]
	if d.HomeAssistant == nil || !d.HomeAssistant.Hidden {
		t.Errorf("device homeassistant = false: %+v", d.HomeAssistant)
	}
	pts := d.Points
	if !pts[0].HomeAssistant.Hidden || pts[1].HomeAssistant.Hidden || pts[2].HomeAssistant.Name != "Grid" {
		t.Errorf("points: %+v %+v %+v", pts[0].HomeAssistant, pts[1].HomeAssistant, pts[2].HomeAssistant)
	}
}

func TestHAPlatformFollowsTableTypeAndWritable(t *testing.T) {
	for _, c := range []struct {
		p    Point
		want string
	}{
		{Point{Table: "coil", Type: "bool", Writable: true}, HASwitch},
		{Point{Table: "holding", Type: "bool", Writable: true}, HASwitch},
		{Point{Table: "discrete", Type: "bool"}, HABinarySensor},
		{Point{Table: "holding", Type: "uint16", Writable: true}, HANumber},
		{Point{Table: "holding", Type: "string", Writable: true}, HASensor},
		{Point{Table: "input", Type: "float32"}, HASensor},
	} {
		if got := c.p.HAPlatform(); got != c.want {
			t.Errorf("%+v: %s, want %s", c.p, got, c.want)
		}
	}
}

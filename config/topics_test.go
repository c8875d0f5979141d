package config

import (
	"strings"
	"testing"
)

func TestTopicMistakesAreErrors(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "two devices publishing on one topic are named both",
			text: `[gateway]
id = "gw"
` + bus + `
  [[modbus.device]]
  name = "a"
  topic = "{gateway}/{point}"
  points = [ { name = "voltage", table = "input", address = 0, type = "uint16" } ]

  [[modbus.device]]
  name = "b"
  unit = 2
  topic = "{gateway}/{point}"
  points = [ { name = "voltage", table = "input", address = 0, type = "uint16" } ]
`,
			want: []string{`edged.toml:17: modbus[0].device[1].points[0].name: publishes on "gw/voltage", as modbus[0].device[0].points[0].name does: a subscriber could not tell the two apart (give the devices different names or topic templates)`},
		},
		{
			name: "a serial group and a Modbus point on one topic collide",
			text: `[gateway]
id = "gw"
` + bus + `
  [[modbus.device]]
  name = "a"
  topic = "{gateway}/{point}"
  points = [ { name = "temperature", table = "input", address = 0, type = "int16" } ]

[[serial]]
name = "weather"
port = "/dev/ttyAMA0"
topic = "{gateway}/{point}"
patterns = ['T=(?P<temperature>[0-9.]+)']
`,
			want: []string{`edged.toml:17: serial[0].patterns: publishes on "gw/temperature", as modbus[0].device[0].points[0].name does: a subscriber could not tell the two apart (give the devices different names or topic templates)`},
		},
		{
			name: "a register point without an address is refused",
			text: bus + `
  [[modbus.device]]
  name = "a"
  points = [ { name = "voltage", table = "input", type = "uint16" } ]
`,
			want: []string{`edged.toml:8: modbus[0].device[0].points[0].address: missing (the input register's 0-based protocol address; edged never assumes 0)`},
		},
		{
			name: "a coil without an address is refused",
			text: bus + `
  [[modbus.device]]
  name = "a"
  points = [ { name = "relay", table = "coil", writable = true } ]
`,
			want: []string{`edged.toml:8: modbus[0].device[0].points[0].address: missing (the coil's 0-based protocol address; edged never assumes 0)`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := errorLines(t, c.text)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestRulesThatReachNothingAreWarnings(t *testing.T) {
	const devices = bus + `
  [[modbus.device]]
  name = "meter1"
  points = [
    { name = "voltage", table = "input", address = 0, type = "uint16" },
    { name = "relay", table = "coil", address = 0, writable = true },
  ]
`
	cases := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "a forward rule for another gateway id is named with the id and what devices publish",
			text: "[gateway]\nid = \"pi-02\"\n" + devices + `
[uplink]
url = "mqtt://cloud.example.com:1883"
forward = [ { local = "pi-01/#" } ]
`,
			want: []string{`edged.toml:17: uplink.forward[0].local: "pi-01/#" matches no topic the devices here publish (the gateway id is "pi-02"; they publish pi-02/meter1/voltage, pi-02/meter1/relay, pi-02/meter1/status): only what network clients publish there would go upstream`},
		},
		{
			name: "a downlink that lands on no writable point is named with what is writable",
			text: "[gateway]\nid = \"pi-02\"\n" + devices + `
[uplink]
url = "mqtt://cloud.example.com:1883"
forward = [ { local = "pi-02/#" } ]
downlink = [ { remote = "sites/a/pi-01/+/+/set", strip_prefix = "sites/a/" } ]
`,
			want: []string{`edged.toml:18: uplink.downlink[0].remote: commands arrive locally on "pi-01/+/+/set", which is none of the topics devices here take writes on (the gateway id is "pi-02"; they take pi-02/meter1/relay/set)`},
		},
		{
			name: "rules that reach the devices are quiet",
			text: "[gateway]\nid = \"pi-01\"\n" + devices + `
[uplink]
url = "mqtt://cloud.example.com:1883"
forward = [ { local = "pi-01/+/voltage" } ]
downlink = [ { remote = "sites/a/pi-01/+/+/set", strip_prefix = "sites/a/" } ]
`,
		},
		{
			name: "a rule for edged's own gateway status is quiet",
			text: "[gateway]\nid = \"pi-01\"\n" + devices + `
[uplink]
url = "mqtt://cloud.example.com:1883"
forward = [ { local = "pi-01/status" } ]
`,
		},
		{
			name: "without devices nothing is compared",
			text: "[gateway]\nid = \"pi-01\"\n" + `
[uplink]
url = "mqtt://cloud.example.com:1883"
forward = [ { local = "sensors/#" } ]
`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseTest(t, c.text)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, w.Error())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

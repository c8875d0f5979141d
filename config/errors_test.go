package config

import (
	"errors"
	"strings"
	"testing"
)

// parseTest parses a config named edged.toml with the test profiles.
func parseTest(t *testing.T, text string) (*Config, error) {
	t.Helper()
	return ParseWith("edged.toml", []byte(text), Options{ProfileDirs: []string{"testdata/profiles"}})
}

// errorLines runs text through the loader and returns its error, one
// problem a line, or fails when it loads.
func errorLines(t *testing.T, text string) []string {
	t.Helper()
	c, err := parseTest(t, text)
	if err == nil {
		t.Fatalf("loaded without error: %+v", c)
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, not *Errors: %v", err, err)
	}
	if c != nil {
		t.Errorf("a config came back with the error")
	}
	return strings.Split(err.Error(), "\n")
}

// A minimal valid bus to put points and devices in.
const bus = `
[[modbus]]
name = "rs485"
port = "/dev/ttyUSB0"
`

func TestErrorsNameFileLineAndKey(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "an unknown key suggests the key that was meant",
			text: "[gateway]\nid = \"pi-01\"\nstate_dri = \"/var/lib/edged\"\n",
			want: []string{`edged.toml:3: gateway.state_dri: unknown key (did you mean "state_dir"?)`},
		},
		{
			name: "a key that extends a known one suggests it",
			text: bus + "baudrate = 9600\n",
			want: []string{`edged.toml:5: modbus[0].baudrate: unknown key (did you mean "baud"?)`},
		},
		{
			name: "a key in the wrong case suggests the right case",
			text: "[log]\nLevel = \"info\"\n",
			want: []string{`edged.toml:2: log.Level: unknown key (did you mean "level"?)`},
		},
		{
			name: "an unknown key with nothing close lists the known keys",
			text: "[buffer]\ncolour = \"blue\"\n",
			want: []string{`edged.toml:2: buffer.colour: unknown key (known keys here: max_bytes, max_age, when_full, durability)`},
		},
		{
			name: "an unknown table is reported once, not key by key",
			text: "[modbuss]\nname = \"x\"\nport = \"y\"\n",
			want: []string{`edged.toml:1: modbuss: unknown key (did you mean "modbus"?)`},
		},
		{
			name: "a string where a number belongs is a wrong type",
			text: bus + "baud = \"9600\"\n",
			want: []string{`edged.toml:5: modbus[0].baud: expected an integer, got the string "9600"`},
		},
		{
			name: "a single table where an array of tables belongs says how to write it",
			text: bus + "\n  [modbus.device]\n  name = \"m\"\n",
			want: []string{
				`edged.toml:6: modbus[0].device: expected an array, got a table (write [[modbus.device]] for each entry)`,
			},
		},
		{
			name: "a table where a string belongs is a wrong type",
			text: "[gateway]\nid = { name = \"x\" }\n",
			want: []string{`edged.toml:2: gateway.id: expected a string, got a table`},
		},
		{
			name: "a duration needs a unit Go understands",
			text: bus + "timeout = \"5 seconds\"\n",
			want: []string{`edged.toml:5: modbus[0].timeout: "5 seconds" is not a duration (use a number with a unit: 500ms, 5s, 2m, 168h)`},
		},
		{
			name: "a duration written as a bare number is refused",
			text: bus + "timeout = 5\n",
			want: []string{`edged.toml:5: modbus[0].timeout: expected a duration string such as "5s", got the integer 5`},
		},
		{
			name: "a size with trailing junk is refused",
			text: "[buffer]\nmax_bytes = \"256MB2\"\n",
			want: []string{`edged.toml:2: buffer.max_bytes: "256MB2" is not a size (use bytes or a unit: 4096, 64KiB, 256MiB, 1GiB)`},
		},
		{
			name: "a listener address without a port is refused",
			text: "[[broker.listener]]\naddress = \"127.0.0.1\"\n",
			want: []string{`edged.toml:2: broker.listener[0].address: "127.0.0.1" is not host:port (e.g. "127.0.0.1:1883")`},
		},
		{
			name: "a Modbus TCP address needs a host",
			text: "[[modbus]]\nname = \"plc\"\naddress = \":502\"\n",
			want: []string{`edged.toml:3: modbus[0].address: ":502" has no host (e.g. "10.0.0.5:502")`},
		},
		{
			name: "a misspelt enumeration lists what is valid",
			text: bus + `
  [[modbus.device]]
  name = "meter1"
  points = [
    { name = "voltage", table = "input", address = 0, type = "flaot32" },
  ]
`,
			want: []string{`edged.toml:9: modbus[0].device[0].points[0].type: "flaot32" is not one of bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string`},
		},
		{
			name: "a 3xxxxx address on an input register gets the conversion",
			text: bus + `
  [[modbus.device]]
  name = "meter1"
  points = [ { name = "voltage", table = "input", address = 300012, type = "uint16" } ]
`,
			want: []string{`edged.toml:8: modbus[0].device[0].points[0].address: looks like 3xxxxx notation: the protocol address of 300012 is 11`},
		},
		{
			name: "a missing required key is reported at its table",
			text: bus + `
  [[modbus.device]]
  unit = 3
  points = [ { name = "voltage", table = "input", address = 0, type = "uint16" } ]
`,
			want: []string{`edged.toml:6: modbus[0].device[0].name: missing (the device's topic level, e.g. meter1)`},
		},
		{
			name: "a bus with neither port nor address says what to set",
			text: "[[modbus]]\nname = \"rs485\"\n",
			want: []string{`edged.toml:1: modbus[0]: set port (Modbus RTU on a serial line, e.g. "/dev/ttyUSB0") or address (Modbus TCP, e.g. "10.0.0.5:502")`},
		},
		{
			name: "a listener on every interface without users or anonymous access is refused",
			text: "[[broker.listener]]\ntype = \"tcp\"\naddress = \"0.0.0.0:1883\"\n",
			want: []string{`edged.toml:1: broker.listener[0]: address "0.0.0.0:1883" is not loopback: set users_file (clients log in) or allow_anonymous = true (anyone on the network may connect)`},
		},
		{
			name: "a listener with an empty host counts as every interface",
			text: "[[broker.listener]]\naddress = \":1883\"\n",
			want: []string{`edged.toml:1: broker.listener[0]: address ":1883" is not loopback: set users_file (clients log in) or allow_anonymous = true (anyone on the network may connect)`},
		},
		{
			name: "two listeners on one port are refused",
			text: "[[broker.listener]]\naddress = \"127.0.0.1:1883\"\n[[broker.listener]]\naddress = \"localhost:1883\"\ntype = \"ws\"\n",
			want: []string{`edged.toml:4: broker.listener[1].address: "localhost:1883" overlaps broker.listener[0].address (same port 1883)`},
		},
		{
			name: "two mistakes in one file are both reported with their lines",
			text: "[gateway]\nid = \"pi-01\"\n\n[log]\nlevel = \"verbose\"\n\n[buffer]\nwhen_full = \"drop\"\n",
			want: []string{
				`edged.toml:5: log.level: "verbose" is not one of debug, info, warn, error`,
				`edged.toml:8: buffer.when_full: "drop" is not one of drop-oldest, reject`,
			},
		},
		{
			name: "a wrong type does not hide a semantic mistake elsewhere",
			text: "[log]\nlevel = 3\nformat = \"xml\"\n",
			want: []string{
				`edged.toml:2: log.level: expected a string, got the integer 3`,
				`edged.toml:3: log.format: "xml" is not one of text, json`,
			},
		},
		{
			name: "a syntax error stops with its line",
			text: "[gateway]\nid = \"pi-01\"\nstate_dir = \n",
			want: []string{`edged.toml:3: TOML syntax: expected value but found '\n' instead`},
		},
		{
			name: "a device name used twice is refused across sections",
			text: bus + `
  [[modbus.device]]
  name = "weather"
  points = [ { name = "t", table = "input", address = 0, type = "int16" } ]

[[serial]]
name = "weather"
port = "/dev/ttyAMA0"
patterns = ['T=(?P<temperature>[0-9.]+)']
`,
			want: []string{`edged.toml:11: serial[0].name: "weather" is already used by modbus[0].device[0] (device names are topic levels and must be unique)`},
		},
		{
			name: "a gateway id that cannot be a topic level is refused",
			text: "[gateway]\nid = \"site/pi\"\n",
			want: []string{`edged.toml:2: gateway.id: "site/pi" cannot be a topic level: it contains "/"`},
		},
		{
			name: "a coil must be bool",
			text: bus + `
  [[modbus.device]]
  name = "m"
  points = [
    { name = "relay", table = "coil", address = 0, type = "uint16" },
  ]
`,
			want: []string{`edged.toml:9: modbus[0].device[0].points[0].type: a coil holds a single bit: type must be "bool", not "uint16"`},
		},
		{
			name: "a bool from a register needs its bit",
			text: bus + `
  [[modbus.device]]
  name = "m"
  points = [ { name = "alarm", table = "holding", address = 7, type = "bool" } ]
`,
			want: []string{`edged.toml:8: modbus[0].device[0].points[0].bit: missing (a bool from a holding register names its bit, 0..15)`},
		},
		{
			name: "a serial unit id of 0 is the broadcast address",
			text: bus + `
  [[modbus.device]]
  name = "m"
  unit = 0
  points = [ { name = "v", table = "input", address = 0, type = "uint16" } ]
`,
			want: []string{`edged.toml:8: modbus[0].device[0].unit: 0 is the broadcast address on a serial line and never answers; use the slave id, 1..247`},
		},
		{
			name: "a pattern without named groups publishes nothing",
			text: "[[serial]]\nname = \"w\"\nport = \"/dev/ttyAMA0\"\npatterns = ['T=([0-9.]+)']\n",
			want: []string{`edged.toml:4: serial[0].patterns[0]: has no named group such as (?P<temperature>...): nothing in it would be published`},
		},
		{
			name: "a frame byte written as a TOML character escape gets the fix",
			text: "[[serial]]\nname = \"w\"\nport = \"/dev/ttyAMA0\"\nraw = true\nstart = \"\\x82\"\nend = '\\x03'\n",
			want: []string{`edged.toml:5: serial[0].start: contains the character U+0082: TOML reads "\x82" as a character, not a byte; write the value in single quotes ('\x82') to mean the byte`},
		},
		{
			name: "start without end is refused",
			text: "[[serial]]\nname = \"w\"\nport = \"/dev/ttyAMA0\"\nraw = true\nstart = '\\x02'\n",
			want: []string{`edged.toml:1: serial[0].end: missing (start and end go together: frames run from start to end)`},
		},
		{
			name: "a bus with an empty port is refused, as the Modbus adapter would",
			text: "[[modbus]]\nname = \"b\"\nport = \"\"\n",
			want: []string{`edged.toml:3: modbus[0].port: must not be empty (the serial device, e.g. "/dev/ttyUSB0")`},
		},
		{
			name: "a serial max_frame beyond 16MiB is refused, as the serial adapter would",
			text: "[[serial]]\nname = \"s\"\nport = \"/dev/ttyS0\"\nraw = true\nmax_frame = \"1GiB\"\n",
			want: []string{`edged.toml:5: serial[0].max_frame: must be between 1 byte and 16MiB, got 1073741824`},
		},
		{
			name: "an uplink with password and password_file is refused",
			text: "[uplink]\nurl = \"mqtts://cloud.example.com:8883\"\nusername = \"u\"\npassword = \"p\"\npassword_file = \"/etc/edged/pw\"\n",
			want: []string{`edged.toml:5: uplink.password_file: set password or password_file, not both`},
		},
		{
			name: "an uplink url with a foreign scheme names the right one",
			text: "[uplink]\nurl = \"tcp://cloud.example.com:1883\"\n",
			want: []string{`edged.toml:2: uplink.url: scheme "tcp" is not one of mqtt, mqtts, ws, wss (write mqtt:// for plain TCP)`},
		},
		{
			name: "a forward filter with a misplaced wildcard is refused",
			text: "[uplink]\nurl = \"mqtts://cloud.example.com\"\nforward = [ { local = \"pi-01/#/x\" } ]\n",
			want: []string{`edged.toml:3: uplink.forward[0].local: "pi-01/#/x" is not a valid topic filter: "#" must be a whole level and the last one`},
		},
		{
			name: "a profile that does not exist is named with where it was looked for",
			text: bus + "\n  [[modbus.device]]\n  name = \"m\"\n  profile = \"meterr\"\n",
			want: []string{`edged.toml:8: modbus[0].device[0].profile: profile "meterr" not found in testdata/profiles (did you mean "meter"?)`},
		},
		{
			name: "mistakes inside a profile are located in the profile file",
			text: bus + "\n  [[modbus.device]]\n  name = \"m\"\n  profile = \"broken\"\n",
			want: []string{
				`testdata/profiles/broken.toml:7: points[0].type: "flaot32" is not one of bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string`,
				`testdata/profiles/broken.toml:9: points[1].address: missing (the holding register's 0-based protocol address; edged never assumes 0)`,
				`testdata/profiles/broken.toml:10: points[1].name: "voltage" is already used by points[0]`,
				`testdata/profiles/broken.toml:12: points[1].adress: unknown key (did you mean "address"?)`,
			},
		},
		{
			name: "a profile name cannot leave the profile directories",
			text: bus + "\n  [[modbus.device]]\n  name = \"m\"\n  profile = \"../../etc/passwd\"\n",
			want: []string{`edged.toml:8: modbus[0].device[0].profile: "../../etc/passwd" is not a profile name (letters, digits, '.', '_' and '-', not starting with '.')`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := errorLines(t, tc.text)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestA4xxxxAddressLoadsWithAWarningThatGivesTheConversion(t *testing.T) {
	c, err := parseTest(t, `
[gateway]
id = "gw"

[[modbus]]
name = "bus"
address = "127.0.0.1:502"

  [[modbus.device]]
  name = "meter1"
  points = [ { name = "energy", table = "holding", address = 40001, type = "uint32" } ]
`)
	if err != nil {
		t.Fatalf("a 5-digit 4xxxx address is also a valid protocol address, but: %v", err)
	}
	want := `edged.toml:11: modbus[0].device[0].points[0].address: looks like 4xxxx notation: if the datasheet numbers the register 40001, its protocol address is 0 (edged reads address 40001 as written)`
	if len(c.Warnings) != 1 || c.Warnings[0].Error() != want {
		t.Fatalf("warnings = %v, want [%s]", c.Warnings, want)
	}
}

func TestTheOldDurabilityNameNormalLoadsWithAWarningThatSaysWhatItRisks(t *testing.T) {
	c, err := parseTest(t, `
[gateway]
id = "gw"

[buffer]
durability = "normal"
`)
	if err != nil {
		t.Fatalf("files written for older versions must keep starting, but: %v", err)
	}
	if c.Buffer.Durability != "power-loss-unsafe" {
		t.Errorf("durability = %q, want the old name read as power-loss-unsafe", c.Buffer.Durability)
	}
	want := `edged.toml:6: buffer.durability: "normal" is the old name of "power-loss-unsafe": it survives a crash of edged but a power cut may lose the last acknowledged messages; remove the line for the default "full", or write "power-loss-unsafe" to keep this mode`
	if len(c.Warnings) != 1 || c.Warnings[0].Error() != want {
		t.Fatalf("warnings = %v, want [%s]", c.Warnings, want)
	}
}

func TestAnUnknownDurabilityNamesTheValidOnes(t *testing.T) {
	_, err := parseTest(t, `
[gateway]
id = "gw"

[buffer]
durability = "fast"
`)
	want := `edged.toml:6: buffer.durability: "fast" is not one of full, power-loss-unsafe`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %s", err, want)
	}
}

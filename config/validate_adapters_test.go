package config

import (
	"regexp"
	"strings"
	"testing"
)

// TestEveryRuleAnAdapterOnceCheckedIsConfigs: the Modbus, serial and AT
// adapters used to refuse these configs in their New, after `edged check`
// had passed them or with no file and line. Each rule now lives in config
// only, and the adapters take the validated values as given; a rule removed
// from config fails its case here.
func TestEveryRuleAnAdapterOnceCheckedIsConfigs(t *testing.T) {
	const tcpBus = "[[modbus]]\nname = \"b\"\naddress = \"10.0.0.5:502\"\n"
	device := func(points string) string {
		return tcpBus + "[[modbus.device]]\nname = \"m\"\npoints = [\n" + points + "\n]\n"
	}
	point := func(fields string) string {
		return device(`{ name = "v", table = "holding", address = 0, type = "uint16", ` + fields + ` }`)
	}
	serial := func(extra string) string {
		return "[[serial]]\nname = \"s\"\nport = \"/dev/ttyAMA0\"\npatterns = ['T=(?P<t>[0-9]+)']\n" + extra
	}
	at := func(extra string) string {
		return "[[at]]\nname = \"a\"\nport = \"/dev/ttyS0\"\nqueries = [ { command = \"AT+CSQ\", pattern = '(?P<rssi>\\d+)' } ]\n" + extra
	}
	cases := []struct {
		name string
		text string
		want string // key.path: the start of the message
	}{
		// [[modbus]]: the bus
		{"a bus with neither port nor address", "[[modbus]]\nname = \"b\"\n", `modbus[0]: set port`},
		{"an unknown transport", "[[modbus]]\nname = \"b\"\ntransport = \"udp\"\naddress = \"x:1\"\n", `modbus[0].transport: "udp" is not one of rtu, tcp, rtu-over-tcp`},
		{"an RTU transport with an address", "[[modbus]]\nname = \"b\"\ntransport = \"rtu\"\naddress = \"x:1\"\n", `modbus[0].address: transport "rtu" uses port`},
		{"an unknown parity", "[[modbus]]\nname = \"b\"\nport = \"/dev/ttyUSB0\"\nparity = \"X\"\n", `modbus[0].parity: "X" is not one of N, E, O`},
		{"a negative max_gap", tcpBus + "max_gap = -1\n", `modbus[0].max_gap: must not be negative`},
		{"max_registers past the protocol's 125", tcpBus + "max_registers = 126\n", `modbus[0].max_registers: 126 is out of range 1..125`},
		// [[modbus.device]]
		{"a device without a name", tcpBus + "[[modbus.device]]\npoints = [ { name = \"v\", table = \"coil\", address = 0 } ]\n", `modbus[0].device[0].name: missing`},
		{"two devices with one name", device(`{ name = "v", table = "coil", address = 0 }`) + "[[modbus.device]]\nname = \"m\"\npoints = [ { name = \"w\", table = \"coil\", address = 0 } ]\n", `modbus[0].device[1].name: "m" is already used`},
		{"a unit id past 255", tcpBus + "[[modbus.device]]\nname = \"m\"\nunit = 300\npoints = [ { name = \"v\", table = \"coil\", address = 0 } ]\n", `modbus[0].device[0].unit: 300 is out of range 0..255`},
		{"a wildcard in a topic", tcpBus + "[[modbus.device]]\nname = \"m\"\ntopic = \"x/+/{point}\"\npoints = [ { name = \"v\", table = \"coil\", address = 0 } ]\n", `modbus[0].device[0].topic: `},
		{"an unknown payload format", tcpBus + "[[modbus.device]]\nname = \"m\"\npayload = \"xml\"\npoints = [ { name = \"v\", table = \"coil\", address = 0 } ]\n", `modbus[0].device[0].payload: "xml" is not one of json, value`},
		{"two points with one name", device(`{ name = "v", table = "coil", address = 0 }, { name = "v", table = "coil", address = 1 }`), `modbus[0].device[0].points[1].name: "v" is already used`},
		// points
		{"a point name with a slash", device(`{ name = "a/b", table = "coil", address = 0 }`), `modbus[0].device[0].points[0].name: "a/b" cannot be a topic level`},
		{"a misspelt type", device(`{ name = "v", table = "holding", address = 0, type = "flaot32" }`), `modbus[0].device[0].points[0].type: "flaot32" is not one of`},
		{"an unknown table", device(`{ name = "v", table = "holdings", address = 0, type = "uint16" }`), `modbus[0].device[0].points[0].table: "holdings" is not one of`},
		{"a missing address", device(`{ name = "v", table = "holding", type = "uint16" }`), `modbus[0].device[0].points[0].address: missing`},
		{"6-digit 4xxxxx notation", device(`{ name = "v", table = "holding", address = 400001, type = "uint16" }`), `modbus[0].device[0].points[0].address: looks like 4xxxxx notation`},
		{"a 32-bit value past the last register", device(`{ name = "v", table = "holding", address = 65535, type = "uint32" }`), `modbus[0].device[0].points[0].address: a uint32 at 65535 needs 2 registers`},
		{"a writable input register", device(`{ name = "v", table = "input", address = 0, type = "uint16", writable = true }`), `modbus[0].device[0].points[0].writable: `},
		{"a coil typed as a number", device(`{ name = "v", table = "coil", address = 0, type = "uint16" }`), `modbus[0].device[0].points[0].type: a coil holds a single bit`},
		{"a bool register without a bit", device(`{ name = "v", table = "holding", address = 0, type = "bool" }`), `modbus[0].device[0].points[0].bit: missing`},
		{"bit 16", device(`{ name = "v", table = "holding", address = 0, type = "bool", bit = 16 }`), `modbus[0].device[0].points[0].bit: 16 is out of range 0..15`},
		{"a bit on a coil", device(`{ name = "v", table = "coil", address = 0, bit = 1 }`), `modbus[0].device[0].points[0].bit: only a bool point`},
		{"a string without a length", device(`{ name = "v", table = "holding", address = 0, type = "string" }`), `modbus[0].device[0].points[0].length: missing`},
		{"a string longer than one read", device(`{ name = "v", table = "holding", address = 0, type = "string", length = 126 }`), `modbus[0].device[0].points[0].length: 126 is out of range 1..125`},
		{"a scale of zero", point(`scale = 0.0`), `modbus[0].device[0].points[0].scale: must not be 0`},
		{"an unknown order", point(`order = "ACBD"`), `modbus[0].device[0].points[0].order: "ACBD" is not one of`},
		{"a precision past 15", point(`precision = 16`), `modbus[0].device[0].points[0].precision: 16 is out of range 0..15`},
		{"qos 2", point(`qos = 2`), `modbus[0].device[0].points[0].qos: 2 is not one of 0, 1`},
		// [[serial]] and the line settings it shares with [[at]]
		{"a serial device without a port", "[[serial]]\nname = \"s\"\npatterns = ['T=(?P<t>[0-9]+)']\n", `serial[0].port: missing`},
		{"a serial parity that is no parity", serial("parity = \"X\"\n"), `serial[0].parity: "X" is not one of N, E, O`},
		{"three stop bits", serial("stop_bits = 3\n"), `serial[0].stop_bits: 3 is not one of 1, 2`},
		{"nine data bits", serial("data_bits = 9\n"), `serial[0].data_bits: 9 is out of range 5..8`},
		{"a negative baud", serial("baud = -1\n"), `serial[0].baud: must be at least 1`},
		{"a pattern that does not compile", "[[serial]]\nname = \"s\"\nport = \"/dev/ttyAMA0\"\npatterns = ['(?P<x>']\n", `serial[0].patterns[0]: not a valid regular expression`},
		{"a delimiter together with start and end", serial("delimiter = ';'\nstart = '<'\nend = '>'\n"), `serial[0].delimiter: use either delimiter or start and end`},
		{"a bad escape in the request", serial("request = '\\q'\ninterval = \"1s\"\n"), `serial[0].request: unknown escape`},
		{"a serial payload format", serial("payload = \"xml\"\n"), `serial[0].payload: "xml" is not one of json, value`},
		{"a serial topic with a wildcard", serial("topic = \"{gateway}/#/{point}\"\n"), `serial[0].topic: `},
		{"a max_frame past 16MiB", serial("max_frame = \"17MiB\"\n"), `serial[0].max_frame: must be between 1 byte and 16MiB`},
		// [[at]]
		{"an AT device without a port", "[[at]]\nname = \"a\"\n", `at[0].port: missing`},
		{"a query pattern that does not compile", "[[at]]\nname = \"a\"\nport = \"/dev/ttyS0\"\nqueries = [ { command = \"AT+CSQ\", pattern = '(?P<x>' } ]\n", `at[0].queries[0].pattern: not a valid regular expression`},
		{"an empty query command", "[[at]]\nname = \"a\"\nport = \"/dev/ttyS0\"\nqueries = [ { command = \"\" } ]\n", `at[0].queries[0].command: must not be empty`},
		{"an init command of two lines", at("init = [\"ATE0\\r\\nAT\"]\n"), `at[0].init[0]: must not contain line breaks`},
		{"an init command of spaces only", at("init = [\"   \"]\n"), `at[0].init[0]: must not be empty`},
		{"a NUL in a query command", "[[at]]\nname = \"a\"\nport = \"/dev/ttyS0\"\nqueries = [ { command = \"AT\\u0000+CSQ\" } ]\n", `at[0].queries[0].command: must not contain a NUL character`},
		{"a reset command longer than an AT line", at("reset = \"AT+" + strings.Repeat("X", 300) + "\"\n"), `at[0].reset: is 303 bytes long; an AT command line is at most 256`},
		{"an empty URC pattern", at("urcs = [ { pattern = \"\" } ]\n"), `at[0].urcs[0].pattern: must not be empty`},
		{"a negative reset_after", at("reset_after = -1\n"), `at[0].reset_after: must be at least 1`},
		{"an AT payload format", at("payload = \"xml\"\n"), `at[0].payload: "xml" is not one of json, value`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			located := regexp.MustCompile(`^edged\.toml:[0-9]+: ` + regexp.QuoteMeta(c.want))
			lines := errorLines(t, c.text)
			for _, l := range lines {
				if located.MatchString(l) {
					return
				}
			}
			t.Errorf("no error edged.toml:LINE: %s...; got:\n%s", c.want, strings.Join(lines, "\n"))
		})
	}
}

// TestConfigResolvesWhatTheAdaptersTake: the derived values an adapter
// used to work out itself are config's: the Modbus transport from port or
// address and a device's settings from its bus, an AT command trimmed, a
// serial device's escapes decoded and its patterns compiled, a point's
// decimals from its scale.
func TestConfigResolvesWhatTheAdaptersTake(t *testing.T) {
	c, err := parseTest(t, `
[[modbus]]
name = "b"
port = "/dev/ttyUSB0"
timeout = "700ms"
max_gap = 3

  [[modbus.device]]
  name = "m"
  points = [ { name = "e", table = "holding", address = 0, type = "uint32", scale = 0.01 },
             { name = "t", table = "coil", address = 0 } ]

[[serial]]
name = "s"
port = "/dev/ttyAMA0"
start = '\x02'
end = '\x03'
request = 'R\r'
patterns = ['T=(?P<t>[0-9]+)', 'H=(?P<h>[0-9]+)']

[[at]]
name = "a"
port = "/dev/ttyS0"
init = [" ATE0 "]
reset = " AT+RST"
queries = [ { command = "AT+CSQ ", pattern = '(?P<rssi>\d+)' } ]
urcs = [ { pattern = '^\+CREG' } ]
`)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Modbus[0]
	d := b.Devices[0]
	if b.Transport != "rtu" || b.Target() != "/dev/ttyUSB0" || b.Parity != "E" || b.Baud != 9600 || b.DataBits != 8 || b.StopBits != 1 {
		t.Errorf("bus %+v: want rtu on /dev/ttyUSB0 at 9600 8E1", b)
	}
	if d.Unit != 1 || d.Timeout.Duration != b.Timeout.Duration || *d.MaxGap != 3 || d.MaxRegs != 125 || d.MaxBits != 2000 || d.Interval.Duration <= 0 {
		t.Errorf("device %+v: want unit 1 and the bus's timeout and limits", d)
	}
	if n := d.Points[0].Decimals(); n == nil || *n != 2 {
		t.Errorf("decimals of scale 0.01: %v, want 2", n)
	}
	if d.Points[1].Type != "bool" || d.Points[1].Order != "ABCD" || *d.Points[1].Scale != 1 || d.Points[1].Decimals() != nil {
		t.Errorf("coil %+v: want bool, ABCD, scale 1, not rounded", d.Points[1])
	}
	s := c.Serial[0]
	if string(s.StartBytes) != "\x02" || string(s.EndBytes) != "\x03" || string(s.RequestBytes) != "R\r" || s.DelimiterBytes != nil {
		t.Errorf("serial bytes %q %q %q %q", s.StartBytes, s.EndBytes, s.RequestBytes, s.DelimiterBytes)
	}
	if len(s.Regexps) != 2 || s.Regexps[1].String() != `H=(?P<h>[0-9]+)` {
		t.Errorf("serial patterns %v", s.Regexps)
	}
	a := c.AT[0]
	if a.Init[0] != "ATE0" || a.Reset != "AT+RST" || a.Queries[0].Command != "AT+CSQ" {
		t.Errorf("AT commands %q %q %q, want them trimmed", a.Init, a.Reset, a.Queries[0].Command)
	}
	if a.Queries[0].Regexp == nil || a.URCs[0].Regexp == nil || !*a.RawCommands || a.ResetAfter != 3 || a.Queries[0].Timeout.Duration != a.Timeout.Duration {
		t.Errorf("AT device %+v: want compiled patterns and the defaults", a)
	}
}

// TestCheckCompletesAConfigBuiltInCode: config.Check gives a config built
// in code what Load gives a file, where a point's address 0 is an address.
func TestCheckCompletesAConfigBuiltInCode(t *testing.T) {
	c := Config{Modbus: []Bus{{Name: "b", Address: "127.0.0.1:502", Devices: []Device{{Name: "m",
		Points: []Point{{Name: "v", Table: "input", Type: "float32"}}}}}}}
	if err := Check(&c); err != nil {
		t.Fatal(err)
	}
	if b := c.Modbus[0]; b.Transport != "tcp" || b.Devices[0].Unit != 1 || b.Devices[0].Points[0].Order != "ABCD" {
		t.Errorf("bus %+v not completed", b)
	}
	bad := Config{Modbus: []Bus{{Name: "b", Transport: "udp", Address: "x:1"}}}
	if err := Check(&bad); err == nil || !strings.Contains(err.Error(), `modbus[0].transport: "udp" is not one of`) {
		t.Errorf("Check: %v", err)
	}
	p := Point{Name: "value", Table: "input", Type: "uint16", Writable: true}
	if err := CheckPoint(&p); err == nil || !strings.Contains(err.Error(), "point.writable: ") {
		t.Errorf("CheckPoint of a writable input register: %v", err)
	}
}

package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edged/edged/internal/testpeer"
)

func TestDesignExampleLoads(t *testing.T) {
	c, err := loadAsIfInstalled(t, "testdata/design.toml", Options{})
	if err != nil {
		t.Fatalf("the DESIGN.md example does not load:\n%v", err)
	}
	b := c.Modbus[0]
	d := b.Devices[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"gateway id", c.Gateway.ID, "pi-01"},
		{"file", c.File, "testdata/design.toml"},
		{"bus transport inferred from port", b.Transport, "rtu"},
		{"bus parity", b.Parity, "E"},
		{"bus timeout", b.Timeout.Duration, 500 * time.Millisecond},
		{"device timeout inherits the bus's", d.Timeout.Duration, 500 * time.Millisecond},
		{"device interval", d.Interval.Duration, 5 * time.Second},
		{"device max_gap inherits the bus's", *d.MaxGap, 10},
		{"point order", d.Points[1].Order, "CDAB"},
		{"point scale", *d.Points[1].Scale, 0.01},
		{"default scale", *d.Points[0].Scale, 1.0},
		{"serial pattern", c.Serial[0].Patterns[0], `T=(?P<temperature>-?[0-9.]+),H=(?P<humidity>[0-9.]+)`},
		{"at baud", c.AT[0].Baud, 115200},
		{"at query timeout inherits the device's", c.AT[0].Queries[0].Timeout.Duration, 2 * time.Second},
		{"uplink client id", c.Uplink.ClientID, "pi-01"},
		{"forward qos", *c.Uplink.Forward[0].QoS, 1},
		{"downlink qos defaults to 1", *c.Uplink.Downlink[0].QoS, 1},
		{"buffer max bytes", c.Buffer.MaxBytes, Size(256 << 20)},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.what, ck.got, ck.want)
		}
	}
}

// loadAsIfInstalled loads a config file whose paths under /etc/edged/ are
// moved to a temporary directory holding a valid file of each name.
func loadAsIfInstalled(t *testing.T, file string, opts Options) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	etc := testpeer.NewEtcEdged(t)
	return ParseWith(file, []byte(etc.Rewrite(string(data))), opts)
}

func TestEveryShippedConfigLoads(t *testing.T) {
	files, err := filepath.Glob("../configs/*.toml")
	if err != nil || len(files) < 2 {
		t.Fatalf("configs/*.toml: %v files, %v", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f)+" loads without error", func(t *testing.T) {
			c, err := loadAsIfInstalled(t, f, Options{ProfileDirs: []string{"../configs/profiles"}})
			if err != nil {
				t.Fatalf("%v", err)
			}
			if c.Gateway.StateDir != DefaultStateDir {
				t.Errorf("state_dir = %q, want %q", c.Gateway.StateDir, DefaultStateDir)
			}
			for i, l := range c.Broker.Listeners {
				if !isLoopbackAddress(l.Address) {
					t.Errorf("listener %d on %q: shipped configs listen on loopback only", i, l.Address)
				}
			}
		})
	}
}

func TestShippedProfilesLoad(t *testing.T) {
	files, _ := filepath.Glob("../configs/profiles/*.toml")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".toml")
		t.Run(name+" loads without error", func(t *testing.T) {
			p, path, err := LoadProfile(name, []string{"../configs/profiles"})
			if err != nil {
				t.Fatalf("%v", err)
			}
			if path != f || len(p.Points) == 0 {
				t.Errorf("path %q, %d points", path, len(p.Points))
			}
		})
	}
}

func TestEmptyFileGetsEveryDefault(t *testing.T) {
	c, err := parseTest(t, "")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	l := c.Broker.Listeners
	checks := []struct {
		what      string
		got, want any
	}{
		{"gateway id", c.Gateway.ID, sanitizeHostname(host)},
		{"state dir", c.Gateway.StateDir, "/var/lib/edged"},
		{"log level", c.Log.Level, "info"},
		{"log format", c.Log.Format, "text"},
		{"one listener", len(l), 1},
		{"listener type", l[0].Type, "tcp"},
		{"listener address", l[0].Address, "127.0.0.1:1883"},
		{"anonymous on loopback", *l[0].AllowAnonymous, true},
		{"max packet size", c.Broker.MaxPacketSize, Size(1 << 20)},
		{"max clients", c.Broker.MaxClients, 1000},
		{"max inflight", c.Broker.MaxInflight, 64},
		{"max queued", c.Broker.MaxQueued, 1000},
		{"session expiry", c.Broker.SessionExpiry.Duration, 168 * time.Hour},
		{"message expiry", c.Broker.MessageExpiry.Duration, 168 * time.Hour},
		{"persist", *c.Broker.Persist, true},
		{"max keepalive", c.Broker.MaxKeepalive.Duration, 5 * time.Minute},
		{"topic alias maximum", *c.Broker.TopicAliasMaximum, 10},
		{"no uplink", c.Uplink == nil, true},
		{"buffer bytes", c.Buffer.MaxBytes, Size(256 << 20)},
		{"buffer age", c.Buffer.MaxAge.Duration, 168 * time.Hour},
		{"when full", c.Buffer.WhenFull, "drop-oldest"},
		{"durability", c.Buffer.Durability, "full"},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.what, ck.got, ck.want)
		}
	}
}

func TestSectionDefaults(t *testing.T) {
	c, err := parseTest(t, `
[[modbus]]
name = "tcp"
address = "10.0.0.5:502"
  [[modbus.device]]
  name = "plc"
  unit = 0
  points = [ { name = "run", table = "coil", address = 0 } ]

[[serial]]
name = "gps"
port = "/dev/ttyAMA0"
raw = true
request = '\r\n'

[[at]]
name = "modem"
port = "/dev/ttyS0"
queries = [ { command = "AT+CSQ", pattern = '\+CSQ: (?P<rssi>\d+)', timeout = "5s" } ]

[uplink]
url = "mqtt://broker.local"
`)
	if err != nil {
		t.Fatal(err)
	}
	b, d, p := c.Modbus[0], c.Modbus[0].Devices[0], c.Modbus[0].Devices[0].Points[0]
	s, a, u := c.Serial[0], c.AT[0], c.Uplink
	checks := []struct {
		what      string
		got, want any
	}{
		{"tcp transport from address", b.Transport, "tcp"},
		{"no serial settings on tcp", b.Baud, 0},
		{"bus timeout", b.Timeout.Duration, time.Second},
		{"max registers", b.MaxRegs, 125},
		{"max bits", b.MaxBits, 2000},
		{"unit 0 kept on tcp", d.Unit, 0},
		{"device interval", d.Interval.Duration, 10 * time.Second},
		{"device topic", d.Topic, "{gateway}/{device}/{point}"},
		{"device payload", d.Payload, "json"},
		{"coil type", p.Type, "bool"},
		{"point order", p.Order, "ABCD"},
		{"point qos", *p.QoS, 0},
		{"serial baud", s.Baud, 9600},
		{"serial parity", s.Parity, "N"},
		{"serial data bits", s.DataBits, 8},
		{"serial stop bits", s.StopBits, 1},
		{"serial max frame", s.MaxFrame, Size(4096)},
		{"serial interval with request", s.Interval.Duration, 30 * time.Second},
		{"at baud", a.Baud, 115200},
		{"at interval", a.Interval.Duration, 30 * time.Second},
		{"at timeout", a.Timeout.Duration, 2 * time.Second},
		{"query timeout kept", a.Queries[0].Timeout.Duration, 5 * time.Second},
		{"reset after", a.ResetAfter, 3},
		{"raw commands", *a.RawCommands, true},
		{"uplink keepalive", u.Keepalive.Duration, 30 * time.Second},
		{"uplink max backoff", u.MaxBackoff.Duration, 10 * time.Second},
		{"uplink inflight", u.Inflight, 64},
		{"uplink ack timeout", u.AckTimeout.Duration, 5 * time.Second},
		{"uplink dead letter after", u.DeadLetterAfter, 3},
		{"uplink client id", u.ClientID, c.Gateway.ID},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.what, ck.got, ck.want)
		}
	}
}

func TestExplicitZeroIsCheckedNotReplaced(t *testing.T) {
	wantErrorLines(t, "[broker]\nmax_clients = 0\nmax_packet_size = 0\n",
		"edged.toml:2: broker.max_clients: must be at least 1, got 0",
		"edged.toml:3: broker.max_packet_size: must be between 128 and 268435455 bytes (MQTT's limit), got 0",
	)
}

// wantErrorLines fails unless loading text reports exactly want.
func wantErrorLines(t *testing.T, text string, want ...string) {
	t.Helper()
	got := errorLines(t, text)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBrokerConformanceKeys(t *testing.T) {
	c, err := parseTest(t, "[broker]\nmax_keepalive = \"90s\"\ntopic_alias_maximum = 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.MaxKeepalive.Duration != 90*time.Second || *c.Broker.TopicAliasMaximum != 0 {
		t.Errorf("max_keepalive %v, topic_alias_maximum %d; want 1m30s, 0 (kept, not defaulted)", c.Broker.MaxKeepalive, *c.Broker.TopicAliasMaximum)
	}
	wantErrorLines(t, "[broker]\nmax_keepalive = \"19h\"\ntopic_alias_maximum = 70000\n",
		"edged.toml:2: broker.max_keepalive: must be whole seconds from 1s to 65535s (MQTT's limit, 18h12m15s), got 19h0m0s",
		"edged.toml:3: broker.topic_alias_maximum: 70000 is out of range 0..65535",
	)
}

func TestMaxQueuedBytes(t *testing.T) {
	c, err := parseTest(t, "[broker]\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.MaxQueuedBytes != DefaultMaxQueuedBytes {
		t.Errorf("max_queued_bytes defaults to %d, want %d", c.Broker.MaxQueuedBytes, DefaultMaxQueuedBytes)
	}
	wantErrorLines(t, "[broker]\nmax_packet_size = \"64KiB\"\nmax_queued_bytes = \"16KiB\"\n",
		"edged.toml:3: broker.max_queued_bytes: must be at least max_packet_size (65536 bytes), or a client could never be sent a message that size; got 16384",
	)
}

func TestListenerAccessDefaults(t *testing.T) {
	c, err := parseTest(t, testpeer.NewEtcEdged(t).Rewrite(`
[broker]
listener = [
  { address = "127.0.0.1:1883" },
  { address = "0.0.0.0:1884", users_file = "/etc/edged/passwd" },
  { address = "[::]:1885", allow_anonymous = true },
  { address = "[::1]:1886", users_file = "/etc/edged/passwd" },
]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, false, true, false}
	for i, l := range c.Broker.Listeners {
		if *l.AllowAnonymous != want[i] {
			t.Errorf("listener %d (%s): allow_anonymous = %v, want %v", i, l.Address, *l.AllowAnonymous, want[i])
		}
	}
}

func TestAnEmptyListenerListMeansNoSockets(t *testing.T) {
	c, err := parseTest(t, "[broker]\nlistener = []\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Broker.Listeners) != 0 {
		t.Errorf("listeners = %+v, want none", c.Broker.Listeners)
	}
}

func TestProfilePointsMergeWithTheDevicesOwn(t *testing.T) {
	c, err := parseTest(t, `
[[modbus]]
name = "rs485"
port = "/dev/ttyUSB0"
  [[modbus.device]]
  name = "m1"
  profile = "meter"
  points = [
    { name = "current", table = "input", address = 8, type = "float32", unit = "mA", scale = 1000.0 },
    { name = "frequency", table = "input", address = 70, type = "float32", unit = "Hz" },
  ]
  [[modbus.device]]
  name = "m2"
  unit = 2
  profile = "meter"
`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range c.Modbus[0].Devices[0].Points {
		names = append(names, p.Name+"@"+p.Unit)
	}
	if got, want := strings.Join(names, " "), "voltage@V current@mA relay@ frequency@Hz"; got != want {
		t.Errorf("merged points = %s, want %s", got, want)
	}
	m2 := c.Modbus[0].Devices[1].Points
	if len(m2) != 3 || m2[1].Unit != "A" {
		t.Errorf("second device's points = %+v", m2)
	}
	*m2[0].Scale = 7 // devices sharing a profile must not share its pointers
	if *c.Modbus[0].Devices[0].Points[0].Scale != 1 {
		t.Error("changing one device's profile point changed another's")
	}
}

func TestLoadProfileSearchesDirsInOrder(t *testing.T) {
	override := t.TempDir()
	if err := os.WriteFile(filepath.Join(override, "meter.toml"), []byte(`points = [ { name = "p", table = "input", address = 1, type = "uint16" } ]`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, path, err := LoadProfile("meter", []string{filepath.Join(override, "absent"), override, "testdata/profiles"})
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(override, "meter.toml") || len(p.Points) != 1 {
		t.Errorf("got %s with %d points, want the override", path, len(p.Points))
	}
	_, _, err = LoadProfile("nothing", []string{"testdata/profiles"})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing profile: %v, want fs.ErrNotExist", err)
	}
}

func TestLoadOfAMissingFileSaysSo(t *testing.T) {
	_, err := LoadWith("testdata/absent.toml", Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
	if want := "testdata/absent.toml: cannot read config: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestDecoderAgreesWithTheTOMLLibrary(t *testing.T) {
	data, err := os.ReadFile("testdata/design.toml")
	if err != nil {
		t.Fatal(err)
	}
	var want Config
	if _, err := toml.Decode(string(data), &want); err != nil {
		t.Fatal(err)
	}
	got, errs := decodeOnly(string(data))
	if len(errs) > 0 {
		t.Fatalf("decoder errors: %v", errs)
	}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, &want)
	}
}

// decodeOnly runs the parser and the decoder without defaults or checks.
func decodeOnly(text string) (*Config, []*Error) {
	var c Config
	d, synErr := decodeFile("t.toml", []byte(text), &c)
	if synErr != nil {
		return nil, []*Error{synErr}
	}
	return &c, d.errs
}

func TestSanitizeHostname(t *testing.T) {
	cases := map[string]string{
		"raspberrypi":       "raspberrypi",
		"Pi-01.local":       "pi-01.local",
		"site a/pi#1+":      "site-a-pi-1",
		"":                  "edged",
		"---":               "edged",
		"gw_7":              "gw_7",
		"\u00fcber-gateway": "ber-gateway",
	}
	for in, want := range cases {
		if got := sanitizeHostname(in); got != want {
			t.Errorf("sanitizeHostname(%q) = %q, want %q", in, got, want)
		}
	}
}

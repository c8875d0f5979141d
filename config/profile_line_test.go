package config

import (
	"strings"
	"testing"
)

func TestAProfilesFactorySettingsWarnWhenTheBusDisagrees(t *testing.T) {
	cases := []struct {
		name, bus, unit string
		warn            string
		wantUnit        int
	}{
		{"a bus at the factory settings gets no warning and the profile's unit", "baud = 2400\nparity = \"N\"", "", "", 7},
		{"a bus at other settings is warned about at the device's profile key", "baud = 9600", "unit = 3",
			`edged.toml:13: modbus[0].device[0].profile: bus "rs485" runs 9600 baud, parity E, but profile "factory" says the device leaves the factory with baud = 2400, parity = "N": set them on the bus unless the device was reconfigured`, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseTest(t, `
[gateway]
id = "gw"

[[modbus]]
name = "rs485"
port = "/dev/ttyUSB0"
`+c.bus+`

  [[modbus.device]]
  name = "m"
  `+c.unit+`
  profile = "factory"
`)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, w.Error())
			}
			if strings.Join(got, "\n") != c.warn {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), c.warn)
			}
			if u := cfg.Modbus[0].Devices[0].Unit; u != c.wantUnit {
				t.Errorf("unit = %d, want %d", u, c.wantUnit)
			}
			if m := cfg.Modbus[0].Devices[0].MaxRegs; m != 40 {
				t.Errorf("max_registers = %d, want the profile's 40", m)
			}
		})
	}
	t.Run("a TCP bus has no line settings to disagree with", func(t *testing.T) {
		cfg, err := parseTest(t, "[[modbus]]\nname = \"gw\"\naddress = \"10.0.0.5:502\"\n\n  [[modbus.device]]\n  name = \"m\"\n  profile = \"factory\"\n")
		if err != nil || len(cfg.Warnings) != 0 {
			t.Fatalf("err %v, warnings %v", err, cfg.Warnings)
		}
	})
	t.Run("impossible factory settings are errors in the profile", func(t *testing.T) {
		_, err := parseTest(t, "[[modbus]]\nname = \"gw\"\naddress = \"10.0.0.5:502\"\n\n  [[modbus.device]]\n  name = \"m\"\n  profile = \"badline\"\n")
		for _, want := range []string{
			"testdata/profiles/badline.toml:2: baud:", `testdata/profiles/badline.toml:3: parity: "X" is not one of N, E, O`,
			"testdata/profiles/badline.toml:4: stop_bits: 3 is not one of 1, 2", "testdata/profiles/badline.toml:5: unit: 300 is out of range 1..247",
		} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("missing %q in %v", want, err)
			}
		}
	})
}

func TestPrecisionIsANumberOfDecimals(t *testing.T) {
	_, err := parseTest(t, `
[[modbus]]
name = "b"
address = "10.0.0.5:502"

  [[modbus.device]]
  name = "m"
  points = [
    { name = "ok",  table = "input", address = 0, type = "float32", precision = 2 },
    { name = "bad", table = "input", address = 2, type = "float32", precision = 16 },
  ]
`)
	want := "edged.toml:10: modbus[0].device[0].points[1].precision: 16 is out of range 0..15"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "points[0]") {
		t.Fatalf("err = %v, want only %q", err, want)
	}
}

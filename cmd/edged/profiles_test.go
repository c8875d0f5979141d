package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

const profileDir = "../../configs/profiles"

func shippedProfiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(profileDir, "*.toml"))
	if err != nil || len(files) < 12 {
		t.Fatalf("want at least 12 profiles in %s, have %d (%v)", profileDir, len(files), err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".toml"))
	}
	return names
}

func TestProfilesListsTheLibrary(t *testing.T) {
	code, out, errOut := cli(t, "profiles", "-dir", profileDir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, n := range shippedProfiles(t) {
		if !strings.Contains(out, "\n"+n+" ") {
			t.Errorf("profile %s not listed:\n%s", n, out)
		}
	}
	for _, want := range []string{"2400 8N1, unit 1", "Eastron SDM120 single-phase energy meter", "from " + profileDir} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// datasheetExamples are readings the makers' manuals give as examples:
// the registers as they arrive on the wire, from the point's address, and
// what edged must publish for them. Every other point is served a
// generated value laid out in the point's own byte order.
var datasheetExamples = map[string]map[string]struct {
	regs []int
	want string
}{
	// DDS238-2 ZN/S manual: a reading of 230.6 V, 0.62 A, 132 W, -2 var,
	// power factor 0.917 at 49.99 Hz.
	"hiking-dds238-2": {
		"voltage": {[]int{2306}, "230.6"}, "current": {[]int{62}, "0.62"}, "active_power": {[]int{132}, "132"},
		"reactive_power": {[]int{65534}, "-2"}, "power_factor": {[]int{917}, "0.917"}, "frequency": {[]int{4999}, "49.99"},
	},
	// PZEM-004T V3.0 / PZEM-016 manual: the example reply to a read of all
	// ten input registers, 32-bit values low word first: 220.0 V, 1.000 A,
	// 220.0 W, 0 Wh, 50.0 Hz, power factor 1.00, no alarm.
	"peacefair-pzem-016": {
		"voltage": {[]int{0x0898}, "220"}, "current": {[]int{0x03E8, 0x0000}, "1"}, "power": {[]int{0x0898, 0x0000}, "220"},
		"energy": {[]int{0, 0}, "0"}, "frequency": {[]int{0x01F4}, "50"}, "power_factor": {[]int{0x0064}, "1"},
		"power_alarm": {[]int{0}, "0"},
	},
}

// servePoint lays out the value of point p (raw, or the float f) in its
// registers, in the point's byte order, written apart from the adapter's
// code so the test checks it.
func servePoint(t *testing.T, tables map[string]map[string]any, p config.Point, raw int64, f float64, s string) {
	t.Helper()
	var be []byte
	switch p.Type {
	case "int16", "uint16":
		be = binary.BigEndian.AppendUint16(nil, uint16(raw))
	case "int32", "uint32":
		be = binary.BigEndian.AppendUint32(nil, uint32(raw))
	case "int64", "uint64":
		be = binary.BigEndian.AppendUint64(nil, uint64(raw))
	case "float32":
		be = binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(f)))
	case "float64":
		be = binary.BigEndian.AppendUint64(nil, math.Float64bits(f))
	case "string":
		be = make([]byte, 2*p.Length)
		copy(be, s)
	default:
		t.Fatalf("point %s: type %s not served by this test", p.Name, p.Type)
	}
	words := make([]uint16, len(be)/2)
	for i := range words {
		words[i] = binary.BigEndian.Uint16(be[2*i:])
	}
	if p.Order == "CDAB" || p.Order == "DCBA" {
		for i, j := 0, len(words)-1; i < j; i, j = i+1, j-1 {
			words[i], words[j] = words[j], words[i]
		}
	}
	if p.Order == "BADC" || p.Order == "DCBA" {
		for i := range words {
			words[i] = words[i]<<8 | words[i]>>8
		}
	}
	for i, w := range words {
		tables[p.Table][strconv.Itoa(p.Address+i)] = int(w)
	}
}

// scaled writes raw × scale as published: scale is 10^-d in every profile.
func scaled(t *testing.T, raw int64, scale float64) string {
	t.Helper()
	d := 0
	for math.Abs(scale*math.Pow(10, float64(d))-1) > 1e-9 {
		if d++; d > 6 {
			t.Fatalf("scale %v is not a power of ten", scale)
		}
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(raw)*math.Pow(10, -float64(d)), 'f', d, 64), 64)
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func TestEveryShippedProfileReadsItsDevice(t *testing.T) {
	names := shippedProfiles(t)
	units := map[string]map[string]map[string]any{}
	want := map[string]string{} // topic -> published value
	var devices strings.Builder
	for i, name := range names {
		p, _, err := config.LoadProfile(name, []string{profileDir})
		if err != nil {
			t.Fatalf("profile %s: %v", name, err)
		}
		unit := i + 1
		tables := map[string]map[string]any{"holding": {}, "input": {}, "coil": {}, "discrete": {}}
		for k, pt := range p.Points {
			topic := "gw/" + name + "/" + pt.Name
			scale := 1.0
			if pt.Scale != nil {
				scale = *pt.Scale
			}
			ex, isExample := datasheetExamples[name][pt.Name]
			switch {
			case isExample:
				for j, r := range ex.regs {
					tables[pt.Table][strconv.Itoa(pt.Address+j)] = r
				}
				want[topic] = ex.want
			case pt.Type == "string":
				s := fmt.Sprintf("EDGED%d", k)
				servePoint(t, tables, pt, 0, 0, s)
				want[topic] = strconv.Quote(s)
			case pt.Type == "float32" || pt.Type == "float64":
				v := float64(20+k) + 0.5 // exact in float32, and in tenths
				servePoint(t, tables, pt, 0, v/scale, "")
				want[topic] = strconv.FormatFloat(v, 'f', -1, 64)
			default:
				raw := int64(100 + k)
				if strings.HasSuffix(pt.Type, "32") {
					raw = 100000 + int64(k) // both words matter
				}
				servePoint(t, tables, pt, raw, 0, "")
				want[topic] = scaled(t, raw, scale)
			}
		}
		units[strconv.Itoa(unit)] = tables
		fmt.Fprintf(&devices, "\n  [[modbus.device]]\n  name = %q\n  unit = %d\n  profile = %q\n", name, unit, name)
	}
	dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: units})
	cfg := writeConfig(t, fmt.Sprintf("[gateway]\nid = \"gw\"\n\n[[modbus]]\nname = \"library\"\naddress = %q\ntimeout = \"2s\"\n%s",
		dev.Addr, devices.String()))
	// config.Load looks for profiles in configs/profiles under the working directory.
	t.Chdir("../..")
	code, out, errOut := cli(t, "poll", "-c", cfg, "--once")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[len(f)-1] == "good" {
			got[f[0]] = f[1]
		}
	}
	for topic, v := range want {
		if got[topic] != v {
			t.Errorf("%s = %q, want %q", topic, got[topic], v)
		}
	}
	t.Logf("%d profiles, %d points read as their datasheets say", len(names), len(want))
}

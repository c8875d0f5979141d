package config

import (
	"cmp"
	"strings"
)

var (
	pointTables = []string{"holding", "input", "coil", "discrete"}
	pointTypes  = []string{"bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}
	wordOrders  = []string{"ABCD", "CDAB", "BADC", "DCBA"}
)

// Modbus protocol limits: one read returns at most 125 registers or 2000
// bits, and unit ids above 247 are reserved on a serial line.
const (
	maxReadRegisters = 125
	maxReadBits      = 2000
	lastAddress      = 65535
)

// reservedPointNames are topic levels edged itself publishes under a device.
var reservedPointNames = map[string]string{
	"status": "the device's online/offline topic",
}

func (v *validator) modbus(buses []Bus) {
	busNames := map[string]string{}
	for i := range buses {
		b := &buses[i]
		p := index("modbus", i)
		if v.required(p+".name", b.Name, "a name for the bus, used in logs") {
			v.uniqueName(busNames, p, b.Name)
		}
		v.bus(p, b)
		for j := range b.Devices {
			v.device(index(p+".device", j), b, &b.Devices[j])
		}
	}
}

// bus checks the transport and its line or endpoint settings.
func (v *validator) bus(p string, b *Bus) {
	switch {
	case b.Port == "" && b.Address == "":
		switch {
		case v.set[p+".port"]:
			v.required(p+".port", b.Port, `the serial device, e.g. "/dev/ttyUSB0"`)
		case v.set[p+".address"]:
			v.required(p+".address", b.Address, `host:port of the Modbus TCP server, e.g. "10.0.0.5:502"`)
		default:
			v.errorf(p, `set port (Modbus RTU on a serial line, e.g. "/dev/ttyUSB0") or address (Modbus TCP, e.g. "10.0.0.5:502")`)
		}
		return
	case b.Port != "" && b.Address != "":
		v.errorf(p, "set either port (serial line) or address (TCP), not both")
		return
	}
	if b.Transport == "" {
		return // the decoder reported why port or address is unusable
	}
	if !v.oneOf(p+".transport", b.Transport, "rtu", "tcp", "rtu-over-tcp") {
		return
	}
	if b.Transport == "rtu" {
		if b.Address != "" {
			v.errorf(p+".address", `transport "rtu" uses port (a serial device), not address`)
		}
		v.required(p+".port", b.Port, "the serial device, e.g. /dev/ttyUSB0")
		v.lineSettings(p, b.Baud, b.Parity, b.DataBits, b.StopBits)
	} else {
		if b.Port != "" {
			v.errorf(p+".port", "transport %q uses address (host:port), not port", b.Transport)
		}
		if v.required(p+".address", b.Address, `host:port of the Modbus TCP server, e.g. "10.0.0.5:502"`) {
			if _, _, prob := splitHostPort(b.Address, true); prob != "" {
				v.errorf(p+".address", "%q %s (e.g. %q)", b.Address, prob, "10.0.0.5:502")
			}
		}
		for _, k := range []string{"baud", "parity", "data_bits", "stop_bits"} {
			if v.set[p+"."+k] {
				v.errorf(p+"."+k, "only a serial bus (port) uses %s", k)
			}
		}
	}
	v.positiveDur(p+".timeout", b.Timeout)
	v.readLimits(p, b.MaxGap, b.MaxRegs, b.MaxBits)
}

// lineSettings checks the settings of a serial line.
func (v *validator) lineSettings(p string, baud int, parity string, dataBits, stopBits int) {
	v.positive(p+".baud", baud)
	v.oneOf(p+".parity", parity, "N", "E", "O")
	v.inRange(p+".data_bits", dataBits, 5, 8)
	if stopBits != 1 && stopBits != 2 {
		v.errorf(p+".stop_bits", "%d is not one of 1, 2", stopBits)
	}
}

func (v *validator) readLimits(p string, maxGap *int, maxRegs, maxBits int) {
	if maxGap != nil && *maxGap < 0 {
		v.errorf(p+".max_gap", "must not be negative, got %d", *maxGap)
	}
	v.inRange(p+".max_registers", maxRegs, 1, maxReadRegisters)
	v.inRange(p+".max_bits", maxBits, 1, maxReadBits)
}

func (v *validator) device(p string, b *Bus, d *Device) {
	v.deviceName(p, d.Name, "meter1")
	switch b.Transport {
	case "tcp":
		v.inRange(p+".unit", d.Unit, 0, 255)
	case "rtu", "rtu-over-tcp":
		if d.Unit == 0 {
			v.errorf(p+".unit", "0 is the broadcast address on a serial line and never answers; use the slave id, 1..247")
		} else {
			v.inRange(p+".unit", d.Unit, 1, 247)
		}
	}
	v.positiveDur(p+".interval", d.Interval)
	v.positiveDur(p+".timeout", d.Timeout)
	v.topicAndPayload(p, d.Topic, d.Payload)
	v.haDevice(p+".homeassistant", d.HomeAssistant)
	v.readLimits(p, d.MaxGap, d.MaxRegs, d.MaxBits)

	v.points(p+".points", d.Points, d.MaxRegs)
	if d.Profile != "" {
		v.resolveProfile(p+".profile", d.Profile)
		v.profileDisagrees(p, b, d)
	} else if len(d.Points) == 0 && !v.bad[p+".points"] {
		v.errorf(p, `no points: set points, or profile = "NAME" for a register map`)
	}
}

// uniqueName records the name of the entry at p in seen, or reports at
// p.name the entry that took the name first.
func (v *validator) uniqueName(seen map[string]string, p, name string) {
	if first, ok := seen[name]; ok {
		v.errorf(p+".name", "%q is already used by %s", name, first)
		return
	}
	seen[name] = p
}

// points checks a device's or a profile's list of points, whose names
// must differ.
func (v *validator) points(path string, pts []Point, maxRegs int) {
	names := map[string]string{}
	for k := range pts {
		pp := index(path, k)
		v.point(pp, &pts[k], maxRegs)
		if pts[k].Name != "" {
			v.uniqueName(names, pp, pts[k].Name)
		}
	}
}

// words is how many registers (or bits, for coils) a point occupies.
func words(p *Point) int {
	switch p.Type {
	case "int32", "uint32", "float32":
		return 2
	case "int64", "uint64", "float64":
		return 4
	case "string":
		return p.Length
	}
	return 1
}

// point checks one register, coil or bit. maxRegs is the most registers
// one read may return on its device.
func (v *validator) point(p string, pt *Point, maxRegs int) {
	if v.required(p+".name", pt.Name, "the point's topic level, e.g. voltage") && v.topicLevel(p+".name", pt.Name) {
		if why, ok := reservedPointNames[pt.Name]; ok {
			v.errorf(p+".name", "%q is reserved for %s", pt.Name, why)
		}
	}
	tableOK := v.required(p+".table", pt.Table, "one of "+strings.Join(pointTables, ", ")) &&
		v.oneOf(p+".table", pt.Table, pointTables...)
	typeOK := v.required(p+".type", pt.Type, "one of "+strings.Join(pointTypes, ", ")) &&
		v.oneOf(p+".type", pt.Type, pointTypes...)
	bits := pt.Table == "coil" || pt.Table == "discrete"

	if tableOK && typeOK {
		switch {
		case bits && pt.Type != "bool":
			v.errorf(p+".type", `a %s holds a single bit: type must be "bool", not %q`, tableWord(pt.Table), pt.Type)
		case !bits && pt.Type == "bool" && pt.Bit == nil && !v.set[p+".bit"]:
			v.errorf(p+".bit", "missing (a bool from a %s names its bit, 0..15)", tableWord(pt.Table))
		}
	}
	if pt.Bit != nil {
		if bits || pt.Type != "bool" {
			v.errorf(p+".bit", `only a bool point on a holding or input register uses bit`)
		} else {
			v.inRange(p+".bit", *pt.Bit, 0, 15)
		}
	}
	switch {
	case pt.Type == "string":
		if pt.Length == 0 && !v.set[p+".length"] {
			v.errorf(p+".length", "missing (a string needs its length in registers)")
		} else if v.inRange(p+".length", pt.Length, 1, maxReadRegisters) && pt.Length > maxRegs {
			v.errorf(p+".length", "%d registers do not fit one read of max_registers = %d", pt.Length, maxRegs)
		}
	case pt.Length != 0 || v.set[p+".length"]:
		v.errorf(p+".length", "only a string point uses length")
	}
	v.oneOf(p+".order", pt.Order, wordOrders...)
	if tableOK {
		if !v.set[p+".address"] {
			v.errorf(p+".address", "missing (the %s's 0-based protocol address; edged never assumes 0)", tableWord(pt.Table))
		} else {
			v.address(p+".address", pt)
		}
	}
	if pt.Scale != nil && v.finite(p+".scale", *pt.Scale) && *pt.Scale == 0 {
		v.errorf(p+".scale", "must not be 0 (every value would read 0)")
	}
	v.finite(p+".offset", pt.Offset)
	if pt.Precision != nil {
		v.inRange(p+".precision", *pt.Precision, 0, maxDecimals)
	}
	if v.finite(p+".deadband", pt.Deadband) && pt.Deadband < 0 {
		v.errorf(p+".deadband", "must not be negative, got %v", pt.Deadband)
	}
	if pt.Writable && (pt.Table == "input" || pt.Table == "discrete") {
		v.errorf(p+".writable", "a %s cannot be written (only holding registers and coils can)", tableWord(pt.Table))
	}
	v.qos(p+".qos", pt.QoS)
	v.haPoint(p+".homeassistant", pt)
}

func tableWord(t string) string {
	switch t {
	case "holding":
		return "holding register"
	case "input":
		return "input register"
	case "discrete":
		return "discrete input"
	}
	return t
}

// address checks the 0-based protocol address and that the point ends
// inside the address space. Addresses copied from a datasheet in the
// 3xxxx/4xxxx (or 3xxxxx/4xxxxx) convention are the commonest Modbus
// mistake, so those get the conversion spelled out: as a warning for the
// 5-digit form, which is also a valid address, as an error for the 6-digit
// form, which is not.
func (v *validator) address(path string, pt *Point) {
	a := pt.Address
	if a < 0 {
		v.errorf(path, "must not be negative, got %d", a)
		return
	}
	lead := map[string]int{"holding": 4, "input": 3}[pt.Table]
	if lead != 0 {
		switch {
		case a >= lead*10000+1 && a <= lead*10000+9999:
			// A valid protocol address too (SunSpec maps start at 40000),
			// so it is read as written; edged check and the log say why a
			// device may refuse it.
			v.warnf(path, "looks like %dxxxx notation: if the datasheet numbers the register %d, its protocol address is %d (edged reads address %d as written)", lead, a, a-lead*10000-1, a)
		case a >= lead*100000+1 && a <= lead*100000+65536:
			v.errorf(path, "looks like %dxxxxx notation: the protocol address of %d is %d", lead, a, a-lead*100000-1)
			return
		}
	}
	if a > lastAddress {
		v.errorf(path, "%d is beyond the last address, %d", a, lastAddress)
		return
	}
	if n := words(pt); n > 1 && a+n-1 > lastAddress {
		v.errorf(path, "a %s at %d needs %d registers and runs past the last address, %d", pt.Type, a, n, lastAddress)
	}
}

// resolveProfile loads a device's profile once per config and records its
// problems (located in the profile file) or why it was not found.
func (v *validator) resolveProfile(path, name string) {
	r, ok := v.profiles[name]
	if !ok {
		p, _, err := LoadProfile(name, v.dirs)
		r = profileResult{p, err}
		v.profiles[name] = r
	}
	if r.err == nil {
		return
	}
	if errs, ok := r.err.(*Errors); ok {
		v.errs = append(v.errs, errs.List...)
		return
	}
	v.errorf(path, "%v", r.err)
}

// mergeProfiles replaces each device's points by its profile's points
// followed by its own; an own point with a profile point's name replaces it
// in place. Only called on a config that validated.
func (v *validator) mergeProfiles(c *Config) {
	for i := range c.Modbus {
		for j := range c.Modbus[i].Devices {
			d := &c.Modbus[i].Devices[j]
			r, ok := v.profiles[d.Profile]
			if d.Profile == "" || !ok || r.p == nil {
				continue
			}
			merged := make([]Point, len(r.p.Points), len(r.p.Points)+len(d.Points))
			for k := range r.p.Points {
				merged[k] = clonePoint(r.p.Points[k])
			}
			for _, own := range d.Points {
				replaced := false
				for k := range merged {
					if merged[k].Name == own.Name {
						merged[k] = own
						replaced = true
						break
					}
				}
				if !replaced {
					merged = append(merged, own)
				}
			}
			d.Points = merged
			dp := index(index("modbus", i)+".device", j)
			if r.p.Unit != 0 && !v.set[dp+".unit"] {
				d.Unit = r.p.Unit // the device's factory unit id
			}
			if r.p.MaxRegs != 0 && !v.set[dp+".max_registers"] {
				d.MaxRegs = min(d.MaxRegs, r.p.MaxRegs)
			}
			if r.p.Manufacturer != "" || r.p.Model != "" {
				if d.HomeAssistant == nil {
					d.HomeAssistant = &HAEntity{}
				}
				d.HomeAssistant.Manufacturer = cmp.Or(d.HomeAssistant.Manufacturer, r.p.Manufacturer)
				d.HomeAssistant.Model = cmp.Or(d.HomeAssistant.Model, r.p.Model)
			}
		}
	}
}

// clonePoint copies a point so that devices sharing a profile share no
// pointers.
func clonePoint(p Point) Point {
	if p.Bit != nil {
		b := *p.Bit
		p.Bit = &b
	}
	if p.Scale != nil {
		s := *p.Scale
		p.Scale = &s
	}
	if p.QoS != nil {
		q := *p.QoS
		p.QoS = &q
	}
	if p.Precision != nil {
		n := *p.Precision
		p.Precision = &n
	}
	if p.HomeAssistant != nil {
		h := *p.HomeAssistant
		p.HomeAssistant = &h
	}
	return p
}

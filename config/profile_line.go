package config

import (
	"fmt"
	"strings"
)

// profileLine checks a profile's factory line settings, unit id and read
// limit; each may be left out.
func (v *validator) profileLine(p *Profile) {
	if p.Baud != 0 || v.set["baud"] {
		v.positive("baud", p.Baud)
	}
	if p.Parity != "" {
		v.oneOf("parity", p.Parity, "N", "E", "O")
	}
	if p.StopBits != 0 || v.set["stop_bits"] {
		if p.StopBits != 1 && p.StopBits != 2 {
			v.errorf("stop_bits", "%d is not one of 1, 2", p.StopBits)
		}
	}
	if p.Unit != 0 || v.set["unit"] {
		v.inRange("unit", p.Unit, 1, 247)
	}
	if p.MaxRegs != 0 || v.set["max_registers"] {
		v.inRange("max_registers", p.MaxRegs, 1, maxReadRegisters)
	}
}

// profileDisagrees warns, at the device's profile key, when the serial bus
// of device d (at path p) runs other line settings than the device's
// profile says it leaves the factory with: the commonest reason a new meter
// never answers. A device that was reconfigured may ignore the warning.
func (v *validator) profileDisagrees(p string, b *Bus, d *Device) {
	r, ok := v.profiles[d.Profile]
	if !ok || r.p == nil || b.Transport != "rtu" {
		return
	}
	var differ, fix []string
	if r.p.Baud != 0 && r.p.Baud != b.Baud {
		differ = append(differ, fmt.Sprintf("%d baud", b.Baud))
		fix = append(fix, fmt.Sprintf("baud = %d", r.p.Baud))
	}
	if r.p.Parity != "" && r.p.Parity != b.Parity {
		differ = append(differ, fmt.Sprintf("parity %s", b.Parity))
		fix = append(fix, fmt.Sprintf("parity = %q", r.p.Parity))
	}
	if r.p.StopBits != 0 && r.p.StopBits != b.StopBits {
		differ = append(differ, fmt.Sprintf("%d stop bit(s)", b.StopBits))
		fix = append(fix, fmt.Sprintf("stop_bits = %d", r.p.StopBits))
	}
	if len(differ) == 0 {
		return
	}
	v.warnf(p+".profile", "bus %q runs %s, but profile %q says the device leaves the factory with %s: set them on the bus unless the device was reconfigured",
		b.Name, strings.Join(differ, ", "), d.Profile, strings.Join(fix, ", "))
}

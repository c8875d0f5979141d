package serialport

import (
	"testing"

	"go.bug.st/serial"

	"github.com/edged/edged/config"
)

// TestPortModeConvertsValidatedSettings: config refuses bad line settings
// and applies their defaults (config's TestEveryRuleAnAdapterOnceCheckedIsConfigs);
// PortMode only converts.
func TestPortModeConvertsValidatedSettings(t *testing.T) {
	cases := []struct {
		name string
		in   config.SerialPort
		want serial.Mode
	}{
		{"no parity and one stop bit", config.SerialPort{Baud: 9600, Parity: "N", DataBits: 8, StopBits: 1}, serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}},
		{"even parity and two stop bits", config.SerialPort{Baud: 19200, Parity: "E", StopBits: 2, DataBits: 7}, serial.Mode{BaudRate: 19200, DataBits: 7, Parity: serial.EvenParity, StopBits: serial.TwoStopBits}},
		{"odd parity", config.SerialPort{Baud: 9600, Parity: "O", DataBits: 8, StopBits: 1}, serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.OddParity, StopBits: serial.OneStopBit}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if m := PortMode(tc.in); *m != tc.want {
				t.Errorf("PortMode = %+v; want %+v", m, tc.want)
			}
		})
	}
}

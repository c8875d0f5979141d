package serialport

import (
	"testing"

	"go.bug.st/serial"

	"github.com/edged/edged/config"
)

func TestPortMode(t *testing.T) {
	cases := []struct {
		name string
		in   config.SerialPort
		want serial.Mode
		bad  bool
	}{
		{name: "zero values get the defaults", in: config.SerialPort{}, want: serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}},
		{name: "even parity and two stop bits", in: config.SerialPort{Baud: 19200, Parity: "E", StopBits: 2, DataBits: 7}, want: serial.Mode{BaudRate: 19200, DataBits: 7, Parity: serial.EvenParity, StopBits: serial.TwoStopBits}},
		{name: "odd parity in lower case", in: config.SerialPort{Parity: "o"}, want: serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.OddParity, StopBits: serial.OneStopBit}},
		{name: "an unknown parity is refused", in: config.SerialPort{Parity: "M"}, bad: true},
		{name: "three stop bits are refused", in: config.SerialPort{StopBits: 3}, bad: true},
		{name: "nine data bits are refused", in: config.SerialPort{DataBits: 9}, bad: true},
		{name: "a negative baud is refused", in: config.SerialPort{Baud: -1}, bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := PortMode(tc.in, 9600)
			if tc.bad {
				if err == nil {
					t.Errorf("accepted: %+v", m)
				}
				return
			}
			if err != nil || *m != tc.want {
				t.Errorf("PortMode = %+v, %v; want %+v", m, err, tc.want)
			}
		})
	}
}

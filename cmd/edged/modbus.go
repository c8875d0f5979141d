package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/edged/edged/adapters/modbus"
	"github.com/edged/edged/config"
)

// Exit codes of the commissioning commands beyond exitOK, exitError and
// exitUsage, so a script can tell a silent device from a refusing one.
const (
	exitNoAnswer  = 3 // nothing came back in time (or, for scan, no unit answered)
	exitException = 4 // the device answered with a Modbus exception
)

const modbusUsage = `Usage: edged modbus <scan|read|write> [options]

Commissioning tools for a Modbus bus: find which unit ids answer, read
registers and see every way to decode them, write a register or coil. The
bus comes from a config file (-c FILE --bus NAME) or from flags (--port
/dev/ttyUSB0 --baud 9600 --parity N, or --address HOST:PORT).

  scan   which unit ids answer, and what each answers at address 0
  read   read registers, coils or inputs; without --type, show every decoding
  write  write a holding register or coil and read it back

Exit codes: 0 done, 1 error (port cannot open, bad config), 2 bad command
line, 3 no answer in time, 4 the device answered with a Modbus exception.
Run 'edged modbus <command> -h' for the options of a command.
`

func cmdModbus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, modbusUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, modbusUsage)
		return exitOK
	case "scan":
		return cmdModbusScan(ctx, args[1:], stdout, stderr)
	case "read":
		return cmdModbusRead(args[1:], stdout, stderr)
	case "write":
		return cmdModbusWrite(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "edged modbus: unknown command %q\n\n%s", args[0], modbusUsage)
	return exitUsage
}

// busFlags say which bus a commissioning command talks to.
type busFlags struct {
	fs        *flag.FlagSet
	config    string
	bus       string
	port      string
	address   string
	transport string
	baud      int
	parity    string
	stopBits  int
	timeout   time.Duration
	// ownTimeout: --timeout's default beats the config's timeout too.
	ownTimeout bool
}

func addBusFlags(fs *flag.FlagSet, timeout time.Duration) *busFlags {
	f := &busFlags{fs: fs}
	fs.StringVar(&f.config, "c", "", "take the bus from this config `file`")
	fs.StringVar(&f.config, "config", "", "config `file` (same as -c)")
	fs.StringVar(&f.bus, "bus", "", "the [[modbus]] `name` in the config file (needed when it has several)")
	fs.StringVar(&f.port, "port", "", "serial `device` of a Modbus RTU bus, e.g. /dev/ttyUSB0")
	fs.StringVar(&f.address, "address", "", "`host:port` of a Modbus TCP server or serial device server")
	fs.StringVar(&f.transport, "transport", "", "rtu | tcp | rtu-over-tcp (default: rtu with --port, tcp with --address)")
	fs.IntVar(&f.baud, "baud", 9600, "line speed (RTU)")
	fs.StringVar(&f.parity, "parity", "E", "N | E | O (RTU)")
	fs.IntVar(&f.stopBits, "stop-bits", 1, "1 | 2 (RTU)")
	fs.DurationVar(&f.timeout, "timeout", timeout, "how long to wait for each answer")
	return f
}

// set reports whether the flag was given on the command line.
func (f *busFlags) set(name string) bool {
	given := false
	f.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == name })
	return given
}

// resolve builds the bus from the config file or the flags. Line settings
// and --timeout given on the command line override the file's.
func (f *busFlags) resolve() (config.Bus, error) {
	var b config.Bus
	switch {
	case f.config != "" && (f.port != "" || f.address != ""):
		return b, errors.New("take the bus from -c FILE or from --port/--address, not both")
	case f.config != "":
		cfg, err := config.Load(f.config)
		if err != nil {
			return b, err
		}
		found := false
		var names []string
		for _, c := range cfg.Modbus {
			names = append(names, c.Name)
			if c.Name == f.bus || (f.bus == "" && len(cfg.Modbus) == 1) {
				b, found = c, true
			}
		}
		switch {
		case len(names) == 0:
			return b, fmt.Errorf("%s has no [[modbus]] bus", f.config)
		case !found && f.bus == "":
			return b, fmt.Errorf("%s has %d buses: say which with --bus (%s)", f.config, len(names), strings.Join(names, ", "))
		case !found:
			return b, fmt.Errorf("%s has no bus %q (it has %s)", f.config, f.bus, strings.Join(names, ", "))
		}
		if b.Transport == "rtu" {
			if f.set("baud") {
				b.Baud = f.baud
			}
			if f.set("parity") {
				b.Parity = strings.ToUpper(f.parity)
			}
			if f.set("stop-bits") {
				b.StopBits = f.stopBits
			}
		}
	case f.port != "" && f.address != "":
		return b, errors.New("give --port (a serial line) or --address (TCP), not both")
	case f.port != "":
		b = config.Bus{Name: f.port, Port: f.port, Transport: "rtu", Baud: f.baud, Parity: strings.ToUpper(f.parity), StopBits: f.stopBits}
	case f.address != "":
		b = config.Bus{Name: f.address, Address: f.address, Transport: "tcp"}
	default:
		return b, errors.New("say which bus: --port /dev/ttyUSB0 (RTU), --address HOST:PORT (TCP), or -c FILE [--bus NAME]")
	}
	if f.transport != "" {
		b.Transport = f.transport
	}
	if f.set("timeout") || f.ownTimeout || b.Timeout.Duration <= 0 {
		b.Timeout = config.Duration{Duration: f.timeout}
	}
	if b.Timeout.Duration <= 0 {
		return b, fmt.Errorf("--timeout %v: must be more than 0", f.timeout)
	}
	if b.Transport == "rtu" && b.Baud <= 0 {
		return b, fmt.Errorf("--baud %d: must be more than 0", b.Baud)
	}
	// The bus as the flags left it, checked and completed by config's rules
	// for a [[modbus]] table; the commands talk to the units they are given.
	b.Devices = nil
	c := config.Config{Modbus: []config.Bus{b}}
	if err := config.Check(&c); err != nil {
		return b, err
	}
	return c.Modbus[0], nil
}

// client opens a client on the bus the flags name; it prints why not.
func (f *busFlags) client(stderr io.Writer) (*modbus.Client, config.Bus, int) {
	bus, err := f.resolve()
	if err == nil {
		var c *modbus.Client
		if c, err = modbus.NewClient(bus, slog.New(slog.DiscardHandler)); err == nil {
			return c, bus, -1
		}
	}
	fmt.Fprintf(stderr, "%s: %v\n", f.fs.Name(), err)
	return nil, bus, exitError
}

// describeBus is the one-line summary of where a command talks.
func describeBus(c *modbus.Client, bus config.Bus) string {
	if c.Transport() != "rtu" {
		return fmt.Sprintf("%s (%s, timeout %v)", c.Target(), c.Transport(), c.Timeout())
	}
	// bus is as config.Check completed it: every line setting is set.
	return fmt.Sprintf("%s (rtu, %d baud, %d%s%d, timeout %v)", c.Target(), bus.Baud, bus.DataBits, bus.Parity, bus.StopBits, c.Timeout())
}

// failure prints a transaction's error with what to check, and returns the
// exit code a script can branch on.
func failure(stderr io.Writer, cmd string, c *modbus.Client, err error) int {
	var ex modbus.ExceptionError
	switch {
	case errors.As(err, &ex):
		fmt.Fprintf(stderr, "%s: %v\n%s\n", cmd, err, exceptionHint(ex.Code))
		return exitException
	case errors.Is(err, modbus.ErrTimeout):
		fmt.Fprintf(stderr, "%s: %v\n%s\n", cmd, err, timeoutHint(c))
		return exitNoAnswer
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
	return exitError
}

func exceptionHint(code byte) string {
	switch code {
	case 1:
		return "The device does not implement this function: try another table (input instead of holding, or the reverse)."
	case 2:
		return "The device has nothing at this address or range: check that the address is the 0-based protocol address (register 40001 is holding address 0, 30001 input address 0) and that --count stays inside the map."
	case 3:
		return "The device refused the value or the register count: check --count, and the value's range in the datasheet."
	case 6:
		return "The device is busy: try again in a moment."
	case 10, 11:
		return "A gateway answered for the device: the device behind it did not answer (check the unit id and the gateway's serial settings)."
	}
	return "The device answered but refused the request; see its datasheet for this exception."
}

func timeoutHint(c *modbus.Client) string {
	if c.Transport() == "rtu" {
		return fmt.Sprintf("Check the unit id, the line settings (--baud, --parity, --stop-bits: the device's factory settings are in its manual), "+
			"the A/B wiring (swapped is common) and --timeout (now %v).", c.Timeout())
	}
	return fmt.Sprintf("Check the unit id (a TCP-to-RTU gateway passes it on to the serial device; many TCP devices answer 1 or 255 only), "+
		"that %s is the device, and --timeout (now %v).", c.Target(), c.Timeout())
}

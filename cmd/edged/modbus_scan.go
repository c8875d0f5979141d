package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edged/edged/adapters/modbus"
)

func cmdModbusScan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("modbus scan", "[bus options] [--units 1-247] [--timeout 200ms]", `
Ask every unit id in --units for holding register 0 and list those that
answer — with data or with an exception, either means a device is there —
what each answers at address 0 of the four tables, and its vendor,
product and revision when it answers function 43/14. A progress line
runs on stderr; a unit that does not answer costs --timeout, so 247 ids
on a dead bus take about 247 x --timeout.

Exits 0 when a unit answered, 3 when none did, 1 when the port or
connection cannot be opened.`, stderr)
	bf := addBusFlags(fs, 200*time.Millisecond)
	unitsFlag := fs.String("units", "1-247", "unit ids to try: `list` of ids and ranges, e.g. 1-10,100")
	if code := parse(fs, args, 0); code >= 0 {
		return code
	}
	bf.ownTimeout = true // not the config's: a scan waits it out once per silent unit
	c, bus, code := bf.client(stderr)
	if c == nil {
		return code
	}
	defer c.Close()
	lo, hi := 1, 247 // 0 is broadcast on a serial line; 248..255 are reserved
	if c.Transport() == "tcp" {
		lo, hi = 0, 255
	}
	units, err := parseUnits(*unitsFlag, lo, hi)
	if err != nil {
		fmt.Fprintf(stderr, "edged modbus scan: --units: %v\n", err)
		return exitUsage
	}

	began := time.Now()
	var found []uint8
	progress := 0 // length of the progress line, to blank it at the end
	for i, u := range units {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "\ninterrupted at unit %d\n", u)
			break
		}
		line := fmt.Sprintf("scanning %s: unit %d (%d of %d), %d answered", c.Target(), u, i+1, len(units), len(found))
		fmt.Fprintf(stderr, "\r%-*s", progress, line)
		progress = len(line)
		present, err := c.Probe(u)
		if errors.Is(err, modbus.ErrNotOpen) {
			fmt.Fprintf(stderr, "\nedged modbus scan: %v\n", err)
			return exitError
		}
		if present {
			found = append(found, u)
		}
	}
	fmt.Fprintf(stderr, "\r%s\r", strings.Repeat(" ", progress))
	fmt.Fprintf(stdout, "scanned %d unit ids on %s in %v: %d answered\n",
		len(units), describeBus(c, bus), time.Since(began).Round(10*time.Millisecond), len(found))
	if len(found) == 0 {
		fmt.Fprintln(stdout, timeoutHint(c))
		return exitNoAnswer
	}

	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "unit\tholding 0\tinput 0\tcoil 0\tdiscrete 0\tidentification")
	for _, u := range found {
		cells := []string{strconv.Itoa(int(u))}
		for _, t := range []modbus.Table{modbus.Holding, modbus.Input, modbus.Coil, modbus.Discrete} {
			cells = append(cells, answerAt0(c, u, t))
		}
		ident := "-" // most devices have none and answer exception 1
		if id, err := c.Identify(u); err == nil && id.String() != "" {
			ident = id.String()
		}
		fmt.Fprintln(tw, strings.Join(append(cells, ident), "\t"))
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nexception 1: the device has no such table; exception 2: it has nothing at address 0 of it.")
	return exitOK
}

// answerAt0 says what unit answers to a read of address 0 of table t.
func answerAt0(c *modbus.Client, unit uint8, t modbus.Table) string {
	regs, bits, err := c.Read(unit, t, 0, 1)
	var ex modbus.ExceptionError
	switch {
	case errors.As(err, &ex):
		return fmt.Sprintf("exception %d", ex.Code)
	case errors.Is(err, modbus.ErrTimeout):
		return "no answer"
	case err != nil:
		return "error"
	case t.Bits():
		return fmt.Sprintf("ok (%v)", bits[0])
	}
	return fmt.Sprintf("ok (0x%02X%02X)", regs[0], regs[1])
}

// parseUnits reads "1-10,20,30-32" into unit ids in lo..hi, in order, each once.
func parseUnits(s string, lo, hi int) ([]uint8, error) {
	seen := map[int]bool{}
	var units []uint8
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		from, to, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(from))
		if err != nil {
			return nil, fmt.Errorf("%q is not a unit id or range (e.g. 1-247 or 1,5,10-20)", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(to)); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a range (from-to, from <= to)", part)
			}
		}
		if a < lo || b > hi {
			return nil, fmt.Errorf("%q is outside %d..%d", part, lo, hi)
		}
		for u := a; u <= b; u++ {
			if !seen[u] {
				seen[u] = true
				units = append(units, uint8(u))
			}
		}
	}
	return units, nil
}

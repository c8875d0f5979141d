package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edged/edged/adapters/modbus"
	"github.com/edged/edged/config"
)

func cmdModbusRead(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("modbus read", "[bus options] --unit N --table T --register A [--count K] [--type T --order O]", `
Read registers, coils or discrete inputs once and print them. With --type,
each value is decoded as that type in --order. Without it (or with
--decode), every register is shown as int16 and uint16, every pair as
int32, uint32 and float32 and every quad as int64, uint64 and float64, in
all four byte orders side by side; values that look like measurements are
marked *, so the right type and order for the config can be read off.

--register is the 0-based protocol address: a datasheet's register 30001
is --table input --register 0, 40001 is --table holding --register 0.`, stderr)
	bf := addBusFlags(fs, time.Second)
	unit := fs.Int("unit", 1, "unit (slave) `id`")
	tableName := fs.String("table", "holding", "holding | input | coil | discrete")
	addr := fs.Int("register", 0, "first `address` (0-based)")
	count := fs.Int("count", 0, "registers or bits to read (default: what --type needs, else 4 registers or 8 bits)")
	typeName := fs.String("type", "", "decode as int16 | uint16 | int32 | uint32 | float32 | int64 | uint64 | float64 | string")
	orderName := fs.String("order", "ABCD", "byte order with --type: ABCD | CDAB | BADC | DCBA")
	decode := fs.Bool("decode", false, "show every decoding (the default without --type)")
	if code := parse(fs, args, 0); code >= 0 {
		return code
	}
	table, err := modbus.ParseTable(*tableName)
	if err != nil {
		return usageError(fs, "--table", err)
	}
	order, err := modbus.ParseOrder(*orderName)
	if err != nil {
		return usageError(fs, "--order", err)
	}
	var typ modbus.Type
	typed := *typeName != "" && !*decode
	if typed {
		if typ, err = modbus.ParseType(*typeName); err != nil {
			return usageError(fs, "--type", err)
		}
		if table.Bits() {
			return usageError(fs, "--type", fmt.Errorf("a %s read is bits; leave --type out", table))
		}
	}
	n := *count
	switch {
	case n > 0:
	case table.Bits():
		n = 8
	case typed && typ == modbus.String:
		n = 8
	case typed:
		n = typ.Words(0)
	default:
		n = 4
	}
	if typed && typ != modbus.String && n%typ.Words(0) != 0 {
		return usageError(fs, "--count", fmt.Errorf("%d registers are not a whole number of %s values (%d registers each)", n, typ, typ.Words(0)))
	}
	if *unit < 0 || *unit > 255 || *addr < 0 || *addr > 65535 || n > 65536 {
		return usageError(fs, "--unit, --register, --count", fmt.Errorf("unit %d, register %d, count %d: out of range", *unit, *addr, n))
	}
	c, bus, code := bf.client(stderr)
	if c == nil {
		return code
	}
	defer c.Close()
	regs, bits, err := c.Read(uint8(*unit), table, uint16(*addr), uint16(n))
	if err != nil {
		return failure(stderr, "edged modbus read", c, err)
	}
	fmt.Fprintf(stdout, "unit %d on %s, %s %d..%d\n\n", *unit, describeBus(c, bus), table.Plural(), *addr, *addr+n-1)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	switch {
	case table.Bits():
		fmt.Fprintln(tw, "address\tvalue")
		for i, b := range bits {
			fmt.Fprintf(tw, "%d\t%v\n", *addr+i, b)
		}
	case typed:
		printTyped(tw, uint16(*addr), regs, typ, order)
	default:
		printDecodings(tw, uint16(*addr), regs)
	}
	return exitOK
}

// usageError reports a flag whose value is wrong.
func usageError(fs *flag.FlagSet, name string, err error) int {
	fmt.Fprintf(fs.Output(), "%s: %s: %v\n", fs.Name(), name, err)
	return exitUsage
}

// printTyped prints one row per value of type typ.
func printTyped(w io.Writer, start uint16, regs []byte, typ modbus.Type, order modbus.Order) {
	fmt.Fprintf(w, "address\tregisters\t%s %s\n", typ, order)
	step := typ.Words(0)
	if typ == modbus.String {
		step = len(regs) / 2
	}
	for i := 0; i+step <= len(regs)/2; i += step {
		wire := regs[2*i : 2*(i+step)]
		v, err := modbus.Decode(typ, order, wire, step)
		s := modbus.FormatValue(v)
		if err != nil {
			s = err.Error()
		}
		fmt.Fprintf(w, "%d\t%s\t%s\n", int(start)+i, hexWords(wire), s)
	}
}

// printDecodings prints the registers, then every reading of them.
func printDecodings(w *tabwriter.Writer, start uint16, regs []byte) {
	readings := modbus.Interpret(start, regs)
	fmt.Fprintln(w, "address\thex\tuint16\tint16")
	for _, r := range readings {
		if r.Type != modbus.Uint16 {
			continue
		}
		i := int(r.Address - start)
		fmt.Fprintf(w, "%d\t%s\t%d\t%d\n", r.Address, hexWords(regs[2*i:2*i+2]), r.Value, int16(r.Value.(uint64)))
	}
	type key struct {
		addr uint16
		typ  modbus.Type
	}
	var rows []key
	cells := map[key]map[modbus.Order]modbus.Reading{}
	for _, r := range readings {
		if r.Type.Words(0) < 2 {
			continue
		}
		k := key{r.Address, r.Type}
		if cells[k] == nil {
			cells[k] = map[modbus.Order]modbus.Reading{}
			rows = append(rows, k)
		}
		cells[k][r.Order] = r
	}
	if len(rows) == 0 {
		return
	}
	w.Flush() // the registers' columns are their own
	fmt.Fprintln(w)
	fmt.Fprintln(w, "address\ttype\tABCD\tCDAB\tBADC\tDCBA")
	for _, k := range rows {
		row := []string{fmt.Sprint(k.addr), k.typ.String()}
		for _, o := range []modbus.Order{modbus.ABCD, modbus.CDAB, modbus.BADC, modbus.DCBA} {
			r := cells[k][o]
			mark := ""
			if r.Plausible {
				mark = " *"
			}
			row = append(row, modbus.FormatValue(r.Value)+mark)
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	w.Flush()
	fmt.Fprintln(w, "\n* looks like a measurement (a float between 0.001 and 10 million, an integer from 1 to a million):\n  the config's type and order are the row and column of the value the device's display shows.")
}

func hexWords(wire []byte) string {
	var b strings.Builder
	for i := 0; i+1 < len(wire); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%02X%02X", wire[i], wire[i+1])
	}
	return b.String()
}

func cmdModbusWrite(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("modbus write", "[bus options] --unit N --table holding|coil --register A [--type T] [--order O] VALUE", `
Write VALUE to a holding register (or several, for a 32- or 64-bit type)
or a coil, then read it back and print what the device holds. VALUE is a
number, true/false/on/off for a coil, or text for --type string. Put --
before a negative VALUE: -- -5.`, stderr)
	bf := addBusFlags(fs, time.Second)
	unit := fs.Int("unit", 1, "unit (slave) `id`")
	tableName := fs.String("table", "holding", "holding | coil")
	addr := fs.Int("register", 0, "`address` (0-based)")
	typeName := fs.String("type", "", "uint16 (default for holding) | int16 | int32 | uint32 | float32 | int64 | uint64 | float64 | string")
	orderName := fs.String("order", "ABCD", "byte order: ABCD | CDAB | BADC | DCBA")
	scale := fs.Float64("scale", 1, "the point's scale: the register gets VALUE / scale")
	if code := parse(fs, args, 1); code >= 0 {
		return code
	}
	value := fs.Arg(0)
	pc := config.Point{Name: "value", Table: strings.ToLower(*tableName), Address: *addr, Type: strings.ToLower(*typeName),
		Order: strings.ToUpper(*orderName), Writable: true}
	switch {
	case pc.Type == "" && pc.Table != "coil": // a coil's type is config's default, bool
		pc.Type = "uint16"
	case pc.Type == "string":
		pc.Length = (len(value) + 1) / 2
	}
	if *scale != 1 {
		pc.Scale = scale
	}
	if *unit < 0 || *unit > 255 {
		return usageError(fs, "--unit", fmt.Errorf("%d is not 0..255", *unit))
	}
	c, bus, code := bf.client(stderr)
	if c == nil {
		return code
	}
	defer c.Close()
	if err := config.CheckPoint(&pc); err != nil {
		// The rules of a writable point in the config, named by its keys.
		fmt.Fprintf(stderr, "edged modbus write: %v\n", err)
		return exitError
	}
	got, err := c.Write(uint8(*unit), pc, value)
	if err != nil {
		return failure(stderr, "edged modbus write", c, err)
	}
	what := "holding register"
	if pc.Table == "coil" {
		what = "coil"
	}
	fmt.Fprintf(stdout, "unit %d on %s: wrote %s to %s %d; it reads back %s\n",
		*unit, describeBus(c, bus), strconv.Quote(value), what, *addr, modbus.FormatValue(got))
	return exitOK
}

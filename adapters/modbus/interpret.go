package modbus

import (
	"fmt"
	"math"
	"strings"
)

// Reading is one way to read registers: a type and byte order applied to
// the registers from Address. Plausible marks a value that looks like a
// measurement, a guess to help pick the right type and order out of many.
type Reading struct {
	Address   uint16
	Type      Type
	Order     Order
	Value     any // int64, uint64 or float64
	Plausible bool
}

// Interpret reads the registers (wire bytes, 2 per register, starting at
// address start) every way a point could: each register as int16 and
// uint16, each pair as int32, uint32 and float32, each quad as int64,
// uint64 and float64, the wider ones in all four byte orders. It is what
// `edged modbus read` shows when the type is not known yet.
func Interpret(start uint16, regs []byte) []Reading {
	var out []Reading
	n := len(regs) / 2
	for _, typ := range []Type{Int16, Uint16, Int32, Uint32, Float32, Int64, Uint64, Float64} {
		w := typ.words(0)
		orders := []Order{ABCD, CDAB, BADC, DCBA}
		if w == 1 {
			orders = []Order{ABCD}
		}
		for i := 0; i+w <= n; i++ {
			for _, o := range orders {
				v, err := decodeRegisters(typ, o, -1, regs[2*i:2*(i+w)], 0)
				if err != nil {
					continue
				}
				out = append(out, Reading{Address: start + uint16(i), Type: typ, Order: o, Value: v, Plausible: plausible(v)})
			}
		}
	}
	return out
}

// plausible guesses whether a decoded value is a measurement rather than
// the bytes of one read the wrong way: a float between 0.001 and 10
// million in size, an integer from 1 to a million in size. A float32 read
// in the wrong order is typically 1e-38 or 1e+22; an integer read in the
// wrong word order is 65536 times too large. Zero reads the same in every
// order and says nothing, so it is not marked.
func plausible(v any) bool {
	switch x := v.(type) {
	case float64:
		a := math.Abs(x)
		return a >= 1e-3 && a < 1e7
	case int64:
		return x != 0 && x > -1e6 && x < 1e6
	case uint64:
		return x != 0 && x < 1e6
	}
	return false
}

// Decode reads one value of type typ in byte order o from the wire bytes
// of a register read (typ.Words(length) registers), as a point would be
// read without scale: float32 as its shortest round-trip decimal, integers
// exact, strings without their padding.
func Decode(typ Type, o Order, wire []byte, length int) (any, error) {
	return decodeRegisters(typ, o, -1, wire, length)
}

// Words is how many registers a value of type t takes (strings: length).
func (t Type) Words(length int) int { return t.words(length) }

// Bits reports whether a table holds bits (coils, discrete inputs)
// rather than registers.
func (t Table) Bits() bool { return t.isBits() }

// Plural names what a read of the table returns: "input registers".
func (t Table) Plural() string { return t.plural() }

// ParseTable reads a table name: holding, input, coil or discrete.
func ParseTable(s string) (Table, error) { return parseTable(strings.ToLower(s)) }

// ParseType reads a point type name: int16, float32 ...
func ParseType(s string) (Type, error) { return parseType(strings.ToLower(s)) }

// ParseOrder reads a byte order: ABCD (also ""), CDAB, BADC or DCBA.
func ParseOrder(s string) (Order, error) { return parseOrder(s) }

// FormatValue writes a decoded value as edged publishes it in a bare
// payload: integers exact, floats as their shortest decimal.
func FormatValue(v any) string {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
	case string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprint(v)
}

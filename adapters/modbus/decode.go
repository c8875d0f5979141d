package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Table is one of the four Modbus data tables.
type Table uint8

// The four tables, named as in the config.
const (
	Holding Table = iota
	Input
	Coil
	Discrete
)

func (t Table) String() string {
	switch t {
	case Holding:
		return "holding"
	case Input:
		return "input"
	case Coil:
		return "coil"
	case Discrete:
		return "discrete"
	}
	return fmt.Sprintf("table(%d)", uint8(t))
}

// plural names what a read of the table returns, for errors and logs:
// "read input registers 0..9".
func (t Table) plural() string {
	switch t {
	case Holding:
		return "holding registers"
	case Input:
		return "input registers"
	case Coil:
		return "coils"
	case Discrete:
		return "discrete inputs"
	}
	return t.String()
}

// isBits reports whether the table holds single bits rather than 16-bit registers.
func (t Table) isBits() bool { return t == Coil || t == Discrete }

func parseTable(s string) (Table, error) {
	switch s {
	case "holding":
		return Holding, nil
	case "input":
		return Input, nil
	case "coil":
		return Coil, nil
	case "discrete":
		return Discrete, nil
	}
	return 0, fmt.Errorf("table %q is not one of holding, input, coil, discrete", s)
}

// Type is the data type a point's registers hold.
type Type uint8

// The point types of the config's `type` key.
const (
	Bool Type = iota
	Int16
	Uint16
	Int32
	Uint32
	Int64
	Uint64
	Float32
	Float64
	String
)

var typeNames = [...]string{"bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

func parseType(s string) (Type, error) {
	for i, n := range typeNames {
		if s == n {
			return Type(i), nil
		}
	}
	return 0, fmt.Errorf("type %q is not one of %s", s, strings.Join(typeNames[:], ", "))
}

// words is the number of 16-bit registers a value of type t occupies
// (strings: length registers; bool: 1, the register a bit is taken from).
func (t Type) words(length int) int {
	switch t {
	case Int32, Uint32, Float32:
		return 2
	case Int64, Uint64, Float64:
		return 4
	case String:
		return length
	}
	return 1
}

func (t Type) isInt() bool {
	switch t {
	case Int16, Int32, Int64, Uint16, Uint32, Uint64:
		return true
	}
	return false
}

func (t Type) isSigned() bool { return t == Int16 || t == Int32 || t == Int64 }

// Order is the byte and word order of a multi-register value. The letters
// name the bytes of a 32-bit value as they arrive on the wire, A being the
// most significant: ABCD is big-endian, CDAB has the low word first, BADC
// swaps the bytes inside each register and DCBA is little-endian. For 64-bit
// values the same rule extends to four registers (CDAB reverses all four
// words); for strings only the byte swap (BADC, DCBA) is meaningful.
type Order uint8

// The four orders of the config's `order` key.
const (
	ABCD Order = iota
	CDAB
	BADC
	DCBA
)

var orderNames = [...]string{"ABCD", "CDAB", "BADC", "DCBA"}

func (o Order) String() string {
	if int(o) < len(orderNames) {
		return orderNames[o]
	}
	return fmt.Sprintf("order(%d)", uint8(o))
}

func parseOrder(s string) (Order, error) {
	for i, n := range orderNames {
		if strings.EqualFold(s, n) {
			return Order(i), nil
		}
	}
	return 0, fmt.Errorf("order %q is not one of ABCD, CDAB, BADC, DCBA", s)
}

func (o Order) swapsBytes() bool    { return o == BADC || o == DCBA }
func (o Order) reversesWords() bool { return o == CDAB || o == DCBA }

// toBigEndian turns the wire bytes of one value (2 bytes per register) into
// big-endian order. The input is not modified. It is its own inverse, so
// encoding uses it too.
func (o Order) toBigEndian(wire []byte) []byte {
	out := make([]byte, len(wire))
	n := len(wire) / 2
	for i := 0; i < n; i++ {
		src := i
		if o.reversesWords() {
			src = n - 1 - i
		}
		hi, lo := wire[2*src], wire[2*src+1]
		if o.swapsBytes() {
			hi, lo = lo, hi
		}
		out[2*i], out[2*i+1] = hi, lo
	}
	return out
}

// errShort is returned when a response holds fewer bytes than a point needs;
// a well-behaved device never causes it, a confused one must not panic us.
var errShort = errors.New("response too short for the point")

// decodeRegisters turns the wire bytes of one point into its raw value:
// bool, int64, uint64, float64 or string. bit >= 0 selects one bit of the
// first register for bool points.
func decodeRegisters(typ Type, order Order, bit int, wire []byte, length int) (any, error) {
	need := 2 * typ.words(length)
	if len(wire) < need || need == 0 {
		return nil, errShort
	}
	wire = wire[:need]
	if typ == String {
		b := wire
		if order.swapsBytes() {
			b = BADC.toBigEndian(wire)
		}
		// Devices pad with NULs or spaces; a NUL ends the string.
		if i := strings.IndexByte(string(b), 0); i >= 0 {
			b = b[:i]
		}
		return strings.TrimRight(strings.ToValidUTF8(string(b), "\uFFFD"), " "), nil
	}
	be := order.toBigEndian(wire)
	switch typ {
	case Bool:
		if bit < 0 || bit > 15 {
			return nil, fmt.Errorf("bool from a register needs bit 0..15, have %d", bit)
		}
		return binary.BigEndian.Uint16(be)&(1<<uint(bit)) != 0, nil
	case Int16:
		return int64(int16(binary.BigEndian.Uint16(be))), nil
	case Uint16:
		return uint64(binary.BigEndian.Uint16(be)), nil
	case Int32:
		return int64(int32(binary.BigEndian.Uint32(be))), nil
	case Uint32:
		return uint64(binary.BigEndian.Uint32(be)), nil
	case Int64:
		return int64(binary.BigEndian.Uint64(be)), nil
	case Uint64:
		return binary.BigEndian.Uint64(be), nil
	case Float32:
		return float32Value(math.Float32frombits(binary.BigEndian.Uint32(be))), nil
	case Float64:
		return math.Float64frombits(binary.BigEndian.Uint64(be)), nil
	}
	return nil, fmt.Errorf("cannot decode type %v from registers", typ)
}

// applyScale turns a raw value into the published one: value = raw*scale +
// offset. Integers stay integers when the scale is 1 and the offset 0, so a
// 64-bit counter keeps every digit; otherwise the result is a float64.
func applyScale(raw any, scale, offset float64) any {
	if scale == 1 && offset == 0 {
		return raw
	}
	switch v := raw.(type) {
	case int64:
		return tidy(float64(v)*scale + offset)
	case uint64:
		return tidy(float64(v)*scale + offset)
	case float64:
		return tidy(v*scale + offset)
	}
	return raw // bool and string are not scaled
}

// float32Value widens a float32 register to the float64 with the same
// shortest decimal, so 228.8575 is published as 228.8575 and not as
// 228.85751342773438, a precision the device never had.
func float32Value(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}

// tidy drops the binary noise scaling adds (2351 × 0.1 = 235.10000000000002)
// by keeping 15 significant digits, all a float64 carries reliably.
func tidy(v float64) float64 {
	t, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 15, 64), 64)
	if err != nil {
		return v
	}
	return t
}

// round keeps decimals decimals of a float64 value; integers, bools and
// strings are returned as they are.
func round(v any, decimals int) any {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return v
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(f, 'f', decimals, 64), 64)
	if err != nil {
		return v
	}
	return r
}

// decodePoint decodes and scales the value of p from the bytes of a read that
// started at register start (for bit tables, from the bools starting at start).
func decodePoint(p *point, start uint16, regs []byte, bits []bool) (any, error) {
	off := int(p.addr) - int(start)
	if off < 0 {
		return nil, errShort
	}
	if p.table.isBits() {
		if off >= len(bits) {
			return nil, errShort
		}
		return bits[off], nil
	}
	if 2*off > len(regs) {
		return nil, errShort
	}
	raw, err := decodeRegisters(p.typ, p.order, p.bit, regs[2*off:], p.length)
	if err != nil {
		return nil, err
	}
	v := applyScale(raw, p.scale, p.offset)
	if p.rounds {
		v = round(v, p.decimals)
	}
	return v, nil
}

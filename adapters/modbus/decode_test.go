package modbus

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"

	"github.com/edged/edged/config"
)

// words builds wire bytes from register values, as they arrive.
func words(w ...uint16) []byte {
	b := make([]byte, 2*len(w))
	for i, v := range w {
		binary.BigEndian.PutUint16(b[2*i:], v)
	}
	return b
}

func TestDecodeRegisters(t *testing.T) {
	negZero := math.Copysign(0, -1)
	cases := []struct {
		name   string
		typ    Type
		order  Order
		bit    int
		length int
		wire   []byte
		want   any
	}{
		{"int16 minimum", Int16, ABCD, -1, 0, words(0x8000), int64(math.MinInt16)},
		{"int16 maximum", Int16, ABCD, -1, 0, words(0x7fff), int64(math.MaxInt16)},
		{"int16 minus one", Int16, ABCD, -1, 0, words(0xffff), int64(-1)},
		{"uint16 maximum", Uint16, ABCD, -1, 0, words(0xffff), uint64(math.MaxUint16)},
		{"uint16 byte-swapped with BADC", Uint16, BADC, -1, 0, words(0x3412), uint64(0x1234)},
		{"int32 minimum big-endian", Int32, ABCD, -1, 0, words(0x8000, 0x0000), int64(math.MinInt32)},
		{"int32 minus two low word first", Int32, CDAB, -1, 0, words(0xfffe, 0xffff), int64(-2)},
		{"uint32 maximum", Uint32, ABCD, -1, 0, words(0xffff, 0xffff), uint64(math.MaxUint32)},
		{"uint32 in ABCD", Uint32, ABCD, -1, 0, words(0x1234, 0x5678), uint64(0x12345678)},
		{"uint32 in CDAB", Uint32, CDAB, -1, 0, words(0x5678, 0x1234), uint64(0x12345678)},
		{"uint32 in BADC", Uint32, BADC, -1, 0, words(0x3412, 0x7856), uint64(0x12345678)},
		{"uint32 in DCBA", Uint32, DCBA, -1, 0, words(0x7856, 0x3412), uint64(0x12345678)},
		{"int64 minimum", Int64, ABCD, -1, 0, words(0x8000, 0, 0, 0), int64(math.MinInt64)},
		{"int64 maximum in DCBA", Int64, DCBA, -1, 0, words(0xffff, 0xffff, 0xffff, 0xff7f), int64(math.MaxInt64)},
		{"uint64 maximum", Uint64, ABCD, -1, 0, words(0xffff, 0xffff, 0xffff, 0xffff), uint64(math.MaxUint64)},
		{"uint64 in CDAB reverses all four words", Uint64, CDAB, -1, 0, words(0x7788, 0x5566, 0x3344, 0x1122), uint64(0x1122334455667788)},
		{"uint64 in BADC", Uint64, BADC, -1, 0, words(0x2211, 0x4433, 0x6655, 0x8877), uint64(0x1122334455667788)},
		{"float32 230.5 big-endian", Float32, ABCD, -1, 0, words(0x4366, 0x8000), 230.5},
		{"float32 230.5 low word first", Float32, CDAB, -1, 0, words(0x8000, 0x4366), 230.5},
		{"float32 negative zero", Float32, ABCD, -1, 0, words(0x8000, 0x0000), negZero},
		{"float32 infinity", Float32, ABCD, -1, 0, words(0x7f80, 0x0000), math.Inf(1)},
		{"float32 largest", Float32, ABCD, -1, 0, words(0x7f7f, 0xffff), 3.4028235e+38}, // the shortest decimal of the float32, not its binary widening
		{"float32 smallest subnormal", Float32, ABCD, -1, 0, words(0x0000, 0x0001), 1e-45},
		{"float64 one in DCBA", Float64, DCBA, -1, 0, words(0, 0, 0, 0xf03f), 1.0},
		{"float64 negative infinity", Float64, ABCD, -1, 0, words(0xfff0, 0, 0, 0), math.Inf(-1)},
		{"bool from bit 0", Bool, ABCD, 0, 0, words(0x0001), true},
		{"bool from bit 15", Bool, ABCD, 15, 0, words(0x8000), true},
		{"bool from a clear bit", Bool, ABCD, 3, 0, words(0xfff7), false},
		{"string padded with NUL", String, ABCD, -1, 3, words(0x6564, 0x6765, 0x6400), "edged"},
		{"string of odd length padded with a space", String, ABCD, -1, 2, words(0x6162, 0x6320), "abc"},
		{"string byte-swapped with BADC", String, BADC, -1, 2, words(0x6261, 0x6463), "abcd"},
		{"string of NULs is empty", String, ABCD, -1, 2, words(0, 0), ""},
		{"string stops at the first NUL", String, ABCD, -1, 2, words(0x6100, 0x6263), "a"},
		{"invalid UTF-8 becomes the replacement character", String, ABCD, -1, 1, words(0xff41), "\uFFFDA"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeRegisters(c.typ, c.order, c.bit, c.wire, c.length)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if f, ok := c.want.(float64); ok {
				g, ok := got.(float64)
				if !ok || math.Float64bits(g) != math.Float64bits(f) {
					t.Fatalf("got %#v, want %#v", got, c.want)
				}
				return
			}
			if got != c.want {
				t.Fatalf("got %#v (%T), want %#v (%T)", got, got, c.want, c.want)
			}
		})
	}
}

func TestDecodeFloatNaNStaysNaN(t *testing.T) {
	for _, c := range []struct {
		name string
		typ  Type
		wire []byte
	}{
		{"a float32 quiet NaN", Float32, words(0x7fc0, 0)},
		{"a float64 NaN", Float64, words(0x7ff8, 0, 0, 1)},
	} {
		t.Run(c.name+" decodes as NaN", func(t *testing.T) {
			got, err := decodeRegisters(c.typ, ABCD, -1, c.wire, 0)
			if err != nil {
				t.Fatal(err)
			}
			if f, ok := got.(float64); !ok || !math.IsNaN(f) {
				t.Fatalf("got %#v, want NaN", got)
			}
		})
	}
}

func TestDecodeRefusesShortInput(t *testing.T) {
	for _, c := range []struct {
		name string
		typ  Type
		wire []byte
	}{
		{"an int32 from one register", Int32, words(1)},
		{"a float64 from three registers", Float64, words(1, 2, 3)},
		{"an int16 from one byte", Int16, []byte{1}},
		{"anything from nothing", Uint16, nil},
	} {
		t.Run(c.name+" is an error, not a panic", func(t *testing.T) {
			if _, err := decodeRegisters(c.typ, ABCD, -1, c.wire, 0); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestScaleAndOffset(t *testing.T) {
	cases := []struct {
		name          string
		raw           any
		scale, offset float64
		want          any
	}{
		{"an integer without scale stays an exact integer", uint64(math.MaxUint64), 1, 0, uint64(math.MaxUint64)},
		{"a scaled integer becomes a float", int64(-205), 0.1, 0, -20.5},
		{"an offset is added after the scale", uint64(100), 0.5, -10, 40.0},
		{"a float is scaled", 2.0, 1000, 0, 2000.0},
		{"a bool is never scaled", true, 10, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := applyScale(c.raw, c.scale, c.offset)
			if f, ok := c.want.(float64); ok {
				if g, ok := got.(float64); !ok || math.Abs(g-f) > 1e-9 {
					t.Fatalf("got %#v, want %#v", got, c.want)
				}
				return
			}
			if got != c.want {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestDecodePointAtItsOffsetInAMergedRead(t *testing.T) {
	p := &point{table: Holding, addr: 12, typ: Float32, bit: -1, scale: 1}
	regs := words(0, 0, 0x4366, 0x8000) // read started at 10
	got, err := decodePoint(p, 10, regs, nil)
	if err != nil || got != 230.5 {
		t.Fatalf("got %v, %v; want 230.5", got, err)
	}
	if _, err := decodePoint(p, 13, regs, nil); err == nil {
		t.Fatal("a point before the start of its read must be an error")
	}
	c := &point{table: Coil, addr: 3, typ: Bool, bit: -1, scale: 1}
	if v, err := decodePoint(c, 0, nil, []bool{false, false, false, true}); err != nil || v != true {
		t.Fatalf("coil 3: got %v, %v", v, err)
	}
	if _, err := decodePoint(c, 0, nil, []bool{true}); err == nil {
		t.Fatal("a coil past the answer must be an error")
	}
}

// FuzzDecode feeds arbitrary register bytes to every type and order: no
// input may panic, and an integer decoded without scale must re-encode to
// the same registers.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x43, 0x66, 0x80, 0x00}, uint8(Float32), uint8(ABCD), uint8(0), uint8(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(Int64), uint8(DCBA), uint8(0), uint8(0))
	f.Add([]byte{0x7f, 0xc0, 0, 0}, uint8(Float32), uint8(CDAB), uint8(0), uint8(0))
	f.Add([]byte("edged\x00"), uint8(String), uint8(BADC), uint8(0), uint8(3))
	f.Add([]byte{0x80, 0x00}, uint8(Bool), uint8(ABCD), uint8(15), uint8(0))
	f.Add([]byte{0x12}, uint8(Uint32), uint8(BADC), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, wire []byte, typ, order, bit, length uint8) {
		ty := Type(typ % uint8(len(typeNames)))
		o := Order(order % 4)
		b := int(bit%20) - 2
		n := int(length % 130)
		v, err := decodeRegisters(ty, o, b, wire, n)
		if err != nil || !ty.isInt() {
			return
		}
		p := &point{typ: ty, order: o, bit: -1, scale: 1, length: n}
		var num string
		switch x := v.(type) {
		case int64:
			num = formatInt(x)
		case uint64:
			num = formatUint(x)
		}
		w, err := encodeValue(p, jsonNumber(num))
		if err != nil {
			t.Fatalf("%v decoded from % x does not encode back: %v", v, wire, err)
		}
		back := words(w...)
		if string(back) != string(wire[:len(back)]) {
			t.Fatalf("%s %s: % x -> %v -> % x", ty, o, wire[:len(back)], v, back)
		}
	})
}

func TestValuesArePublishedAsPeopleReadThem(t *testing.T) {
	f32 := func(v float32) []byte { return be32(math.Float32bits(v)) }
	cases := []struct {
		name string
		pc   config.Point
		regs []byte
		want string // the JSON value published
	}{
		{"a float32 is its shortest round-trip decimal", config.Point{Type: "float32"}, f32(0.9325), "0.9325"},
		{"a float32 voltage keeps the digits the meter sent", config.Point{Type: "float32"}, f32(228.8575), "228.8575"},
		{"scale 0.01 gives hundredths", config.Point{Type: "uint32", Scale: ptr(0.01)}, be32(12345), "123.45"},
		{"scale 0.1 gives tenths of a negative value", config.Point{Type: "int16", Scale: ptr(0.1)}, be16(uint16(0xFF33)), "-20.5"},
		{"a scaled float32 is rounded to the scale's decimals", config.Point{Type: "float32", Scale: ptr(0.001)}, f32(12345.678), "12.346"},
		{"the offset's decimals count too", config.Point{Type: "uint16", Scale: ptr(0.5), Offset: -40.25}, be16(101), "10.25"},
		{"precision overrides the scale", config.Point{Type: "uint16", Scale: ptr(0.1), Precision: ptr(0)}, be16(2356), "236"},
		{"precision rounds an unscaled float", config.Point{Type: "float32", Precision: ptr(1)}, f32(229.87654), "229.9"},
		{"precision leaves an integer exact", config.Point{Type: "uint64", Precision: ptr(2)}, be64(18000000000000000000), "18000000000000000000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.pc.Name, c.pc.Table = "v", "holding"
			if err := config.CheckPoint(&c.pc); err != nil {
				t.Fatal(err)
			}
			p, err := newPoint(c.pc)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodePoint(p, 0, c.regs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(got); string(b) != c.want {
				t.Fatalf("published %s, want %s", b, c.want)
			}
		})
	}
}

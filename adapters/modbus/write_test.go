package modbus

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestParseSetPayload(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		want    any
		err     string
	}{
		{"a bare number", "42", json.Number("42"), ""},
		{"a number with spaces around it", " 42.5\n", json.Number("42.5"), ""},
		{"true", "true", true, ""},
		{"an object with a value", `{"value": -7}`, json.Number("-7"), ""},
		{"an object with a bool", `{"value": false}`, false, ""},
		{"a JSON string", `"hello"`, "hello", ""},
		{"bare text for a string point", "hello world", "hello world", ""},
		{"a 64-bit integer keeps every digit", "18446744073709551615", json.Number("18446744073709551615"), ""},
		{"an empty payload", "", nil, "empty payload"},
		{"an object without value", `{"v": 1}`, nil, "without \"value\""},
		{"broken JSON", `{"value": `, nil, "unparsable"},
		{"an array", `[1,2]`, nil, "cannot write"},
		{"null", `null`, nil, "cannot write"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseSetPayload([]byte(c.payload))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %#v, %v; want %#v", got, err, c.want)
			}
		})
	}
}

func TestEncodeValue(t *testing.T) {
	p := func(typ Type, order Order, scale, offset float64) *point {
		return &point{typ: typ, order: order, bit: -1, scale: scale, offset: offset, length: 3}
	}
	cases := []struct {
		name string
		p    *point
		v    any
		want []uint16
		err  string
	}{
		{"a uint16 as is", p(Uint16, ABCD, 1, 0), json.Number("65535"), []uint16{0xffff}, ""},
		{"a uint16 past its range", p(Uint16, ABCD, 1, 0), json.Number("65536"), nil, "out of range"},
		{"a negative uint16", p(Uint16, ABCD, 1, 0), json.Number("-1"), nil, "out of range"},
		{"an int16 at its minimum", p(Int16, ABCD, 1, 0), json.Number("-32768"), []uint16{0x8000}, ""},
		{"an int16 below its minimum", p(Int16, ABCD, 1, 0), json.Number("-32769"), nil, "out of range"},
		{"a scaled value is divided by the scale", p(Uint16, ABCD, 0.1, 0), json.Number("23.4"), []uint16{234}, ""},
		{"the offset is taken off first", p(Int16, ABCD, 0.5, -10), json.Number("40"), []uint16{100}, ""},
		{"a scaled value past the range", p(Uint16, ABCD, 0.1, 0), json.Number("6553.6"), nil, "out of range"},
		{"an int32 low word first", p(Int32, CDAB, 1, 0), json.Number("-2"), []uint16{0xfffe, 0xffff}, ""},
		{"a uint32 byte-swapped", p(Uint32, BADC, 1, 0), json.Number("305419896"), []uint16{0x3412, 0x7856}, ""},
		{"a uint64 maximum exactly", p(Uint64, ABCD, 1, 0), json.Number("18446744073709551615"), []uint16{0xffff, 0xffff, 0xffff, 0xffff}, ""},
		{"a uint64 past its range", p(Uint64, ABCD, 1, 0), json.Number("18446744073709551616"), nil, "out of range"},
		{"an int64 minimum exactly", p(Int64, DCBA, 1, 0), json.Number("-9223372036854775808"), []uint16{0, 0, 0, 0x0080}, ""},
		{"a float32", p(Float32, ABCD, 1, 0), json.Number("230.5"), []uint16{0x4366, 0x8000}, ""},
		{"a float32 too large", p(Float32, ABCD, 1, 0), json.Number("1e39"), nil, "out of range"},
		{"a float64 in DCBA", p(Float64, DCBA, 1, 0), json.Number("1"), []uint16{0, 0, 0, 0xf03f}, ""},
		{"a string padded with NUL", p(String, ABCD, 1, 0), "edged", []uint16{0x6564, 0x6765, 0x6400}, ""},
		{"a string too long", p(String, ABCD, 1, 0), "edged!!", nil, "does not fit"},
		{"a string to a number", p(Uint16, ABCD, 1, 0), "abc", nil, "not a finite number"},
		{"a bool to a number", p(Uint16, ABCD, 1, 0), true, nil, "not a number"},
		{"NaN text to a float", p(Float32, ABCD, 1, 0), "NaN", nil, "not a finite number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := encodeValue(c.p, c.v)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one containing %q (got %v)", err, c.err, got)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %04x, %v; want %04x", got, err, c.want)
			}
		})
	}
}

func TestWrittenValuesReadBackTheSame(t *testing.T) {
	for _, typ := range []Type{Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64} {
		for _, o := range []Order{ABCD, CDAB, BADC, DCBA} {
			t.Run(fmt.Sprintf("%s in %s", typ, o), func(t *testing.T) {
				p := &point{typ: typ, order: o, bit: -1, scale: 0.5, offset: 3}
				w, err := encodeValue(p, json.Number("103"))
				if err != nil {
					t.Fatal(err)
				}
				v, err := decodeRegisters(typ, o, -1, words(w...), 0)
				if err != nil {
					t.Fatal(err)
				}
				if got := applyScale(v, p.scale, p.offset); math.Abs(got.(float64)-103) > 1e-9 {
					t.Fatalf("wrote 103, read %v", got)
				}
			})
		}
	}
}

func TestAsBool(t *testing.T) {
	for _, c := range []struct {
		in   any
		want bool
		ok   bool
	}{
		{true, true, true}, {false, false, true}, {json.Number("1"), true, true}, {json.Number("0"), false, true},
		{"on", true, true}, {"OFF", false, true}, {json.Number("2"), false, false}, {"maybe", false, false},
	} {
		t.Run(fmt.Sprintf("%v is %v", c.in, c.want), func(t *testing.T) {
			got, err := asBool(c.in)
			if (err == nil) != c.ok || got != c.want {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

// FuzzSetPayload feeds arbitrary `/set` payloads through parsing and
// encoding for every type: nothing may panic.
func FuzzSetPayload(f *testing.F) {
	for _, s := range []string{"42", "true", `{"value": 1.5}`, `"text"`, "-9223372036854775809", "1e400", `{"value": {"value": 1}}`, "\xff\xfe"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, payload []byte, typ uint8) {
		v, err := parseSetPayload(payload)
		if err != nil {
			return
		}
		p := &point{typ: Type(typ % uint8(len(typeNames))), bit: -1, scale: 1, length: 2}
		if p.typ == Bool {
			_, _ = asBool(v)
			return
		}
		_, _ = encodeValue(p, v)
	})
}

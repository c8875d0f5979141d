package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// decoder fills a struct from the map the TOML parser produced, checking
// every key against the struct's toml tags and every value against the
// field's type. Unlike the parser's own struct decoding it does not stop at
// the first mismatch: each problem is recorded, the offending value is left
// at its zero value, and the walk goes on, so one run reports them all.
type decoder struct {
	errs []*Error
	file string
	ix   lineIndex
	set  map[string]bool // every key path present in the file
	bad  map[string]bool // paths whose value could not be used
}

func newDecoder(file string, ix lineIndex) *decoder {
	return &decoder{file: file, ix: ix, set: map[string]bool{}, bad: map[string]bool{}}
}

func (d *decoder) fail(path, format string, args ...any) {
	d.bad[path] = true
	d.errs = append(d.errs, &Error{File: d.file, Line: d.ix.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType    = reflect.TypeFor[Duration]()
	sizeType        = reflect.TypeFor[Size]()
	haEntityType    = reflect.TypeFor[HAEntity]()
)

// field is one toml key of a struct: the index path to reach it through
// embedded structs such as SerialPort.
type field struct {
	name  string
	index []int
}

// fieldsOf lists the toml keys of a struct type, flattening embedded
// structs without a tag and skipping fields tagged "-".
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			for _, sub := range fieldsOf(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		out = append(out, field{name: tag, index: []int{i}})
	}
	return out
}

// value decodes v into rv (settable) at path.
func (d *decoder) value(path string, v any, rv reflect.Value) {
	d.set[path] = true
	t := rv.Type()
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		d.text(path, v, rv)
		return
	}
	if t == haEntityType {
		d.haEntity(path, v, rv)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		nv := reflect.New(t.Elem())
		d.value(path, v, nv.Elem())
		if !d.bad[path] {
			rv.Set(nv)
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.fail(path, "expected a table, got %s", describe(v))
			return
		}
		d.table(path, m, rv)
	case reflect.Slice:
		var elems []any
		switch x := v.(type) {
		case []any:
			elems = x
		case []map[string]any:
			elems = make([]any, len(x))
			for i := range x {
				elems[i] = x[i]
			}
		case map[string]any:
			if t.Elem().Kind() == reflect.Struct {
				// [modbus] where [[modbus]] was meant.
				d.fail(path, "expected an array, got a table (write [[%s]] for each entry)", stripIndexes(path))
				return
			}
			d.fail(path, "expected an array, got a table")
			return
		default:
			d.fail(path, "expected an array, got %s", describe(v))
			return
		}
		s := reflect.MakeSlice(t, len(elems), len(elems))
		for i, e := range elems {
			d.value(index(path, i), e, s.Index(i))
		}
		rv.Set(s)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			d.fail(path, "expected a string, got %s", describe(v))
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			d.fail(path, "expected true or false, got %s", describe(v))
			return
		}
		rv.SetBool(b)
	case reflect.Int:
		n, ok := v.(int64)
		if !ok {
			d.fail(path, "expected an integer, got %s", describe(v))
			return
		}
		if strconv.IntSize == 32 && (n < math.MinInt32 || n > math.MaxInt32) {
			d.fail(path, "%d is too large", n)
			return
		}
		rv.SetInt(n)
	case reflect.Float64:
		switch x := v.(type) {
		case float64:
			rv.SetFloat(x)
		case int64:
			if x < -(1<<53-1) || x > 1<<53-1 {
				d.fail(path, "%d is too large to be exact as a number with a fraction", x)
				return
			}
			rv.SetFloat(float64(x))
		default:
			d.fail(path, "expected a number, got %s", describe(v))
		}
	default:
		// Only reachable if types.go grows a field kind this walker does
		// not know; say so instead of silently dropping the value.
		d.fail(path, "edged cannot decode a %s here (bug)", t)
	}
}

// haEntity decodes homeassistant = false (hidden), true (as it is) or a
// table of names.
func (d *decoder) haEntity(path string, v any, rv reflect.Value) {
	switch x := v.(type) {
	case bool:
		rv.Set(reflect.ValueOf(HAEntity{Hidden: !x}))
	case map[string]any:
		d.table(path, x, rv)
	default:
		d.fail(path, "expected false (hide it) or a table such as { name = \"Grid voltage\" }, got %s", describe(v))
	}
}

// text decodes the string forms of Duration and Size. A Size may also be a
// plain integer count of bytes.
func (d *decoder) text(path string, v any, rv reflect.Value) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case int64:
		if rv.Type() != sizeType {
			d.fail(path, "expected %s, got %s", textKind(rv.Type()), describe(v))
			return
		}
		s = strconv.FormatInt(x, 10)
	default:
		d.fail(path, "expected %s, got %s", textKind(rv.Type()), describe(v))
		return
	}
	u := rv.Addr().Interface().(encoding.TextUnmarshaler)
	if err := u.UnmarshalText([]byte(s)); err != nil {
		d.fail(path, "%s", err.Error())
	}
}

func textKind(t reflect.Type) string {
	switch t {
	case durationType:
		return `a duration string such as "5s"`
	case sizeType:
		return `a size such as "256MiB" or a number of bytes`
	}
	return "a string"
}

// table decodes a TOML table into a struct, reporting unknown keys.
func (d *decoder) table(path string, m map[string]any, rv reflect.Value) {
	fields := fieldsOf(rv.Type())
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := joinKey(path, k)
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == k })
		if i < 0 {
			d.set[p] = true
			d.unknown(p, k, fields)
			continue
		}
		d.value(p, m[k], rv.FieldByIndex(fields[i].index))
	}
}

func (d *decoder) unknown(path, key string, fields []field) {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	if s := suggest(key, names); s != "" {
		d.fail(path, "unknown key (did you mean %q?)", s)
		return
	}
	d.fail(path, "unknown key (known keys here: %s)", strings.Join(names, ", "))
}

// stripIndexes turns modbus[0].device into modbus.device, the header name
// of an array of tables.
func stripIndexes(path string) string {
	var b strings.Builder
	skip := false
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '[':
			skip = true
		case c == ']':
			skip = false
		case !skip:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// describe names a TOML value for an error message: its type, and the
// value itself when it is short.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if utf8.RuneCountInString(x) > 40 {
			return "a string"
		}
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case time.Time:
		return "a date/time"
	}
	return fmt.Sprintf("a %T", v)
}

// suggest returns the known key closest to a mistyped one, or "" when
// none is close enough to be a likely intent.
func suggest(key string, known []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	k := norm(key)
	best, bestD := "", math.MaxInt
	for _, c := range known {
		n := norm(c)
		if n == k {
			return c // case or dash: certainly meant
		}
		dist := editDistance(k, n)
		// A key that extends or abbreviates a known one (baudrate, addr)
		// is as likely as a typo.
		if len(k) >= 3 && len(n) >= 3 && (strings.HasPrefix(k, n) || strings.HasPrefix(n, k)) {
			dist = min(dist, 2)
		}
		// So does one that shares most of its start (max_regs).
		if cp := commonPrefix(k, n); cp >= 4 && 3*cp >= 2*len(k) {
			dist = min(dist, 2)
		}
		if dist < bestD {
			best, bestD = c, dist
		}
	}
	limit := max(1, min(len(k), len(norm(best)))/3)
	if bestD <= limit || bestD <= 2 && len(k) > 4 {
		return best
	}
	return ""
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the edit distance between two strings' bytes, counting
// a swap of neighbours (nmae) as one edit.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt / 2 // no real key is that long; skip the work
	}
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

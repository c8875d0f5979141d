package config

import (
	"strings"
	"unicode/utf8"
)

// The TOML decoder tells where a syntax error is but not where each key is.
// lineIndex reads the text once more, only for structure — table headers,
// keys, the elements of arrays — and records the line each key path first
// appears on. It runs on text the decoder has already accepted, but it is
// also fed arbitrary bytes by the fuzzer and must then neither panic nor
// loop: every step consumes input or returns.

// maxNesting bounds the recursion into nested arrays and inline tables.
const maxNesting = 64

// lineIndex maps key paths to 1-based lines.
type lineIndex map[string]int

// line returns the line of path, or of its nearest ancestor that appears in
// the file (a missing key is reported at its table), or 0.
func (ix lineIndex) line(path string) int {
	for _, p := range pathParents(path) {
		if n, ok := ix[p]; ok {
			return n
		}
	}
	return 0
}

type locator struct {
	src    string
	pos    int
	line   int
	index  lineIndex
	arrays map[string]int // array-of-tables path → elements seen so far
}

// indexLines builds the line index of a TOML document.
func indexLines(src string) lineIndex {
	l := &locator{src: src, line: 1, index: lineIndex{}, arrays: map[string]int{}}
	if len(src) >= 3 && src[:3] == "\uFEFF" {
		l.pos = 3 // a byte order mark is not a key
	}
	l.document()
	return l.index
}

func (l *locator) eof() bool { return l.pos >= len(l.src) }

func (l *locator) peek(off int) byte {
	if l.pos+off < len(l.src) {
		return l.src[l.pos+off]
	}
	return 0
}

func (l *locator) advance(n int) {
	for ; n > 0 && l.pos < len(l.src); n-- {
		if l.src[l.pos] == '\n' {
			l.line++
		}
		l.pos++
	}
}

func (l *locator) mark(path string, line int) {
	if _, ok := l.index[path]; !ok {
		l.index[path] = line
	}
}

// skipBlank skips spaces and tabs on the current line.
func (l *locator) skipBlank() {
	for !l.eof() && (l.src[l.pos] == ' ' || l.src[l.pos] == '\t') {
		l.pos++
	}
}

// skipLines skips whitespace, newlines and comments.
func (l *locator) skipLines() {
	for !l.eof() {
		switch l.src[l.pos] {
		case ' ', '\t', '\r', '\n':
			l.advance(1)
		case '#':
			l.skipToEOL()
		default:
			return
		}
	}
}

// skipToEOL consumes the rest of the line including its newline.
func (l *locator) skipToEOL() {
	for !l.eof() {
		c := l.src[l.pos]
		l.advance(1)
		if c == '\n' {
			return
		}
	}
}

func (l *locator) document() {
	table := ""
	for {
		l.skipLines()
		if l.eof() {
			return
		}
		line := l.line
		if l.src[l.pos] == '[' {
			double := l.peek(1) == '['
			if double {
				l.advance(2)
			} else {
				l.advance(1)
			}
			segs := l.key()
			table = l.header(segs, double, line)
			l.skipToEOL()
			continue
		}
		segs := l.key()
		if len(segs) == 0 {
			l.skipToEOL()
			continue
		}
		l.value(l.assign(table, segs, line), 0)
		l.skipToEOL()
	}
}

// assign steps over the "=" after a key, records the key's dotted parts
// under base at line and returns the key's full path.
func (l *locator) assign(base string, segs []string, line int) string {
	l.skipBlank()
	if l.peek(0) == '=' {
		l.advance(1)
	}
	l.skipBlank()
	p := base
	for _, s := range segs {
		p = joinKey(p, s)
		l.mark(p, line)
	}
	return p
}

// header resolves a [table] or [[array]] header to its path, counting the
// elements of arrays of tables so that [[modbus.device]] after the second
// [[modbus]] becomes modbus[1].device[n].
func (l *locator) header(segs []string, double bool, line int) string {
	p := ""
	for i, s := range segs {
		p = joinKey(p, s)
		l.mark(p, line)
		last := i == len(segs)-1
		if last && double {
			n := l.arrays[p]
			l.arrays[p] = n + 1
			p = index(p, n)
			l.mark(p, line)
			continue
		}
		if n := l.arrays[p]; n > 0 && !last {
			p = index(p, n-1)
			l.mark(p, line)
		}
	}
	return p
}

// key reads a possibly dotted key and returns its parts unquoted.
func (l *locator) key() []string {
	var segs []string
	for {
		l.skipBlank()
		if l.eof() {
			return segs
		}
		switch c := l.src[l.pos]; {
		case c == '"':
			l.advance(1)
			start := l.pos
			for !l.eof() && l.src[l.pos] != '"' && l.src[l.pos] != '\n' {
				if l.src[l.pos] == '\\' {
					l.pos++
				}
				l.pos++
			}
			end := min(l.pos, len(l.src))
			segs = append(segs, unescapeTOML(l.src[start:end]))
			if l.peek(0) == '"' {
				l.advance(1)
			}
		case c == '\'':
			l.advance(1)
			start := l.pos
			for !l.eof() && l.src[l.pos] != '\'' && l.src[l.pos] != '\n' {
				l.pos++
			}
			segs = append(segs, l.src[start:l.pos])
			if l.peek(0) == '\'' {
				l.advance(1)
			}
		case isBareByte(c):
			start := l.pos
			for !l.eof() && isBareByte(l.src[l.pos]) {
				l.pos++
			}
			segs = append(segs, l.src[start:l.pos])
		default:
			return segs
		}
		l.skipBlank()
		if l.peek(0) != '.' {
			return segs
		}
		l.advance(1)
	}
}

func isBareByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// value consumes one value, recording the keys of inline tables and the
// elements of arrays under path.
func (l *locator) value(path string, depth int) {
	if l.eof() {
		return
	}
	switch l.src[l.pos] {
	case '{':
		l.advance(1)
		l.inlineTable(path, depth)
	case '[':
		l.advance(1)
		l.array(path, depth)
	case '"':
		if l.peek(1) == '"' && l.peek(2) == '"' {
			l.advance(3)
			l.multiline('"')
			return
		}
		l.advance(1)
		for !l.eof() && l.src[l.pos] != '"' && l.src[l.pos] != '\n' {
			if l.src[l.pos] == '\\' && l.peek(1) != '\n' {
				l.advance(1)
			}
			l.advance(1)
		}
		if l.peek(0) == '"' {
			l.advance(1)
		}
	case '\'':
		if l.peek(1) == '\'' && l.peek(2) == '\'' {
			l.advance(3)
			l.multiline('\'')
			return
		}
		l.advance(1)
		for !l.eof() && l.src[l.pos] != '\'' && l.src[l.pos] != '\n' {
			l.advance(1)
		}
		if l.peek(0) == '\'' {
			l.advance(1)
		}
	default:
		// Numbers, booleans and dates: up to the next delimiter.
		for !l.eof() {
			switch l.src[l.pos] {
			case ',', ']', '}', '\n', '#':
				return
			}
			l.advance(1)
		}
	}
}

// multiline consumes a triple-quoted string (basic or literal) after its
// opening quotes. The closing quotes may be followed by up to two more quote
// characters that belong to the content.
func (l *locator) multiline(q byte) {
	for !l.eof() {
		c := l.src[l.pos]
		if c == '\\' && q == '"' {
			l.advance(2)
			continue
		}
		if c == q && l.peek(1) == q && l.peek(2) == q {
			l.advance(3)
			for extra := 0; extra < 2 && l.peek(0) == q; extra++ {
				l.advance(1)
			}
			return
		}
		l.advance(1)
	}
}

func (l *locator) inlineTable(path string, depth int) {
	for {
		l.skipLines()
		if l.eof() {
			return
		}
		switch l.src[l.pos] {
		case '}':
			l.advance(1)
			return
		case ',':
			l.advance(1)
			continue
		}
		line := l.line
		segs := l.key()
		if len(segs) == 0 {
			l.advance(1) // not a key: step over it
			continue
		}
		p := l.assign(path, segs, line)
		if depth < maxNesting {
			l.value(p, depth+1)
		}
	}
}

func (l *locator) array(path string, depth int) {
	for i := 0; ; {
		l.skipLines()
		if l.eof() {
			return
		}
		switch l.src[l.pos] {
		case ']':
			l.advance(1)
			return
		case ',':
			l.advance(1)
			continue
		}
		p := index(path, i)
		l.mark(p, l.line)
		before := l.pos
		if depth < maxNesting {
			l.value(p, depth+1)
		}
		if l.pos == before {
			l.advance(1)
		}
		i++
	}
}

// unescapeTOML decodes the escapes of a TOML basic string (used for quoted
// keys). Malformed escapes are kept as written: the decoder has already
// rejected them in real input.
func unescapeTOML(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			b = append(b, '\b')
		case 't':
			b = append(b, '\t')
		case 'n':
			b = append(b, '\n')
		case 'f':
			b = append(b, '\f')
		case 'r':
			b = append(b, '\r')
		case 'e':
			b = append(b, 0x1b)
		case '"', '\\':
			b = append(b, s[i])
		case 'x', 'u', 'U':
			n := hexDigits(s[i])
			if r, ok := hexRune(s, i+1, n); ok {
				b = utf8.AppendRune(b, r)
				i += n
			} else {
				b = append(b, '\\', s[i])
			}
		default:
			b = append(b, '\\', s[i])
		}
	}
	return string(b)
}

// hexDigits is how many hex digits follow \x, \u and \U.
func hexDigits(esc byte) int {
	switch esc {
	case 'x':
		return 2
	case 'u':
		return 4
	}
	return 8
}

func hexRune(s string, at, n int) (rune, bool) {
	if at+n > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[at : at+n]) {
		v, ok := hexVal(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

package config

import (
	"strconv"
	"strings"
)

// Key paths name a value the way a user reads the file:
// modbus[0].device[1].points[3].type. A key that is not a bare TOML key is
// quoted, so every path names exactly one place.

// isBareKey reports whether k can be written unquoted in TOML.
func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isBareByte(k[i]) {
			return false
		}
	}
	return true
}

// joinKey appends one key to a path.
func joinKey(prefix, key string) string {
	if !isBareKey(key) {
		key = strconv.Quote(key)
	}
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// index appends an array index to a path.
func index(prefix string, i int) string {
	return prefix + "[" + strconv.Itoa(i) + "]"
}

// pathParents returns the path and every ancestor of it, longest first:
// a.b[2].c gives a.b[2].c, a.b[2], a.b, a. It understands quoted keys as
// joinKey writes them; on anything else it stops early rather than guess.
func pathParents(p string) []string {
	var ends []int // where each component ends
	i := 0
	for i < len(p) {
		switch p[i] {
		case '.':
			i++
			continue
		case '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return reverse(p, ends)
			}
			i += j + 1
		case '"':
			j := i + 1
			for j < len(p) && p[j] != '"' {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(p) {
				return reverse(p, ends)
			}
			i = j + 1
		default:
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			i = j
		}
		ends = append(ends, i)
	}
	return reverse(p, ends)
}

func reverse(p string, ends []int) []string {
	out := make([]string, 0, len(ends))
	for k := len(ends) - 1; k >= 0; k-- {
		out = append(out, p[:ends[k]])
	}
	return out
}

package serialline

import (
	"fmt"
	"strconv"
)

// unescape turns the escapes users write in TOML single-quoted strings
// (`\r\n`, `\t`, `\x02`, `\\`, `\0`) into bytes. It stands in for the config
// package's own until that exists, and accepts the same escapes.
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("%q ends in a lone backslash (write \\\\ for one)", s)
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+3 > len(s) {
				return nil, fmt.Errorf("%q: \\x needs two hex digits", s)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("%q: \\x needs two hex digits", s)
			}
			out = append(out, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("%q: unknown escape \\%c (use \\r \\n \\t \\0 \\\\ or \\xHH)", s, s[i])
		}
	}
	return out, nil
}

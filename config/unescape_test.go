package config

import (
	"bytes"
	"testing"
)

func TestUnescape(t *testing.T) {
	cases := []struct {
		name, in string
		want     []byte
		err      string
	}{
		{name: "plain text passes through", in: "AT", want: []byte("AT")},
		{name: "CR LF and tab are decoded", in: `\r\n\t`, want: []byte("\r\n\t")},
		{name: "a hex escape is one byte", in: `\x02data\xFF`, want: []byte{0x02, 'd', 'a', 't', 'a', 0xff}},
		{name: "a NUL escape is the zero byte", in: `\0`, want: []byte{0}},
		{name: "a doubled backslash is one backslash", in: `a\\b`, want: []byte(`a\b`)},
		{name: "bytes TOML already decoded are kept", in: "\r\n", want: []byte("\r\n")},
		{name: "an unknown escape is refused", in: `\q`, err: `unknown escape "\q" (use \r, \n, \t, \0, \xNN or \\)`},
		{name: "a short hex escape is refused", in: `\x2`, err: `\x must be followed by two hex digits, as in \x02`},
		{name: "a non-hex escape is refused", in: `\xZZ`, err: `\x must be followed by two hex digits, as in \x02`},
		{name: "a trailing backslash is refused", in: `abc\`, err: `a lone "\" ends the text (write \\ for a backslash)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Unescape(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("Unescape(%q) error = %v, want %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("Unescape(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestSuggestPicksOnlyCloseKeys(t *testing.T) {
	known := []string{"name", "port", "baud", "parity", "data_bits", "stop_bits", "timeout", "max_registers"}
	cases := []struct{ key, want string }{
		{"nmae", "name"},
		{"baudrate", "baud"},
		{"Parity", "parity"},
		{"data-bits", "data_bits"},
		{"stopbits", "stop_bits"},
		{"max_regs", "max_registers"},
		{"colour", ""},
		{"x", ""},
	}
	for _, tc := range cases {
		if got := suggest(tc.key, known); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

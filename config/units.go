package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a TOML string such as "500ms", "5s" or "168h".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration and refuses negative ones.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use a number with a unit: 500ms, 5s, 2m, 168h)", string(b))
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back in the same notation.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Size is a byte count written as "256MiB", "64KiB", "1GB" or a plain integer.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
	{"B", 1},
}

// UnmarshalText parses a size with an optional binary or decimal unit.
func (s *Size) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	mult := int64(1)
	num := str
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.suffix) {
			mult, num = u.mult, strings.TrimSpace(strings.TrimSuffix(str, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || (mult > 1 && n > (1<<62)/mult) {
		return fmt.Errorf("%q is not a size (use bytes or a unit: 4096, 64KiB, 256MiB, 1GiB)", str)
	}
	*s = Size(n * mult)
	return nil
}

// MarshalText writes the size in bytes.
func (s Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

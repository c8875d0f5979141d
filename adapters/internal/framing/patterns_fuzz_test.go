package framing

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/edged/edged/telemetry"
)

// FuzzParseValue checks that whatever a device sends in a group becomes a
// value that renders as valid JSON, and that a number keeps its digits.
func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"42", "-3.25", "+7", "1e309", "0x10", "NaN", "89860012345678901234", " 1 ", "\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := ParseValue(s)
		switch x := v.(type) {
		case int64:
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("%q became %v", s, x)
			}
		case string:
			if x != s {
				t.Fatalf("string %q came back as %q", s, x)
			}
		default:
			t.Fatalf("%q became a %T", s, v)
		}
		p := telemetry.Point{Name: "x", Value: v, Time: time.Unix(0, 0)}.Payload(telemetry.PayloadJSON)
		if !json.Valid(p) {
			t.Fatalf("payload %q for %q is not JSON", p, s)
		}
	})
}

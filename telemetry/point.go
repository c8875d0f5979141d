package telemetry

import (
	"encoding/json"
	"strconv"
	"time"
)

// Point is one reading of one named value of a device: a voltage, a coil, a
// humidity parsed out of a serial line. Err is set instead of Value when the
// read failed; a failed read never carries a value.
type Point struct {
	Device string
	Name   string
	Value  any // bool, int64, uint64, float64 or string
	Unit   string
	Time   time.Time
	Err    error
}

// Good reports whether the reading carries a value.
func (p Point) Good() bool { return p.Err == nil }

// PayloadFormat says how a Point becomes message bytes.
type PayloadFormat int

const (
	// PayloadJSON is {"value": 230.5, "unit": "V", "ts": "..."}.
	PayloadJSON PayloadFormat = iota
	// PayloadValue is the bare value: 230.5, true, or the string as is.
	PayloadValue
)

// tsLayout is RFC 3339 with milliseconds, always in UTC.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// Payload renders p in the given format. A failed reading is always JSON
// ({"quality":"bad","error":...}), so a consumer never mistakes it for a value.
func (p Point) Payload(f PayloadFormat) []byte {
	ts := p.Time.UTC().Format(tsLayout)
	if p.Err != nil {
		b, _ := json.Marshal(struct {
			Quality string `json:"quality"`
			Error   string `json:"error"`
			TS      string `json:"ts"`
		}{"bad", p.Err.Error(), ts})
		return b
	}
	if f == PayloadValue {
		return bareValue(p.Value)
	}
	b, err := json.Marshal(struct {
		Value any    `json:"value"`
		Unit  string `json:"unit,omitempty"`
		TS    string `json:"ts"`
	}{jsonSafe(p.Value), p.Unit, ts})
	if err != nil {
		// Only a value JSON cannot hold gets here; say so rather than lose the reading.
		b, _ = json.Marshal(map[string]string{"value": string(bareValue(p.Value)), "ts": ts})
	}
	return b
}

func bareValue(v any) []byte {
	switch x := v.(type) {
	case string:
		return []byte(x)
	case bool:
		return strconv.AppendBool(nil, x)
	case int64:
		return strconv.AppendInt(nil, x, 10)
	case uint64:
		return strconv.AppendUint(nil, x, 10)
	case float64:
		return strconv.AppendFloat(nil, x, 'g', -1, 64)
	default:
		b, _ := json.Marshal(jsonSafe(v))
		return b
	}
}

// jsonSafe turns NaN and ±Inf, which a float register can hold but JSON
// cannot, into strings.
func jsonSafe(v any) any {
	if f, ok := v.(float64); ok && (f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return v
}

package framing

import (
	"reflect"
	"regexp"
	"testing"
)

func TestParseValue(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want any
	}{
		{"an integer is an int64", "42", int64(42)},
		{"a negative decimal is a float64", "-3.25", -3.25},
		{"a leading plus is still a number", "+7", int64(7)},
		{"an exponent is a float64", "1.5e3", 1500.0},
		{"spaces around a number are ignored", " 12 ", int64(12)},
		{"hex stays a string", "0x1F", "0x1F"},
		{"inf stays a string", "inf", "inf"},
		{"NaN stays a string", "NaN", "NaN"},
		{"an ICCID too long for int64 stays a string", "89860012345678901234", "89860012345678901234"},
		{"a lone dot stays a string", ".", "."},
		{"text stays a string", "OK", "OK"},
		{"an empty group is an empty string", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseValue(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseValue(%q) = %#v, want %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestPatterns(t *testing.T) {
	p := NewPatterns([]*regexp.Regexp{
		regexp.MustCompile(`T=(?P<temperature>-?[0-9.]+),H=(?P<humidity>[0-9.]+)`),
		regexp.MustCompile(`^\$GPGGA,(?P<time>[0-9.]+)(,(?P<lat>[0-9.]+))?`),
	})
	cases := []struct {
		name    string
		in      string
		want    []Field
		matched bool
	}{
		{"the first pattern yields both groups", "T=21.5,H=40", []Field{{"temperature", 21.5}, {"humidity", int64(40)}}, true},
		{"the second pattern matches too", "$GPGGA,123519,4807.038", []Field{{"time", int64(123519)}, {"lat", 4807.038}}, true},
		{"an optional group that did not match yields nothing", "$GPGGA,123519", []Field{{"time", int64(123519)}}, true},
		{"a frame no pattern matches is reported", "hello", nil, false},
		{"invalid UTF-8 does not break matching", "\xffT=1,H=2\xfe", []Field{{"temperature", int64(1)}, {"humidity", int64(2)}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := p.Match(tc.in)
			if ok != tc.matched || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Match(%q) = %#v, %v; want %#v, %v", tc.in, got, ok, tc.want, tc.matched)
			}
		})
	}
}

package framing

import (
	"regexp"
	"strconv"
	"strings"
)

// Field is one named group of a pattern that took part in a match.
type Field struct {
	Name  string
	Value any // int64, float64 or string
}

// Patterns is a list of regular expressions whose named groups become points.
type Patterns struct {
	res []*regexp.Regexp
}

// NewPatterns matches frames against res, in order: the patterns config
// compiled and checked (config.Serial.Regexps).
func NewPatterns(res []*regexp.Regexp) *Patterns {
	return &Patterns{res: res}
}

// GroupNames lists the named groups of re in order, each once.
func GroupNames(re *regexp.Regexp) []string {
	var names []string
	seen := map[string]bool{}
	for _, n := range re.SubexpNames() {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names
}

// Len is the number of patterns.
func (p *Patterns) Len() int { return len(p.res) }

// Match tries every pattern on s and returns the named groups of all that
// match, in pattern order; matched is false when none did. A group that did
// not take part in the match (an optional one) yields no field.
func (p *Patterns) Match(s string) (fields []Field, matched bool) {
	for _, re := range p.res {
		f, ok := MatchOne(re, s)
		if ok {
			matched = true
			fields = append(fields, f...)
		}
	}
	return fields, matched
}

// MatchOne applies one pattern to s.
func MatchOne(re *regexp.Regexp, s string) ([]Field, bool) {
	idx := re.FindStringSubmatchIndex(s)
	if idx == nil {
		return nil, false
	}
	var fields []Field
	for i, name := range re.SubexpNames() {
		if name == "" || idx[2*i] < 0 {
			continue
		}
		fields = append(fields, Field{Name: name, Value: ParseValue(s[idx[2*i]:idx[2*i+1]])})
	}
	return fields, true
}

// ParseValue returns s as an int64 or float64 when it is a plain decimal
// number, and as the string otherwise. Hex, "inf", "NaN" and integers too
// long for int64 (an ICCID, an IMEI with a leading zero kept by the
// device) stay strings, so no digits are lost to rounding.
func ParseValue(s string) any {
	t := strings.TrimSpace(s)
	if !isDecimal(t) {
		return s
	}
	if i, err := strconv.ParseInt(t, 10, 64); err == nil {
		return i
	}
	if strings.ContainsAny(t, ".eE") {
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			return f
		}
	}
	return s
}

// isDecimal reports whether s is [+-]digits[.digits][e[+-]digits] with at
// least one digit before the exponent.
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, exp = i+1, exp+1
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

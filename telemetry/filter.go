package telemetry

import (
	"errors"
	"strings"
)

// Filter is an MQTT topic filter (MQTT 3.1.1 section 4.7) split into its
// levels. It is the one topic-filter matcher of edged: config checks the
// filters users write with ParseFilter, the uplink's forward and downlink
// rules and the broker's ACL match with it. Parsed once, it matches a
// topic without allocating.
type Filter []string

// ParseFilter checks f and splits it into levels. The error says what is
// wrong, in words a config error can carry after the filter.
func ParseFilter(f string) (Filter, error) {
	if f == "" {
		return nil, errors.New("it is empty")
	}
	if strings.IndexByte(f, 0) >= 0 {
		return nil, errors.New("it contains a NUL character")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case strings.Contains(l, "#") && (l != "#" || i != len(levels)-1):
			return nil, errors.New(`"#" must be a whole level and the last one`)
		case strings.Contains(l, "+") && l != "+":
			return nil, errors.New(`"+" must be a whole level`)
		}
	}
	return levels, nil
}

// Match reports whether the topic name matches the filter: "+" is one
// level (an empty one too), a trailing "#" any number of levels, none
// included, and a filter that starts with a wildcard does not match a
// topic that starts with "$" (such as $SYS). It does not allocate: the
// uplink runs it for every local publish.
func (f Filter) Match(topic string) bool {
	if len(f) == 0 {
		return false
	}
	if topic != "" && topic[0] == '$' && (f[0] == "+" || f[0] == "#") {
		return false
	}
	rest, more := topic, true
	for _, l := range f {
		if l == "#" {
			return true
		}
		if !more {
			return false
		}
		lvl := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			lvl, rest = rest[:j], rest[j+1:]
		} else {
			more = false
		}
		if l != "+" && l != lvl {
			return false
		}
	}
	return !more
}

// String returns the filter as written.
func (f Filter) String() string { return strings.Join(f, "/") }

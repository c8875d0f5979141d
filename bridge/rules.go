package bridge

import (
	"fmt"
	"strings"

	"github.com/edged/edged/config"
)

// forwardRule sends local topics matching filter upstream under prefix.
type forwardRule struct {
	raw    string
	filter []string
	prefix string
	qos    byte
}

// downlinkRule brings remote topics matching filter into the local broker.
type downlinkRule struct {
	raw    string
	filter []string
	strip  string
	prefix string
	qos    byte
}

// parseFilter checks an MQTT topic filter and splits it into levels.
func parseFilter(f string) ([]string, error) {
	if f == "" {
		return nil, fmt.Errorf("empty topic filter")
	}
	if strings.ContainsRune(f, 0) {
		return nil, fmt.Errorf("topic filter %q contains a NUL character", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return nil, fmt.Errorf("topic filter %q: # must be the last level", f)
		case l != "#" && l != "+" && strings.ContainsAny(l, "+#"):
			return nil, fmt.Errorf("topic filter %q: + and # must fill a whole level", f)
		}
	}
	return levels, nil
}

// match reports whether topic matches the split filter. It does not
// allocate: it runs for every local publish.
func match(filter []string, topic string) bool {
	if topic != "" && topic[0] == '$' && (filter[0] == "+" || filter[0] == "#") {
		return false // wildcards do not reach $SYS and the like (MQTT 4.7.2)
	}
	rest, more := topic, true
	for _, f := range filter {
		if f == "#" {
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
		if f != "+" && f != lvl {
			return false
		}
	}
	return !more
}

// checkPrefix refuses a topic prefix that would put a wildcard or NUL into
// every topic made with it.
func checkPrefix(p string) error {
	if strings.ContainsAny(p, "+#\x00") {
		return fmt.Errorf("%q contains a wildcard or NUL; a prefix is part of a topic name", p)
	}
	return nil
}

func ruleQoS(q *int, key string) (byte, error) {
	if q == nil {
		return 1, nil
	}
	if *q != 0 && *q != 1 {
		return 0, fmt.Errorf("%s: qos %d is not 0 or 1", key, *q)
	}
	return byte(*q), nil
}

func parseForward(rules []config.Forward) ([]forwardRule, error) {
	var out []forwardRule
	for i, r := range rules {
		key := fmt.Sprintf("uplink.forward[%d]", i)
		f, err := parseFilter(r.Local)
		if err != nil {
			return nil, fmt.Errorf("%s.local: %w", key, err)
		}
		if err := checkPrefix(r.RemotePrefix); err != nil {
			return nil, fmt.Errorf("%s.remote_prefix: %w", key, err)
		}
		q, err := ruleQoS(r.QoS, key)
		if err != nil {
			return nil, err
		}
		out = append(out, forwardRule{raw: r.Local, filter: f, prefix: r.RemotePrefix, qos: q})
	}
	return out, nil
}

func parseDownlink(rules []config.Downlink) ([]downlinkRule, error) {
	var out []downlinkRule
	for i, r := range rules {
		key := fmt.Sprintf("uplink.downlink[%d]", i)
		f, err := parseFilter(r.Remote)
		if err != nil {
			return nil, fmt.Errorf("%s.remote: %w", key, err)
		}
		if err := checkPrefix(r.LocalPrefix); err != nil {
			return nil, fmt.Errorf("%s.local_prefix: %w", key, err)
		}
		q, err := ruleQoS(r.QoS, key)
		if err != nil {
			return nil, err
		}
		out = append(out, downlinkRule{raw: r.Remote, filter: f, strip: r.StripPrefix, prefix: r.LocalPrefix, qos: q})
	}
	return out, nil
}

// forwardFor returns the first forward rule matching topic, or nil.
func forwardFor(rules []forwardRule, topic string) *forwardRule {
	for i := range rules {
		if match(rules[i].filter, topic) {
			return &rules[i]
		}
	}
	return nil
}

// localTopic maps a topic that came down from the upstream broker to its
// local name, or reports false when no downlink rule takes it or the result
// is not a topic name the local broker accepts.
func localTopic(rules []downlinkRule, remote string) (string, bool) {
	for i := range rules {
		r := &rules[i]
		if !match(r.filter, remote) {
			continue
		}
		t := r.prefix + strings.TrimPrefix(remote, r.strip)
		if t == "" || strings.ContainsAny(t, "+#\x00") {
			return "", false
		}
		return t, true
	}
	return "", false
}

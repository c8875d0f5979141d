package bridge

import (
	"fmt"
	"strings"

	"github.com/edged/edged/config"
	"github.com/edged/edged/telemetry"
)

// forwardRule sends local topics matching filter upstream under prefix.
type forwardRule struct {
	raw    string
	filter telemetry.Filter
	prefix string
	qos    byte
	format string // a cloud's property post (cloud_format.go), or ""
}

// downlinkRule brings remote topics matching filter into the local broker.
type downlinkRule struct {
	raw    string
	filter telemetry.Filter
	strip  string
	prefix string
	qos    byte
	format string // a cloud's property set (cloud_format.go), or ""
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
		f, err := telemetry.ParseFilter(r.Local)
		if err != nil {
			return nil, fmt.Errorf("%s.local: %q is not a valid topic filter: %w", key, r.Local, err)
		}
		if err := checkPrefix(r.RemotePrefix); err != nil {
			return nil, fmt.Errorf("%s.remote_prefix: %w", key, err)
		}
		q, err := ruleQoS(r.QoS, key)
		if err != nil {
			return nil, err
		}
		out = append(out, forwardRule{raw: r.Local, filter: f, prefix: r.RemotePrefix, qos: q, format: r.Format})
	}
	return out, nil
}

func parseDownlink(rules []config.Downlink) ([]downlinkRule, error) {
	var out []downlinkRule
	for i, r := range rules {
		key := fmt.Sprintf("uplink.downlink[%d]", i)
		if r.Format != "" { // the cloud's set topic is filled in by cloudRules
			q, err := ruleQoS(r.QoS, key)
			if err != nil {
				return nil, err
			}
			out = append(out, downlinkRule{prefix: r.LocalPrefix, qos: q, format: r.Format})
			continue
		}
		f, err := telemetry.ParseFilter(r.Remote)
		if err != nil {
			return nil, fmt.Errorf("%s.remote: %q is not a valid topic filter: %w", key, r.Remote, err)
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
		if rules[i].filter.Match(topic) {
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
		if !r.filter.Match(remote) {
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

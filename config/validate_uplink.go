package config

import (
	"net/url"
	"slices"
	"strings"

	"github.com/edged/edged/telemetry"
)

var uplinkSchemes = []string{"mqtt", "mqtts", "ws", "wss"}

func (v *validator) uplink(u *Uplink) {
	switch {
	case u.URL != "" && len(u.URLs) > 0:
		v.errorf("uplink.urls", "set url or urls, not both")
	case u.URL == "" && len(u.URLs) == 0 && !v.bad["uplink.url"] && !v.bad["uplink.urls"] && u.Cloud == "":
		v.errorf("uplink.url", `missing (the upstream broker, e.g. "mqtts://cloud.example.com:8883"; or urls = [...] for several)`)
	}
	tls := false
	if u.URL != "" {
		tls = v.brokerURL("uplink.url", u.URL)
	}
	for i, s := range u.URLs {
		if v.brokerURL(index("uplink.urls", i), s) {
			tls = true
		}
	}
	// An unset client_id is the gateway id, which gateway() checks.
	if v.set["uplink.client_id"] && strings.ContainsAny(u.ClientID, "+#/") {
		// Brokers substitute the client id into ACL patterns (%c); a
		// wildcard there would widen them.
		v.errorf("uplink.client_id", "%q must not contain +, # or /", u.ClientID)
	}
	if u.Password != "" && u.PasswordFile != "" {
		v.errorf("uplink.password_file", "set password or password_file, not both")
	}
	if (u.Password != "" || u.PasswordFile != "") && u.Username == "" {
		v.errorf("uplink.username", "missing (a password needs a username)")
	}
	if u.CertFile != "" && u.KeyFile == "" {
		v.errorf("uplink.key_file", "missing (cert_file and key_file go together for mutual TLS)")
	}
	if u.KeyFile != "" && u.CertFile == "" {
		v.errorf("uplink.cert_file", "missing (cert_file and key_file go together for mutual TLS)")
	}
	if !tls {
		for _, k := range []struct {
			key string
			set bool
		}{{"ca_file", u.CAFile != ""}, {"cert_file", u.CertFile != ""}, {"key_file", u.KeyFile != ""}, {"server_name", u.ServerName != ""}, {"insecure_skip_verify", u.InsecureSkipVerify}} {
			if k.set {
				v.errorf("uplink."+k.key, "is a TLS setting, but no url uses TLS (mqtts:// or wss://)")
			}
		}
	}
	v.uplinkFiles(u, tls)
	v.positiveDur("uplink.keepalive", u.Keepalive)
	v.positiveDur("uplink.max_backoff", u.MaxBackoff)
	v.inRange("uplink.inflight", u.Inflight, 1, 65535)
	v.positiveDur("uplink.ack_timeout", u.AckTimeout)
	v.inRange("uplink.dead_letter_after", u.DeadLetterAfter, 1, 100)
	v.cloud(u)

	for i := range u.Forward {
		f := &u.Forward[i]
		p := index("uplink.forward", i)
		v.topicFilter(p+".local", f.Local, `a local topic filter, e.g. "pi-01/#"`)
		v.topicPrefix(p+".remote_prefix", f.RemotePrefix)
		v.qos(p+".qos", f.QoS)
		v.cloudFormat(p, u.Cloud, f.Format, forwardFormats)
		if f.Format != "" && f.RemotePrefix != "" {
			v.errorf(p+".remote_prefix", "is not used with format = %q: messages go to the cloud's own topic", f.Format)
		}
	}
	for i := range u.Downlink {
		d := &u.Downlink[i]
		p := index("uplink.downlink", i)
		if d.Format != "" {
			v.cloudFormat(p, u.Cloud, d.Format, cloudFormats)
			if d.Remote != "" || d.StripPrefix != "" {
				v.errorf(p+".remote", "is not used with format = %q: the cloud's property-set topic is subscribed", d.Format)
			}
			v.required(p+".local_prefix", d.LocalPrefix, `the local topic before each property name, e.g. "pi-01/meter1/"`)
			v.topicPrefix(p+".local_prefix", d.LocalPrefix)
			v.qos(p+".qos", d.QoS)
			continue
		}
		if v.topicFilter(p+".remote", d.Remote, `a remote topic filter, e.g. "sites/a/pi-01/+/+/set"`) &&
			d.StripPrefix != "" && !prefixCanMatch(d.Remote, d.StripPrefix) {
			v.errorf(p+".strip_prefix", "%q can never be a prefix of a topic matching %q", d.StripPrefix, d.Remote)
		}
		v.topicPrefix(p+".strip_prefix", d.StripPrefix)
		v.topicPrefix(p+".local_prefix", d.LocalPrefix)
		v.qos(p+".qos", d.QoS)
	}
}

// cloudFormat checks a rule's format: a cloud's thing model, the same
// cloud the uplink logs in to.
func (v *validator) cloudFormat(p, cloud, format string, formats []string) {
	if format == "" || !v.oneOf(p+".format", format, formats...) {
		return
	}
	if cloud != format {
		v.errorf(p+".format", "%q needs cloud = %q (the device the properties belong to)", format, format)
	}
}

// brokerURL checks one upstream address and reports whether it uses TLS.
func (v *validator) brokerURL(path, s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		v.errorf(path, `%q is not a broker URL (e.g. "mqtts://cloud.example.com:8883")`, s)
		return false
	}
	if !slices.Contains(uplinkSchemes, u.Scheme) {
		hint := ""
		switch u.Scheme {
		case "tcp":
			hint = " (write mqtt:// for plain TCP)"
		case "ssl", "tls":
			hint = " (write mqtts:// for TLS)"
		}
		v.errorf(path, "scheme %q is not one of %s%s", u.Scheme, strings.Join(uplinkSchemes, ", "), hint)
		return false
	}
	if p := u.Port(); p != "" {
		if _, _, prob := splitHostPort(u.Host, true); prob != "" {
			v.errorf(path, "%q %s", u.Host, prob)
		}
	}
	if u.User != nil {
		v.errorf(path, "must not hold credentials: use username and password_file")
	}
	return u.Scheme == "mqtts" || u.Scheme == "wss"
}

// topicFilter checks a required MQTT topic filter and reports whether it
// is usable. what says what the key is for.
func (v *validator) topicFilter(path, f, what string) bool {
	if !v.required(path, f, what) {
		return false
	}
	if _, err := telemetry.ParseFilter(f); err != nil {
		v.errorf(path, "%q is not a valid topic filter: %v", f, err)
		return false
	}
	return true
}

// topicPrefix checks text that is glued before or cut from a topic: it
// may be empty but must hold no wildcard.
func (v *validator) topicPrefix(path, s string) {
	if strings.ContainsAny(s, "+#") {
		v.errorf(path, "%q must not contain the wildcards + or #", s)
	} else if strings.ContainsRune(s, 0) {
		v.errorf(path, "must not contain a NUL character")
	}
}

// prefixCanMatch reports whether some topic matching filter starts with
// prefix, comparing up to the first wildcard.
func prefixCanMatch(filter, prefix string) bool {
	lit := filter
	if i := strings.IndexAny(filter, "+#"); i >= 0 {
		lit = filter[:i]
	}
	if len(prefix) <= len(lit) {
		return strings.HasPrefix(lit, prefix)
	}
	return strings.HasPrefix(prefix, lit) && strings.ContainsAny(filter, "+#")
}

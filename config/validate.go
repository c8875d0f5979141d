package config

import (
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edged/edged/mqttauth"
	"github.com/edged/edged/telemetry"
)

// validator checks a decoded, defaulted config section by section. Each
// section has its own method and every message names its key path.
type validator struct {
	file  string
	ix    lineIndex
	set   map[string]bool // key paths written in the file
	bad   map[string]bool // key paths the decoder already reported
	dirs  []string        // profile search path
	errs  []*Error
	warns []*Error

	deviceNames map[string]string // device name → the device that first used it
	profiles    map[string]profileResult
	users       map[string]*mqttauth.Users // users files by path, nil when they failed
	acls        map[string]*mqttauth.ACL   // ACL files by path, nil when they failed
}

type profileResult struct {
	p   *Profile
	err error
}

func newValidator(file string, ix lineIndex, set, bad map[string]bool, dirs []string) *validator {
	return &validator{
		file: file, ix: ix, set: set, bad: bad, dirs: dirs,
		deviceNames: map[string]string{},
		profiles:    map[string]profileResult{},
		users:       map[string]*mqttauth.Users{},
		acls:        map[string]*mqttauth.ACL{},
	}
}

// errorf records a problem at path, unless the decoder already reported
// that value or one it is part of (a value of the wrong type is left zero,
// and "0 is out of range" on top of "expected an integer" is noise).
func (v *validator) errorf(path, format string, args ...any) {
	for _, p := range pathParents(path) {
		if v.bad[p] {
			return
		}
	}
	v.errs = append(v.errs, &Error{File: v.file, Line: v.ix.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// warnf records a doubt about path that does not make the config invalid.
func (v *validator) warnf(path, format string, args ...any) {
	v.warns = append(v.warns, &Error{File: v.file, Line: v.ix.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// required reports whether a string key has a value, recording a problem
// when it does not. what says what the key is for.
func (v *validator) required(path, val, what string) bool {
	if val != "" {
		return true
	}
	if v.set[path] {
		v.errorf(path, "must not be empty (%s)", what)
	} else {
		v.errorf(path, "missing (%s)", what)
	}
	return false
}

// oneOf checks an enumeration.
func (v *validator) oneOf(path, val string, options ...string) bool {
	for _, o := range options {
		if val == o {
			return true
		}
	}
	v.errorf(path, "%q is not one of %s", val, strings.Join(options, ", "))
	return false
}

// positive checks a count or limit that must be at least 1.
func (v *validator) positive(path string, n int) {
	if n <= 0 {
		v.errorf(path, "must be at least 1, got %d", n)
	}
}

// positiveDur checks a duration that must be longer than zero.
func (v *validator) positiveDur(path string, d Duration) {
	if d.Duration <= 0 {
		v.errorf(path, "must be longer than 0s")
	}
}

// qos checks an optional MQTT QoS, of which edged uses 0 and 1.
func (v *validator) qos(path string, q *int) {
	if q != nil && *q != 0 && *q != 1 {
		v.errorf(path, "%d is not one of 0, 1", *q)
	}
}

// inRange checks lo <= n <= hi.
func (v *validator) inRange(path string, n, lo, hi int) bool {
	if n < lo || n > hi {
		v.errorf(path, "%d is out of range %d..%d", n, lo, hi)
		return false
	}
	return true
}

// finite checks a float that must be a real number (TOML allows nan and inf).
func (v *validator) finite(path string, f float64) bool {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		v.errorf(path, "must be a finite number, got %v", f)
		return false
	}
	return true
}

// config runs every section.
func (v *validator) config(c *Config) {
	v.gateway(&c.Gateway)
	v.log(&c.Log)
	v.broker(&c.Broker)
	v.modbus(c.Modbus)
	v.serial(c.Serial)
	v.at(c.AT)
	if c.Uplink != nil {
		v.uplink(c.Uplink)
	}
	v.buffer(&c.Buffer)
	v.homeAssistant(&c.HomeAssistant)
	v.http(&c.HTTP, c.Broker.Listeners)
	if len(v.errs) > 0 {
		return // topics are compared once every name and template is valid
	}
	t := v.topics(c)
	v.collisions(t)
	if c.Uplink != nil {
		v.reach(c.Uplink, c.Gateway.ID, t)
	}
}

// levelProblem says why s cannot be one level of an MQTT topic, or "".
func levelProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case strings.Contains(s, "/"):
		return `contains "/"`
	case strings.Contains(s, "+"):
		return `contains the wildcard "+"`
	case strings.Contains(s, "#"):
		return `contains the wildcard "#"`
	case strings.ContainsRune(s, 0):
		return "contains a NUL character"
	case strings.HasPrefix(s, "$"):
		return `starts with "$" (reserved for broker topics)`
	}
	return ""
}

// topicLevel checks that s can be one level of a topic and reports
// whether it can.
func (v *validator) topicLevel(path, s string) bool {
	if prob := levelProblem(s); prob != "" {
		v.errorf(path, "%q cannot be a topic level: it %s", s, prob)
		return false
	}
	return true
}

// deviceName checks the name of the device at p, which is a topic level
// and so must be unique across every [[modbus.device]], [[serial]] and
// [[at]]. example is a typical name, for the message when it is missing.
func (v *validator) deviceName(p, name, example string) {
	path := p + ".name"
	if !v.required(path, name, "the device's topic level, e.g. "+example) || !v.topicLevel(path, name) {
		return
	}
	if first, ok := v.deviceNames[name]; ok {
		v.errorf(path, "%q is already used by %s (device names are topic levels and must be unique)", name, first)
		return
	}
	v.deviceNames[name] = p
}

// topicAndPayload checks a device's topic template and payload format.
func (v *validator) topicAndPayload(path, topic, payload string) {
	if err := telemetry.Template(topic).Validate(); err != nil {
		v.errorf(path+".topic", "%v", err)
	} else if !strings.Contains(topic, "{point}") {
		v.errorf(path+".topic", "%q has no {point}: every value of the device would publish on the same topic", topic)
	}
	v.oneOf(path+".payload", payload, "json", "value")
}

func (v *validator) gateway(g *Gateway) {
	v.topicLevel("gateway.id", g.ID)
	if !filepath.IsAbs(g.StateDir) {
		v.errorf("gateway.state_dir", "%q is not an absolute path", g.StateDir)
		return
	}
	v.stateDir(g.StateDir)
}

func (v *validator) log(l *Log) {
	v.oneOf("log.level", l.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", l.Format, "text", "json")
}

const (
	// mqttMaxPacket is the largest packet MQTT's length encoding allows.
	mqttMaxPacket = 268435455
	// minPacketSize is the smallest max_packet_size accepted: a CONNECT
	// with a client id and credentials, or a JSON reading on a three-level
	// topic, takes about a hundred bytes.
	minPacketSize = 128
	// maxPacketIDs is how many QoS 1/2 messages a client can have in
	// flight and queued at once: MQTT's 16-bit packet ids.
	maxPacketIDs = 65535
)

func (v *validator) broker(b *Broker) {
	type bound struct {
		path string
		host string
		port int
	}
	var seen []bound
	for i := range b.Listeners {
		l := &b.Listeners[i]
		p := index("broker.listener", i)
		v.oneOf(p+".type", l.Type, "tcp", "tls", "ws")
		host, port, prob := splitHostPort(l.Address, false)
		if prob != "" {
			v.errorf(p+".address", "%q %s (e.g. %q)", l.Address, prob, DefaultListenAddress)
		}
		if l.Type == "tls" {
			v.required(p+".cert_file", l.CertFile, "a tls listener needs cert_file and key_file")
			v.required(p+".key_file", l.KeyFile, "a tls listener needs cert_file and key_file")
		} else {
			for _, k := range []struct{ key, val string }{{"cert_file", l.CertFile}, {"key_file", l.KeyFile}, {"client_ca_file", l.ClientCAFile}} {
				if k.val != "" {
					v.errorf(p+"."+k.key, `only a listener with type = "tls" uses %s`, k.key)
				}
			}
		}
		anonymous := l.AllowAnonymous != nil && *l.AllowAnonymous
		if prob == "" && !isLoopbackHost(host) && l.UsersFile == "" && !anonymous {
			v.errorf(p, "address %q is not loopback: set users_file (clients log in) or allow_anonymous = true (anyone on the network may connect)", l.Address)
		}
		if l.ACLFile != "" && l.UsersFile == "" && !anonymous {
			v.errorf(p+".acl_file", "no client could log in to use it: set users_file, or allow_anonymous = true")
		}
		v.listenerFiles(p, l)
		if prob == "" {
			for _, s := range seen {
				if s.port == port && (s.host == host || isWildcardHost(s.host) || isWildcardHost(host)) {
					v.errorf(p+".address", "%q overlaps %s.address (same port %d)", l.Address, s.path, port)
					break
				}
			}
			seen = append(seen, bound{p, host, port})
		}
	}
	switch {
	case b.MaxPacketSize > 0 && b.MaxPacketSize < minPacketSize:
		v.errorf("broker.max_packet_size", "%d bytes is too small for MQTT's own packets and a reading (did you mean \"%dKiB\"?): must be between %d and %d bytes", b.MaxPacketSize, b.MaxPacketSize, minPacketSize, mqttMaxPacket)
	case b.MaxPacketSize < minPacketSize || b.MaxPacketSize > mqttMaxPacket:
		v.errorf("broker.max_packet_size", "must be between %d and %d bytes (MQTT's limit), got %d", minPacketSize, mqttMaxPacket, b.MaxPacketSize)
	}
	v.positive("broker.max_clients", b.MaxClients)
	inflightOK := v.inRange("broker.max_inflight", b.MaxInflight, 1, maxPacketIDs)
	if v.inRange("broker.max_queued", b.MaxQueued, 1, maxPacketIDs) && inflightOK && b.MaxInflight+b.MaxQueued > maxPacketIDs {
		v.errorf("broker.max_queued", "max_inflight + max_queued = %d: a client's messages in flight and queued share MQTT's %d packet ids, so the sum must be at most %d", b.MaxInflight+b.MaxQueued, maxPacketIDs, maxPacketIDs)
	}
	if b.MaxQueuedBytes < b.MaxPacketSize {
		v.errorf("broker.max_queued_bytes", "must be at least max_packet_size (%d bytes), or a client could never be sent a message that size; got %d", b.MaxPacketSize, b.MaxQueuedBytes)
	}
	v.positiveDur("broker.session_expiry", b.SessionExpiry)
	v.positiveDur("broker.message_expiry", b.MessageExpiry)
	if d := b.MaxKeepalive.Duration; d < time.Second || d > 65535*time.Second || d%time.Second != 0 {
		v.errorf("broker.max_keepalive", "must be whole seconds from 1s to 65535s (MQTT's limit, 18h12m15s), got %s", d)
	}
	if b.TopicAliasMaximum != nil {
		v.inRange("broker.topic_alias_maximum", *b.TopicAliasMaximum, 0, 65535)
	}
}

// splitHostPort parses host:port. It returns a problem phrase or "".
// needHost requires a host (a client's destination, not a listener).
func splitHostPort(addr string, needHost bool) (string, int, string) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, "is not host:port"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, "has no valid port (1..65535)"
	}
	if needHost && host == "" {
		return "", 0, "has no host"
	}
	host = strings.ToLower(host)
	if host == "localhost" {
		host = "127.0.0.1" // what Go binds for it, so overlaps are seen
	}
	return host, port, ""
}

// isLoopbackAddress reports whether host:port names a loopback socket.
// isLoopbackAddress reports whether host:port names a loopback host; the
// port is validation's concern (a config built in code may use port 0).
func isLoopbackAddress(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopbackHost(host)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	h, _, _ := strings.Cut(host, "%") // IPv6 zone
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func isWildcardHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func (v *validator) buffer(b *Buffer) {
	if b.MaxBytes <= 0 {
		v.errorf("buffer.max_bytes", "must be more than 0 bytes")
	}
	v.positiveDur("buffer.max_age", b.MaxAge)
	v.oneOf("buffer.when_full", b.WhenFull, "drop-oldest", "reject")
	if b.Durability == "normal" {
		// The default was once "normal"; files written then keep starting,
		// but their owners learn what the name hid.
		v.warnf("buffer.durability", `"normal" is the old name of "power-loss-unsafe": it survives a crash of edged but a power cut may lose the last acknowledged messages; remove the line for the default "full", or write "power-loss-unsafe" to keep this mode`)
		b.Durability = "power-loss-unsafe"
	}
	v.oneOf("buffer.durability", b.Durability, "full", "power-loss-unsafe")
}

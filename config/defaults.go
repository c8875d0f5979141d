package config

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/edged/edged/telemetry"
)

// Defaults that more than one section or the documentation refers to.
const (
	DefaultStateDir      = "/var/lib/edged"
	DefaultListenAddress = "127.0.0.1:1883"
	// DefaultMaxKeepalive is broker.max_keepalive: an MQTT 5 client asking
	// for a longer keep alive, or none, is told to use this.
	DefaultMaxKeepalive = 5 * time.Minute
	// DefaultTopicAliasMaximum is broker.topic_alias_maximum (Mosquitto's
	// default too).
	DefaultTopicAliasMaximum = 10
	// DefaultMaxQueuedBytes is broker.max_queued_bytes.
	DefaultMaxQueuedBytes = 8 << 20
)

// applyDefaults fills in every key the file left out. It is the only place
// defaults are set. isSet reports whether a key path was written in the
// file: a number the user wrote as 0 is kept (and rejected by validation
// where 0 makes no sense) rather than silently replaced.
func applyDefaults(c *Config, isSet func(path string) bool, hostname string) {
	if c.Gateway.ID == "" {
		c.Gateway.ID = sanitizeHostname(hostname)
	}
	if c.Gateway.StateDir == "" {
		c.Gateway.StateDir = DefaultStateDir
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	defaultBroker(&c.Broker, isSet)
	for i := range c.Modbus {
		defaultBus(&c.Modbus[i], index("modbus", i), isSet)
	}
	for i := range c.Serial {
		defaultSerial(&c.Serial[i], index("serial", i), isSet)
	}
	for i := range c.AT {
		defaultAT(&c.AT[i], index("at", i), isSet)
	}
	if c.Uplink != nil {
		defaultUplink(c.Uplink, c.Gateway.ID, isSet)
	}
	b := &c.Buffer
	setSize(&b.MaxBytes, 256<<20, isSet("buffer.max_bytes"))
	setDur(&b.MaxAge, 168*time.Hour, isSet("buffer.max_age"))
	setStr(&b.WhenFull, "drop-oldest")
	setStr(&b.Durability, "full")
	setStr(&c.HomeAssistant.Prefix, DefaultHomeAssistantPrefix)
	defaultHTTP(&c.HTTP)
}

// DefaultHTTP returns h with the defaults config.Load applies to the [http]
// keys a file leaves out, for a config built in code (tests).
func DefaultHTTP(h HTTP) HTTP {
	defaultHTTP(&h)
	return h
}

func defaultHTTP(h *HTTP) {
	if h.Address != "" && h.AllowAnonymous == nil {
		// As for a listener: anonymous only where nobody else can reach it.
		anon := h.UsersFile == "" && isLoopbackAddress(h.Address)
		h.AllowAnonymous = &anon
	}
}

// DefaultBroker returns b with the defaults config.Load applies to every
// [broker] key a file leaves out, for a broker config built in code (tests,
// benchmarks). Its listener list is kept as given: empty means none.
func DefaultBroker(b Broker) Broker {
	b.Listeners = append([]Listener(nil), b.Listeners...)
	defaultBroker(&b, func(key string) bool { return key == "broker.listener" })
	return b
}

func defaultBroker(b *Broker, isSet func(string) bool) {
	// An explicit `listener = []` means no sockets at all (in-process only).
	if len(b.Listeners) == 0 && !isSet("broker.listener") {
		b.Listeners = []Listener{{Type: "tcp", Address: DefaultListenAddress}}
	}
	for i := range b.Listeners {
		l := &b.Listeners[i]
		setStr(&l.Type, "tcp")
		if l.Address == "" {
			switch l.Type {
			case "tls":
				l.Address = "127.0.0.1:8883"
			case "ws":
				l.Address = "127.0.0.1:8080"
			default:
				l.Address = DefaultListenAddress
			}
		}
		if l.AllowAnonymous == nil {
			// Anonymous access is the default only where nobody else can
			// reach the socket.
			anon := l.UsersFile == "" && isLoopbackAddress(l.Address)
			l.AllowAnonymous = &anon
		}
	}
	setSize(&b.MaxPacketSize, 1<<20, isSet("broker.max_packet_size"))
	setInt(&b.MaxClients, 1000, isSet("broker.max_clients"))
	setInt(&b.MaxInflight, 64, isSet("broker.max_inflight"))
	setInt(&b.MaxQueued, 1000, isSet("broker.max_queued"))
	setSize(&b.MaxQueuedBytes, DefaultMaxQueuedBytes, isSet("broker.max_queued_bytes"))
	setDur(&b.SessionExpiry, 168*time.Hour, isSet("broker.session_expiry"))
	setDur(&b.MessageExpiry, 168*time.Hour, isSet("broker.message_expiry"))
	setPtr(&b.Persist, true)
	setDur(&b.MaxKeepalive, DefaultMaxKeepalive, isSet("broker.max_keepalive"))
	setPtr(&b.TopicAliasMaximum, DefaultTopicAliasMaximum)
}

func defaultBus(b *Bus, path string, isSet func(string) bool) {
	if b.Transport == "" {
		switch {
		case b.Port != "" && b.Address == "":
			b.Transport = "rtu"
		case b.Address != "" && b.Port == "":
			b.Transport = "tcp"
		}
	}
	if b.Transport == "rtu" {
		// Serial line settings mean nothing on TCP; leaving them unset
		// there lets validation tell the user they were ignored.
		setInt(&b.Baud, 9600, isSet(path+".baud"))
		setStr(&b.Parity, "E") // the Modbus serial line standard's default
		setInt(&b.DataBits, 8, isSet(path+".data_bits"))
		setInt(&b.StopBits, 1, isSet(path+".stop_bits"))
	}
	setDur(&b.Timeout, time.Second, isSet(path+".timeout"))
	setPtr(&b.MaxGap, 10)
	setInt(&b.MaxRegs, 125, isSet(path+".max_registers"))
	setInt(&b.MaxBits, 2000, isSet(path+".max_bits"))
	for j := range b.Devices {
		d := &b.Devices[j]
		dp := index(path+".device", j)
		setInt(&d.Unit, 1, isSet(dp+".unit"))
		setDur(&d.Interval, 10*time.Second, isSet(dp+".interval"))
		setDur(&d.Timeout, b.Timeout.Duration, isSet(dp+".timeout"))
		setStr(&d.Topic, telemetry.DefaultTemplate)
		setStr(&d.Payload, "json")
		setPtr(&d.MaxGap, *b.MaxGap)
		setInt(&d.MaxRegs, b.MaxRegs, isSet(dp+".max_registers"))
		setInt(&d.MaxBits, b.MaxBits, isSet(dp+".max_bits"))
		for k := range d.Points {
			defaultPoint(&d.Points[k])
		}
	}
}

func defaultPoint(p *Point) {
	if p.Type == "" && (p.Table == "coil" || p.Table == "discrete") {
		p.Type = "bool" // the only type a coil or discrete input has
	}
	setStr(&p.Order, "ABCD")
	setPtr(&p.Scale, 1.0)
	setPtr(&p.QoS, 0)
}

// Target is what a bus talks to: its serial port (transport rtu) or its
// host:port (tcp, rtu-over-tcp).
func (b *Bus) Target() string {
	if b.Transport == "rtu" {
		return b.Port
	}
	return b.Address
}

// Decimals is the number of decimals a point's readings are rounded to:
// precision, or by default the decimals of scale and offset (a register in
// hundredths, scale = 0.01, reads 123.45, never 123.45000000000002); nil
// when readings are not rounded (neither is set).
func (p *Point) Decimals() *int {
	if p.Precision != nil {
		n := *p.Precision
		return &n
	}
	scale := 1.0
	if p.Scale != nil {
		scale = *p.Scale
	}
	if scale == 1 && p.Offset == 0 {
		return nil
	}
	n := max(decimalsOf(scale), decimalsOf(p.Offset))
	return &n
}

// maxDecimals bounds precision: a float64 carries 15 significant digits.
const maxDecimals = 15

// decimalsOf is how many decimals x has when written out in full, up to
// maxDecimals: 0.01 has 2, 0.5 has 1, 10 has 0.
func decimalsOf(x float64) int {
	s := strconv.FormatFloat(x, 'f', -1, 64)
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return 0
	}
	return min(len(s)-i-1, maxDecimals)
}

func defaultSerialPort(s *SerialPort, path string, baud int, isSet func(string) bool) {
	setInt(&s.Baud, baud, isSet(path+".baud"))
	setStr(&s.Parity, "N")
	setInt(&s.DataBits, 8, isSet(path+".data_bits"))
	setInt(&s.StopBits, 1, isSet(path+".stop_bits"))
}

func defaultSerial(s *Serial, path string, isSet func(string) bool) {
	defaultSerialPort(&s.SerialPort, path, 9600, isSet)
	setSize(&s.MaxFrame, 4096, isSet(path+".max_frame"))
	if s.Request != "" {
		setDur(&s.Interval, 30*time.Second, isSet(path+".interval"))
	}
	setStr(&s.Topic, telemetry.DefaultTemplate)
	setStr(&s.Payload, "json")
}

func defaultAT(a *ATDev, path string, isSet func(string) bool) {
	defaultSerialPort(&a.SerialPort, path, 115200, isSet)
	// Spaces around a command in the file are not part of it (line
	// breaks are left for validation to refuse: edged ends every line).
	for i := range a.Init {
		a.Init[i] = trimCommand(a.Init[i])
	}
	for i := range a.Queries {
		a.Queries[i].Command = trimCommand(a.Queries[i].Command)
	}
	a.Reset = trimCommand(a.Reset)
	setDur(&a.Interval, 30*time.Second, isSet(path+".interval"))
	setDur(&a.Timeout, 2*time.Second, isSet(path+".timeout"))
	for i := range a.Queries {
		setDur(&a.Queries[i].Timeout, a.Timeout.Duration, isSet(index(path+".queries", i)+".timeout"))
	}
	setInt(&a.ResetAfter, 3, isSet(path+".reset_after"))
	setPtr(&a.RawCommands, true) // the local broker is on loopback by default
	setStr(&a.Topic, telemetry.DefaultTemplate)
	setStr(&a.Payload, "json")
}

func trimCommand(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) && r != '\r' && r != '\n' })
}

// DefaultUplink returns u with the defaults config.Load applies to every
// [uplink] key a file leaves out (the client id is gateway), for an uplink
// config built in code (tests, benchmarks).
func DefaultUplink(u Uplink, gateway string) Uplink {
	u.Forward = append([]Forward(nil), u.Forward...)
	u.Downlink = append([]Downlink(nil), u.Downlink...)
	defaultUplink(&u, gateway, func(string) bool { return false })
	return u
}

func defaultUplink(u *Uplink, gateway string, isSet func(string) bool) {
	setStr(&u.ClientID, gateway)
	if u.Password != "" {
		u.LoginPassword = Secret(u.Password)
	}
	if u.Cloud != "" && u.URL == "" && len(u.URLs) == 0 {
		u.URL = defaultCloudURL(u)
	}
	setDur(&u.TokenLifetime, time.Hour, isSet("uplink.token_lifetime"))
	setDur(&u.Keepalive, 30*time.Second, isSet("uplink.keepalive"))
	setDur(&u.MaxBackoff, 10*time.Second, isSet("uplink.max_backoff"))
	setInt(&u.Inflight, 64, isSet("uplink.inflight"))
	setDur(&u.AckTimeout, 5*time.Second, isSet("uplink.ack_timeout"))
	setInt(&u.DeadLetterAfter, 3, isSet("uplink.dead_letter_after"))
	for i := range u.Forward {
		setPtr(&u.Forward[i].QoS, 1)
	}
	for i := range u.Downlink {
		setPtr(&u.Downlink[i].QoS, 1)
	}
}

// setPtr points an optional value that the file left out at its own copy
// of def, so that no two configs or devices share it.
func setPtr[T any](p **T, def T) {
	if *p == nil {
		*p = &def
	}
}

func setStr(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setInt(n *int, def int, set bool) {
	if *n == 0 && !set {
		*n = def
	}
}

func setDur(d *Duration, def time.Duration, set bool) {
	if d.Duration == 0 && !set {
		d.Duration = def
	}
}

func setSize(s *Size, def Size, set bool) {
	if *s == 0 && !set {
		*s = def
	}
}

// sanitizeHostname turns a host name into a valid topic level: anything
// but letters, digits, '.', '_' and '-' becomes '-'.
func sanitizeHostname(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-.")
	if s == "" {
		return "edged"
	}
	return s
}

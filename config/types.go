package config

import (
	"crypto/tls"
	"crypto/x509"
	"regexp"

	"github.com/edged/edged/mqttauth"
)

// Config is the whole of edged.toml. Field comments give the default that
// applyDefaults sets when the key is absent; the README documents each key.
type Config struct {
	Gateway Gateway  `toml:"gateway"`
	Log     Log      `toml:"log"`
	Broker  Broker   `toml:"broker"`
	Modbus  []Bus    `toml:"modbus"`
	Serial  []Serial `toml:"serial"`
	AT      []ATDev  `toml:"at"`
	Uplink  *Uplink  `toml:"uplink"` // nil: no uplink
	Buffer  Buffer   `toml:"buffer"`
	HTTP    HTTP     `toml:"http"`

	HomeAssistant HomeAssistant `toml:"homeassistant"`

	// File is the path the config was loaded from (not a TOML key).
	File string `toml:"-"`
	// Warnings are doubts that do not stop the config from loading, such as
	// an address that looks like 4xxxx register-number notation (not a TOML key).
	Warnings []*Error `toml:"-"`

	lines lineIndex // key paths to lines, for Errorf
}

// Gateway names this gateway and where it keeps state.
type Gateway struct {
	ID       string `toml:"id"`        // default: the host name
	StateDir string `toml:"state_dir"` // default: /var/lib/edged
}

// Log sets the daemon's log output on stderr.
type Log struct {
	Level  string `toml:"level"`  // debug | info (default) | warn | error
	Format string `toml:"format"` // text (default) | json
}

// Broker is the embedded MQTT broker.
type Broker struct {
	Listeners []Listener `toml:"listener"` // default: one tcp listener on 127.0.0.1:1883

	MaxPacketSize Size     `toml:"max_packet_size"` // default 1MiB
	MaxClients    int      `toml:"max_clients"`     // default 1000
	MaxInflight   int      `toml:"max_inflight"`    // QoS 1/2 messages in flight per client, default 64
	MaxQueued     int      `toml:"max_queued"`      // messages queued per client beyond in-flight, default 1000
	SessionExpiry Duration `toml:"session_expiry"`  // how long a persistent session outlives its client, default 168h
	MessageExpiry Duration `toml:"message_expiry"`  // how long a queued message waits for a client, default 168h
	Persist       *bool    `toml:"persist"`         // keep retained messages and sessions in state_dir, default true

	MaxKeepalive      Duration `toml:"max_keepalive"`       // longest keep alive an MQTT 5 client may use, default 5m
	TopicAliasMaximum *int     `toml:"topic_alias_maximum"` // topic aliases an MQTT 5 client may set, default 10; 0: none

	MaxQueuedBytes Size `toml:"max_queued_bytes"` // bytes waiting for one client beyond which its publishers wait, default 8MiB
}

// Listener is one socket of the embedded broker.
type Listener struct {
	Type           string `toml:"type"`            // tcp (default) | tls | ws
	Address        string `toml:"address"`         // host:port; default 127.0.0.1:1883 (tcp), 127.0.0.1:8883 (tls), 127.0.0.1:8080 (ws)
	CertFile       string `toml:"cert_file"`       // tls: server certificate (PEM)
	KeyFile        string `toml:"key_file"`        // tls: its private key (PEM)
	ClientCAFile   string `toml:"client_ca_file"`  // tls: require client certificates signed by this CA
	UsersFile      string `toml:"users_file"`      // mosquitto_passwd file; when set, clients must log in
	ACLFile        string `toml:"acl_file"`        // Mosquitto ACL file
	AllowAnonymous *bool  `toml:"allow_anonymous"` // default: true on loopback without users_file, false otherwise

	// The files above, loaded by validation (not TOML keys): the broker
	// uses these and reads no file itself.
	Certificate *tls.Certificate `toml:"-"` // cert_file and key_file
	ClientCAs   *x509.CertPool   `toml:"-"` // client_ca_file
	Users       *mqttauth.Users  `toml:"-"` // users_file
	ACL         *mqttauth.ACL    `toml:"-"` // acl_file
}

// HTTP is the observation server: Prometheus metrics, health checks and
// the status page. It is off while Address is empty.
type HTTP struct {
	Address        string `toml:"address"`         // host:port; default "": no server
	UsersFile      string `toml:"users_file"`      // mosquitto_passwd file; when set, requests need basic auth
	AllowAnonymous *bool  `toml:"allow_anonymous"` // default: true on loopback without users_file, false otherwise
	CertFile       string `toml:"cert_file"`       // serve HTTPS with this certificate (PEM)
	KeyFile        string `toml:"key_file"`        // and its private key (PEM)

	// Loaded by validation (not TOML keys): users_file, and cert_file with
	// key_file as one pair.
	Users       *mqttauth.Users  `toml:"-"`
	Certificate *tls.Certificate `toml:"-"`
}

// Bus is one Modbus bus: a serial line (RTU) or a TCP endpoint.
type Bus struct {
	Name      string   `toml:"name"`
	Transport string   `toml:"transport"`     // rtu (when port is set) | tcp (when address is set) | rtu-over-tcp
	Port      string   `toml:"port"`          // serial device, e.g. /dev/ttyUSB0
	Address   string   `toml:"address"`       // host:port for tcp and rtu-over-tcp
	Baud      int      `toml:"baud"`          // default 9600
	Parity    string   `toml:"parity"`        // N | E (default) | O
	DataBits  int      `toml:"data_bits"`     // default 8
	StopBits  int      `toml:"stop_bits"`     // default 1
	Timeout   Duration `toml:"timeout"`       // default 1s
	MaxGap    *int     `toml:"max_gap"`       // registers a merged read may skip, default 10
	MaxRegs   int      `toml:"max_registers"` // registers per read, 1..125, default 125
	MaxBits   int      `toml:"max_bits"`      // coils/discrete inputs per read, 1..2000, default 2000
	Devices   []Device `toml:"device"`
}

// Device is one Modbus slave on a bus.
type Device struct {
	Name     string   `toml:"name"`
	Unit     int      `toml:"unit"`          // slave id, 1..247 on a serial line, 0..255 on TCP (default 1)
	Interval Duration `toml:"interval"`      // default 10s
	Timeout  Duration `toml:"timeout"`       // default: the bus timeout
	Topic    string   `toml:"topic"`         // default {gateway}/{device}/{point}
	Payload  string   `toml:"payload"`       // json (default) | value
	Profile  string   `toml:"profile"`       // register map from profiles/NAME.toml
	MaxGap   *int     `toml:"max_gap"`       // default: the bus's
	MaxRegs  int      `toml:"max_registers"` // default: the bus's
	MaxBits  int      `toml:"max_bits"`      // default: the bus's
	Points   []Point  `toml:"points"`        // the profile's points come first when Load returns

	HomeAssistant *HAEntity `toml:"homeassistant"` // false hides the device; a table renames it
}

// Point is one register, coil or value of a Modbus device.
type Point struct {
	Name      string   `toml:"name"`
	Table     string   `toml:"table"`   // holding | input | coil | discrete
	Address   int      `toml:"address"` // 0-based protocol address
	Type      string   `toml:"type"`    // bool (default for coil, discrete) | int16 | uint16 | int32 | uint32 | int64 | uint64 | float32 | float64 | string
	Bit       *int     `toml:"bit"`     // bool from bit N (0..15) of a register
	Length    int      `toml:"length"`  // string: length in registers
	Order     string   `toml:"order"`   // ABCD (default) | CDAB | BADC | DCBA
	Scale     *float64 `toml:"scale"`   // value = raw * scale + offset, default 1
	Offset    float64  `toml:"offset"`
	Precision *int     `toml:"precision"` // decimals kept, 0..15; default: the scale's and offset's decimals (Point.Decimals)
	Unit      string   `toml:"unit"`
	Writable  bool     `toml:"writable"`
	QoS       *int     `toml:"qos"`    // 0 | 1, default 0
	Retain    bool     `toml:"retain"` // default false
	Deadband  float64  `toml:"deadband"`
	Heartbeat Duration `toml:"heartbeat"`

	HomeAssistant *HAEntity `toml:"homeassistant"` // false hides the point; a table renames it
}

// Profile is a reusable register map: configs/profiles/NAME.toml. The line
// settings are the device's factory ones (0 or "": not stated); check warns
// when a serial bus disagrees, and Unit is a device's default unit. MaxRegs
// lowers a device's max_registers when the device sets none.
type Profile struct {
	Description  string  `toml:"description"`
	Manufacturer string  `toml:"manufacturer"` // shown in Home Assistant's device page
	Model        string  `toml:"model"`
	Baud         int     `toml:"baud"`
	Parity       string  `toml:"parity"`
	StopBits     int     `toml:"stop_bits"`
	Unit         int     `toml:"unit"`
	MaxRegs      int     `toml:"max_registers"` // the most registers the device answers in one read
	Points       []Point `toml:"points"`
}

// SerialPort holds the line settings shared by every serial device.
type SerialPort struct {
	Port     string `toml:"port"`
	Baud     int    `toml:"baud"`      // default 9600 ([[serial]]), 115200 ([[at]])
	Parity   string `toml:"parity"`    // N (default) | E | O
	DataBits int    `toml:"data_bits"` // default 8
	StopBits int    `toml:"stop_bits"` // default 1
}

// Serial is a raw UART device speaking a line or frame protocol.
type Serial struct {
	Name string `toml:"name"`
	SerialPort
	Delimiter string   `toml:"delimiter"` // frame end, escapes allowed; default: LF with optional CR
	Start     string   `toml:"start"`     // frame start byte(s), with end
	End       string   `toml:"end"`       // frame end byte(s), with start
	MaxFrame  Size     `toml:"max_frame"` // default 4096
	Patterns  []string `toml:"patterns"`  // regexps with named groups
	Raw       bool     `toml:"raw"`       // publish unmatched frames on {gateway}/{device}/raw
	Request   string   `toml:"request"`   // sent every interval, escapes allowed
	Interval  Duration `toml:"interval"`  // with request, default 30s
	Writable  bool     `toml:"writable"`  // {gateway}/{device}/tx is written to the port
	Topic     string   `toml:"topic"`     // default {gateway}/{device}/{point}
	Payload   string   `toml:"payload"`   // json (default) | value

	HomeAssistant *HAEntity `toml:"homeassistant"` // false hides the device; a table renames it

	// Resolved by validation (not TOML keys), so the adapter decodes and
	// compiles nothing: delimiter, start, end and request with their
	// escapes decoded (nil when unset), and patterns compiled, in order.
	DelimiterBytes []byte           `toml:"-"`
	StartBytes     []byte           `toml:"-"`
	EndBytes       []byte           `toml:"-"`
	RequestBytes   []byte           `toml:"-"`
	Regexps        []*regexp.Regexp `toml:"-"`
}

// ATDev is a module driven by AT commands.
type ATDev struct {
	Name string `toml:"name"`
	SerialPort
	Init        []string  `toml:"init"`     // sent after every open; each command is trimmed of surrounding spaces (as are queries' and reset)
	Interval    Duration  `toml:"interval"` // between query rounds, default 30s
	Timeout     Duration  `toml:"timeout"`  // default per-command timeout, default 2s
	Queries     []ATQuery `toml:"queries"`
	URCs        []ATURC   `toml:"urcs"`
	Reset       string    `toml:"reset"`        // e.g. AT+RST
	ResetAfter  int       `toml:"reset_after"`  // consecutive timeouts, default 3
	RawCommands *bool     `toml:"raw_commands"` // {gateway}/{device}/at, default true
	Topic       string    `toml:"topic"`        // default {gateway}/{device}/{point}
	Payload     string    `toml:"payload"`      // json (default) | value

	HomeAssistant *HAEntity `toml:"homeassistant"` // false hides the device; a table renames it
}

// ATQuery is a command sent every interval and the pattern its reply is parsed with.
type ATQuery struct {
	Command string   `toml:"command"`
	Pattern string   `toml:"pattern"`
	Timeout Duration `toml:"timeout"` // default: the device's timeout

	Regexp *regexp.Regexp `toml:"-"` // pattern, compiled by validation; nil without one
}

// ATURC is an unsolicited result code to recognise.
type ATURC struct {
	Pattern string `toml:"pattern"`

	Regexp *regexp.Regexp `toml:"-"` // pattern, compiled by validation
}

// Uplink is the connection to the upstream broker.
type Uplink struct {
	URL                string     `toml:"url"`       // mqtt:// | mqtts:// | ws:// | wss://
	URLs               []string   `toml:"urls"`      // instead of url: servers tried in turn
	ClientID           string     `toml:"client_id"` // default: gateway id
	Username           string     `toml:"username"`
	Password           string     `toml:"password"`
	PasswordFile       string     `toml:"password_file"`
	CAFile             string     `toml:"ca_file"` // default: the system's roots
	CertFile           string     `toml:"cert_file"`
	KeyFile            string     `toml:"key_file"`
	ServerName         string     `toml:"server_name"`
	InsecureSkipVerify bool       `toml:"insecure_skip_verify"`
	Keepalive          Duration   `toml:"keepalive"`         // default 30s
	MaxBackoff         Duration   `toml:"max_backoff"`       // default 10s
	Inflight           int        `toml:"inflight"`          // QoS 1 publishes in flight upstream, default 64
	AckTimeout         Duration   `toml:"ack_timeout"`       // silence after a publish that ends a connection, default 5s
	DeadLetterAfter    int        `toml:"dead_letter_after"` // upstream drops before a message is set aside, default 3
	BufferQoS0         bool       `toml:"buffer_qos0"`
	Forward            []Forward  `toml:"forward"`
	Downlink           []Downlink `toml:"downlink"`

	// An IoT cloud's login, computed at every connect (see cloudauth).
	Cloud         string   `toml:"cloud"`           // onenet | aliyun | azure | aws
	ProductID     string   `toml:"product_id"`      // onenet
	ProductKey    string   `toml:"product_key"`     // aliyun
	DeviceName    string   `toml:"device_name"`     // every cloud: device name, device id, thing name
	DeviceKeyFile string   `toml:"device_key_file"` // onenet, aliyun (DeviceSecret), azure
	Region        string   `toml:"region"`          // aliyun, e.g. cn-shanghai (for the default url)
	Hub           string   `toml:"hub"`             // azure: hub name or host name
	TokenLifetime Duration `toml:"token_lifetime"`  // onenet, azure; default 1h

	// LoginPassword is what the uplink logs in with (not a TOML key):
	// password, or what validation read from password_file, its trailing
	// line breaks dropped. The bridge reads no file for it.
	LoginPassword Secret `toml:"-" json:"-"`
}

// Forward sends local topics matching Local upstream.
type Forward struct {
	Local        string `toml:"local"`
	RemotePrefix string `toml:"remote_prefix"`
	QoS          *int   `toml:"qos"` // 0 | 1, default 1
	// Format "onenet" | "aliyun" posts each reading as a property of the
	// cloud device on the cloud's property-post topic.
	Format string `toml:"format"`
}

// Secret is a password config loaded. It prints as [hidden] with any verb
// of package fmt (a log line, a %+v of the config): string(s) is the only
// way to read it.
type Secret string

// String hides the secret.
func (Secret) String() string { return "[hidden]" }

// GoString hides the secret from %#v.
func (Secret) GoString() string { return `"[hidden]"` }

// Downlink brings remote topics matching Remote into the local broker.
type Downlink struct {
	Remote      string `toml:"remote"`
	StripPrefix string `toml:"strip_prefix"`
	LocalPrefix string `toml:"local_prefix"`
	QoS         *int   `toml:"qos"` // default 1
	// Format "onenet" | "aliyun" takes the cloud's property-set messages
	// (remote is then the cloud's set topic) and writes each property to
	// local_prefix + name + "/set".
	Format string `toml:"format"`
}

// Buffer bounds the store-and-forward queue.
type Buffer struct {
	MaxBytes   Size     `toml:"max_bytes"`  // default 256MiB
	MaxAge     Duration `toml:"max_age"`    // default 168h
	WhenFull   string   `toml:"when_full"`  // drop-oldest (default) | reject
	Durability string   `toml:"durability"` // full (default) | power-loss-unsafe ("normal" is its old name)
}

// HomeAssistant is MQTT discovery for Home Assistant: every device and
// point announced as a Home Assistant device and entity.
type HomeAssistant struct {
	Enabled bool   `toml:"enabled"` // default false
	Prefix  string `toml:"prefix"`  // discovery prefix, default homeassistant
}

// HAEntity is the homeassistant key of a device or a point: false hides it
// from Home Assistant, a table names it. DeviceClass and Icon are a point's;
// Manufacturer and Model a device's (a profile's are the default).
type HAEntity struct {
	Hidden       bool   `toml:"-"` // homeassistant = false
	Name         string `toml:"name"`
	DeviceClass  string `toml:"device_class"`
	Icon         string `toml:"icon"`
	Manufacturer string `toml:"manufacturer"`
	Model        string `toml:"model"`
}

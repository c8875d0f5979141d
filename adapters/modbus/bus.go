package modbus

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/edged/edged/adapters/internal/mqttdevice"
	"github.com/edged/edged/adapters/internal/pointstate"
	"github.com/edged/edged/config"
	"github.com/edged/edged/liveness"
)

// Publisher takes readings out of the adapter; the broker's inline client
// satisfies it.
type Publisher = mqttdevice.Publisher

// Subscriber delivers `<point topic>/set` messages to the adapter. It may be
// nil, and then no point is writable over MQTT.
type Subscriber = mqttdevice.Subscriber

// Defaults applied when a key is absent (config.Load applies the same; the
// adapter repeats them so that a zero value never reaches the wire).
const (
	defaultBaud     = 9600
	defaultTimeout  = time.Second
	defaultInterval = 10 * time.Second
	defaultMaxGap   = 10
	defaultMaxRegs  = 125  // the protocol's limit for FC 3/4
	defaultMaxBits  = 2000 // the protocol's limit for FC 1/2
	offlineAfter    = 3    // consecutive failed cycles before a device is offline
	// stallMargin is added to a device's timeout to bound one transaction
	// for the watchdog (package liveness): it covers the client library's
	// fixed 5 s TCP dial and a busy machine, and stays well under systemd's
	// WatchdogSec = 30 (packaging/edged.service).
	stallMargin = 10 * time.Second
)

// Bus polls the devices of one Modbus bus (a serial line or a TCP endpoint)
// and publishes their points. One goroutine, the one in Run, owns the
// connection; everything else talks to it through channels.
type Bus struct {
	name      string
	transport string // rtu | tcp | rtu-over-tcp
	target    string // serial device or host:port
	cfg       config.Bus
	gateway   string
	out       *mqttdevice.Out
	sub       Subscriber
	log       *slog.Logger
	devices   []*device
	writes    chan writeReq
	live      *liveness.Set // one loop per device, added by Run

	mu    sync.Mutex // guards stats
	stats Stats
}

// Stats are the counters of one bus, per device. They only grow.
type Stats struct {
	Bus     string
	Opens   uint64  // successful opens of the port or connection
	Latency Latency // every transaction's duration; Latency.Sum is the time the bus was busy
	Devices []DeviceStats
}

// DeviceStats counts what happened on the wire for one device.
type DeviceStats struct {
	Device      string
	Online      bool
	Cycles      uint64 // poll cycles run
	Requests    uint64 // Modbus transactions sent (reads and writes)
	BytesOut    uint64 // ADU bytes sent (MBAP header or address+CRC included)
	BytesIn     uint64 // ADU bytes received
	Timeouts    uint64
	Exceptions  uint64 // exception responses
	Errors      uint64 // other failures: CRC, framing, I/O, port gone
	Overruns    uint64 // cycles that started late because the last one ran long
	Splits      uint64 // merged reads split after Illegal Data Address
	Writes      uint64 // writes done
	WriteErrors uint64 // writes refused or failed
}

// device is one slave with its plan and the state the poller keeps for it.
type device struct {
	name     string
	unit     uint8
	interval time.Duration
	timeout  time.Duration
	maxGap   int
	maxRegs  int
	maxBits  int
	points   []*point
	reads    []*read
	idx      int            // index into Bus.stats.Devices
	live     *liveness.Loop // busy during each of its transactions; set by Run

	// poller state
	next        time.Time
	failures    int
	status      *mqttdevice.Status
	overrunning bool // an overrun was logged and not yet recovered
	backoff     time.Duration
}

// point is one configured value with its decoded settings and the state of
// what was last published for it.
type point struct {
	name     string
	table    Table
	addr     uint16
	typ      Type
	bit      int // -1 unless a bool taken from a register bit
	length   int // string length in registers
	order    Order
	scale    float64
	offset   float64
	rounds   bool // a float value is rounded to decimals decimals
	decimals int
	writable bool

	mqtt mqttdevice.Point // topic, unit, qos, retain, deadband and what was last published
}

// span is the number of registers (or bits) the point occupies.
func (p *point) span() int {
	if p.table.isBits() {
		return 1
	}
	return p.typ.words(p.length)
}

// New validates a bus's config, applies defaults to zero values and builds
// the read plan of every device. gateway fills {gateway} in topics. sub may
// be nil (no writes over MQTT).
func New(bus config.Bus, gateway string, pub Publisher, sub Subscriber, log *slog.Logger) (*Bus, error) {
	if pub == nil {
		return nil, errors.New("modbus: nil publisher")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{
		name:    bus.Name,
		cfg:     bus,
		gateway: gateway,
		sub:     sub,
		writes:  make(chan writeReq, 64),
		live:    liveness.NewSet(nil),
	}
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("modbus bus %q: %s: %s", bus.Name, key, fmt.Sprintf(format, args...)))
	}
	b.transport = bus.Transport
	switch {
	case b.transport == "" && bus.Port != "":
		b.transport = "rtu"
	case b.transport == "" && bus.Address != "":
		b.transport = "tcp"
	}
	switch b.transport {
	case "rtu":
		b.target = bus.Port
		if bus.Port == "" {
			bad("port", "an RTU bus needs a serial port (port = \"/dev/ttyUSB0\")")
		}
		switch strings.ToUpper(bus.Parity) {
		case "", "N", "E", "O":
		default:
			bad("parity", "%q is not one of N, E, O", bus.Parity)
		}
	case "tcp", "rtu-over-tcp":
		b.target = bus.Address
		if bus.Address == "" {
			bad("address", "a %s bus needs address = \"host:port\"", b.transport)
		}
	case "":
		bad("port", "set port (RTU) or address (Modbus TCP)")
	default:
		bad("transport", "%q is not one of rtu, tcp, rtu-over-tcp", bus.Transport)
	}
	if b.name == "" {
		b.name = b.target
	}
	b.log = log.With("adapter", "modbus", "bus", b.name)
	b.out = mqttdevice.NewOut(pub, b.log)
	b.stats.Bus = b.name
	if bus.Timeout.Duration <= 0 {
		bus.Timeout.Duration = defaultTimeout
	}
	busGap := defaultMaxGap
	if bus.MaxGap != nil {
		busGap = *bus.MaxGap
	}
	names := map[string]bool{}
	for i, dc := range bus.Devices {
		key := fmt.Sprintf("device[%d]", i)
		d := &device{name: dc.Name, interval: dc.Interval.Duration, timeout: dc.Timeout.Duration,
			maxGap: busGap, maxRegs: firstPositive(dc.MaxRegs, bus.MaxRegs, defaultMaxRegs),
			maxBits: firstPositive(dc.MaxBits, bus.MaxBits, defaultMaxBits), idx: i}
		if dc.MaxGap != nil {
			d.maxGap = *dc.MaxGap
		}
		if d.maxGap < 0 {
			d.maxGap = 0
		}
		d.maxRegs = min(d.maxRegs, defaultMaxRegs)
		d.maxBits = min(d.maxBits, defaultMaxBits)
		if d.name == "" {
			bad(key+".name", "a device needs a name")
		} else if names[d.name] {
			bad(key+".name", "%q is used by another device of this bus", d.name)
		}
		names[d.name] = true
		switch {
		case dc.Unit == 0 && b.transport == "rtu":
			d.unit = 1 // 0 is broadcast on a serial line: nobody answers a read
		case dc.Unit < 0 || dc.Unit > 255:
			bad(key+".unit", "%d is not a unit id (0..247)", dc.Unit)
		default:
			d.unit = uint8(dc.Unit)
		}
		if d.interval <= 0 {
			d.interval = defaultInterval
		}
		if d.timeout <= 0 {
			d.timeout = bus.Timeout.Duration
		}
		d.status = mqttdevice.NewStatus(b.out, gateway, d.name, b.log.With("device", d.name))
		tmpl, format, err := mqttdevice.Output(dc.Topic, dc.Payload)
		if err != nil {
			bad(key, "%v", err)
		}
		pnames := map[string]bool{}
		for j, pc := range dc.Points {
			pkey := fmt.Sprintf("%s.points[%d]", key, j)
			p, err := newPoint(pc)
			if err != nil {
				bad(pkey, "%v", err)
				continue
			}
			if pnames[p.name] {
				bad(pkey+".name", "%q is used by another point of this device", p.name)
				continue
			}
			pnames[p.name] = true
			// config.Load already warned about a 4xxxx-looking address;
			// the point's read error repeats the hint if the device refuses it.
			p.mqtt.Device, p.mqtt.Topic, p.mqtt.Format = d.name, tmpl.Expand(gateway, d.name, p.name), format
			d.points = append(d.points, p)
		}
		d.reads = planReads(d.points, d.maxGap, d.maxRegs, d.maxBits)
		b.devices = append(b.devices, d)
		b.stats.Devices = append(b.stats.Devices, DeviceStats{Device: d.name})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b.cfg.Timeout = bus.Timeout
	return b, nil
}

func firstPositive(v ...int) int {
	for _, x := range v {
		if x > 0 {
			return x
		}
	}
	return 0
}

// newPoint checks one point's config and resolves its defaults.
func newPoint(pc config.Point) (*point, error) {
	if pc.Name == "" {
		return nil, errors.New("name: a point needs a name")
	}
	if strings.ContainsAny(pc.Name, "+#/") {
		return nil, fmt.Errorf("name: %q may not contain +, # or /", pc.Name)
	}
	p := &point{name: pc.Name, bit: -1, scale: 1, offset: pc.Offset, writable: pc.Writable,
		mqtt: mqttdevice.Point{Name: pc.Name, Unit: pc.Unit, Retain: pc.Retain,
			State: pointstate.State{Deadband: pc.Deadband, Heartbeat: pc.Heartbeat.Duration}}}
	var err error
	if p.table, err = parseTable(pc.Table); err != nil {
		return nil, fmt.Errorf("table: %w", err)
	}
	typ := pc.Type
	if typ == "" && p.table.isBits() {
		typ = "bool"
	}
	if p.typ, err = parseType(typ); err != nil {
		return nil, fmt.Errorf("type: %w", err)
	}
	if p.order, err = parseOrder(pc.Order); err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	if pc.Scale != nil {
		p.scale = *pc.Scale
		if p.scale == 0 {
			return nil, errors.New("scale: 0 would make every reading 0 (leave it out for 1)")
		}
	}
	switch {
	case pc.Precision != nil:
		if *pc.Precision < 0 || *pc.Precision > maxDecimals {
			return nil, fmt.Errorf("precision: %d is not 0..%d", *pc.Precision, maxDecimals)
		}
		p.rounds, p.decimals = true, *pc.Precision
	case p.scale != 1 || p.offset != 0:
		p.rounds, p.decimals = true, max(decimalsOf(p.scale), decimalsOf(p.offset))
	}
	if pc.QoS != nil {
		if *pc.QoS < 0 || *pc.QoS > 1 {
			return nil, fmt.Errorf("qos: %d is not 0 or 1", *pc.QoS)
		}
		p.mqtt.QoS = byte(*pc.QoS)
	}
	if p.table.isBits() && p.typ != Bool {
		return nil, fmt.Errorf("type: a %s holds bits; use type = \"bool\"", p.table)
	}
	if pc.Bit != nil {
		if p.table.isBits() || p.typ != Bool {
			return nil, errors.New("bit: only a bool point of a holding or input register takes bit = N")
		}
		if *pc.Bit < 0 || *pc.Bit > 15 {
			return nil, fmt.Errorf("bit: %d is not 0..15", *pc.Bit)
		}
		p.bit = *pc.Bit
	} else if p.typ == Bool && !p.table.isBits() {
		return nil, errors.New("bit: a bool point of a register needs bit = N (0..15)")
	}
	if p.typ == String {
		if pc.Length <= 0 || pc.Length > defaultMaxRegs {
			return nil, fmt.Errorf("length: a string needs length = 1..%d registers", defaultMaxRegs)
		}
		p.length = pc.Length
	}
	if p.writable && (p.table == Input || p.table == Discrete) {
		return nil, fmt.Errorf("writable: %s is read-only in Modbus", p.table)
	}
	if pc.Address < 0 || pc.Address+p.span() > 65536 {
		hint := ""
		if pc.Address >= 300001 || (pc.Address >= 30001 && pc.Address <= 49999) {
			hint = " (this looks like 3xxxx/4xxxx notation: write the 0-based protocol address, e.g. 40001 is table = \"holding\", address = 0)"
		}
		return nil, fmt.Errorf("address: %d is outside 0..65535%s", pc.Address, hint)
	}
	p.addr = uint16(pc.Address)
	return p, nil
}

// looksLikeRegisterNumber reports an address that is valid but is more
// likely a manual's 3xxxx (input) or 4xxxx (holding) register number.
func looksLikeRegisterNumber(p *point) bool {
	a := int(p.addr)
	return (p.table == Input && a >= 30001 && a <= 39999) || (p.table == Holding && a >= 40001 && a <= 49999)
}

// Stalled reports a transaction that has lasted longer than its device's
// timeout plus a margin (nil while the bus polls or waits), so the daemon
// stops pinging the systemd watchdog while the bus is stuck.
func (b *Bus) Stalled() error { return b.live.Check() }

// Stats returns a copy of the bus's counters. It is safe to call from any
// goroutine.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Devices = append([]DeviceStats(nil), b.stats.Devices...)
	for i, d := range b.devices {
		s.Devices[i].Online = d.status.Online()
	}
	return s
}

// count updates the stats of device d under the lock.
func (b *Bus) count(d *device, f func(*DeviceStats)) {
	b.mu.Lock()
	f(&b.stats.Devices[d.idx])
	b.mu.Unlock()
}

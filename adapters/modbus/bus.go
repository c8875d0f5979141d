package modbus

import (
	"errors"
	"fmt"
	"log/slog"
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

// Protocol limits and the poller's settings.
const (
	maxReadRegs  = 125  // the protocol's limit for FC 3/4
	maxReadBits  = 2000 // the protocol's limit for FC 1/2
	offlineAfter = 3    // consecutive failed cycles before a device is offline
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

// New prepares a bus for cfg as config.Load (or config.Check) validated and
// completed it, and builds the read plan of every device: it converts and
// allocates, and refuses only a nil publisher and a config that skipped
// config. gateway fills {gateway} in topics. sub may be nil (no writes over
// MQTT).
func New(bus config.Bus, gateway string, pub Publisher, sub Subscriber, log *slog.Logger) (*Bus, error) {
	if pub == nil {
		return nil, errors.New("modbus: nil publisher")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := completed(bus); err != nil {
		return nil, fmt.Errorf("modbus bus %q: %w (a config from config.Load or config.Check has it)", bus.Name, err)
	}
	b := &Bus{
		name:      bus.Name,
		transport: bus.Transport,
		target:    bus.Target(),
		cfg:       bus,
		gateway:   gateway,
		sub:       sub,
		writes:    make(chan writeReq, 64),
		live:      liveness.NewSet(nil),
	}
	b.log = log.With("adapter", "modbus", "bus", b.name)
	b.out = mqttdevice.NewOut(pub, b.log)
	b.stats.Bus = b.name
	for i, dc := range bus.Devices {
		d := &device{name: dc.Name, unit: uint8(dc.Unit), interval: dc.Interval.Duration, timeout: dc.Timeout.Duration,
			maxGap: *dc.MaxGap, maxRegs: dc.MaxRegs, maxBits: dc.MaxBits, idx: i}
		d.status = mqttdevice.NewStatus(b.out, gateway, d.name, b.log.With("device", d.name))
		tmpl, format := mqttdevice.Output(dc.Topic, dc.Payload)
		for _, pc := range dc.Points {
			p, err := newPoint(pc)
			if err != nil {
				return nil, fmt.Errorf("modbus bus %q: device %q: %w", bus.Name, dc.Name, err)
			}
			// config.Load already warned about a 4xxxx-looking address;
			// the point's read error repeats the hint if the device refuses it.
			p.mqtt.Device, p.mqtt.Topic, p.mqtt.Format = d.name, tmpl.Expand(gateway, d.name, p.name), format
			d.points = append(d.points, p)
		}
		d.reads = planReads(d.points, d.maxGap, d.maxRegs, d.maxBits)
		b.devices = append(b.devices, d)
		b.stats.Devices = append(b.stats.Devices, DeviceStats{Device: d.name})
	}
	return b, nil
}

// completed refuses a bus whose defaults were never applied: only a config
// built in code without config.Check has one, and its zeros would poll
// without pause or wait forever.
func completed(bus config.Bus) error {
	if bus.Transport == "" || bus.Timeout.Duration <= 0 {
		return errors.New("transport or timeout not set")
	}
	for _, d := range bus.Devices {
		if d.Interval.Duration <= 0 || d.Timeout.Duration <= 0 || d.MaxGap == nil || d.MaxRegs <= 0 || d.MaxBits <= 0 {
			return fmt.Errorf("device %q: interval, timeout or read limits not set", d.Name)
		}
	}
	return nil
}

// newPoint converts one point that config validated and completed.
func newPoint(pc config.Point) (*point, error) {
	table, terr := parseTable(pc.Table)
	typ, yerr := parseType(pc.Type)
	order, oerr := parseOrder(pc.Order)
	if err := errors.Join(terr, yerr, oerr); err != nil || pc.Scale == nil || pc.QoS == nil {
		return nil, fmt.Errorf("point %q: not validated or completed by config (%v)", pc.Name, err)
	}
	p := &point{name: pc.Name, table: table, addr: uint16(pc.Address), typ: typ, bit: -1, order: order,
		scale: *pc.Scale, offset: pc.Offset, writable: pc.Writable,
		mqtt: mqttdevice.Point{Name: pc.Name, Unit: pc.Unit, QoS: byte(*pc.QoS), Retain: pc.Retain,
			State: pointstate.State{Deadband: pc.Deadband, Heartbeat: pc.Heartbeat.Duration}}}
	if pc.Bit != nil {
		p.bit = *pc.Bit
	}
	if typ == String {
		p.length = pc.Length
	}
	if d := pc.Decimals(); d != nil {
		p.rounds, p.decimals = true, *d
	}
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

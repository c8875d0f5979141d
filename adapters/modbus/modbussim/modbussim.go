package modbussim

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/edged/edged/config"
)

// Input register addresses (0-based) of the simulated values, as on an SDM120.
const (
	regVoltage       = 0
	regCurrent       = 6
	regActivePower   = 12
	regApparentPower = 18
	regReactivePower = 24
	regPowerFactor   = 30
	regFrequency     = 70
	regImportEnergy  = 72
	regTotalEnergy   = 342
	inputRegisters   = 346
	coilRelay        = 0 // switches a 1.8 kW heater on top of the base load
)

// meter is the simulated physics, advanced lazily to the time of each read.
type meter struct {
	mu       sync.Mutex
	rng      *rand.Rand
	start    time.Time
	last     time.Time
	base     float64 // slowly drifting base load current, A
	relay    bool
	energy   float64 // kWh
	voltage  float64
	current  float64
	pf       float64
	freq     float64
	regs     [inputRegisters]uint16
	now      func() time.Time
	readings uint64
}

func newMeter(now func() time.Time, seed uint64) *meter {
	t := now()
	m := &meter{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), start: t, last: t,
		base: 2.5, energy: 1234.5, now: now}
	m.advance(t)
	return m
}

// advance moves the simulation to t: energy integrates the power of the
// interval just ended, then new instantaneous values are drawn.
func (m *meter) advance(t time.Time) {
	dt := t.Sub(m.last).Hours()
	if dt > 0 {
		m.energy += m.voltage * m.current * m.pf / 1000 * dt
	}
	m.last = t
	el := t.Sub(m.start).Seconds()
	// Base load: a daily-looking swell compressed into ten minutes plus a
	// random walk, bounded so it stays a household.
	m.base = math.Min(12, math.Max(0.3, m.base+m.rng.NormFloat64()*0.08))
	i := m.base * (1 + 0.25*math.Sin(2*math.Pi*el/600))
	if m.relay {
		i += 1800.0 / 230
	}
	m.current = i * (1 + m.rng.NormFloat64()*0.01)
	m.voltage = 230 + 3*math.Sin(2*math.Pi*el/900) - 0.15*i + m.rng.NormFloat64()*0.4
	m.pf = math.Min(1, 0.93+0.03*math.Sin(2*math.Pi*el/300)+m.rng.NormFloat64()*0.005)
	if m.relay {
		m.pf = math.Min(1, m.pf+0.05) // a resistive load pulls pf up
	}
	m.freq = 50 + m.rng.NormFloat64()*0.015
	p := m.voltage * m.current * m.pf
	s := m.voltage * m.current
	q := math.Sqrt(math.Max(0, s*s-p*p))
	m.put(regVoltage, m.voltage)
	m.put(regCurrent, m.current)
	m.put(regActivePower, p)
	m.put(regApparentPower, s)
	m.put(regReactivePower, q)
	m.put(regPowerFactor, m.pf)
	m.put(regFrequency, m.freq)
	m.put(regImportEnergy, m.energy)
	m.put(regTotalEnergy, m.energy)
}

func (m *meter) put(addr int, v float64) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], math.Float32bits(float32(v)))
	m.regs[addr] = binary.BigEndian.Uint16(b[0:])
	m.regs[addr+1] = binary.BigEndian.Uint16(b[2:])
}

// HandleInputRegisters serves the meter's values.
func (m *meter) HandleInputRegisters(req *mb.InputRegistersRequest) ([]uint16, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	end := int(req.Addr) + int(req.Quantity)
	if req.UnitId != 1 && req.UnitId != 0 && req.UnitId != 0xff {
		return nil, mb.ErrGWTargetFailedToRespond
	}
	if end > inputRegisters {
		return nil, mb.ErrIllegalDataAddress
	}
	// A new reading at most every 100ms, like a meter's own update rate.
	if t := m.now(); t.Sub(m.last) >= 100*time.Millisecond {
		m.advance(t)
	}
	m.readings++
	return append([]uint16(nil), m.regs[req.Addr:end]...), nil
}

// HandleCoils serves and switches the relay.
func (m *meter) HandleCoils(req *mb.CoilsRequest) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if int(req.Addr)+int(req.Quantity) > coilRelay+1 {
		return nil, mb.ErrIllegalDataAddress
	}
	if req.IsWrite {
		m.relay = req.Args[0]
		return nil, nil
	}
	return []bool{m.relay}, nil
}

// HandleHoldingRegisters refuses: the simulated meter has none.
func (m *meter) HandleHoldingRegisters(*mb.HoldingRegistersRequest) ([]uint16, error) {
	return nil, mb.ErrIllegalDataAddress
}

// HandleDiscreteInputs refuses: the simulated meter has none.
func (m *meter) HandleDiscreteInputs(*mb.DiscreteInputsRequest) ([]bool, error) {
	return nil, mb.ErrIllegalDataAddress
}

// Start serves the simulated meter as Modbus TCP unit 1 on addr (use
// "127.0.0.1:0" for a free port) until ctx ends, and returns the address it
// listens on.
func Start(ctx context.Context, addr string) (boundAddr string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("modbussim: address %q: %w", addr, err)
	}
	m := newMeter(time.Now, uint64(time.Now().UnixNano()))
	// The server library does not report the port it bound, so a wildcard
	// port is resolved first; a lost race for it is retried.
	for attempt := 0; ; attempt++ {
		bound := addr
		if port == "0" || port == "" {
			l, lerr := net.Listen("tcp", net.JoinHostPort(host, "0"))
			if lerr != nil {
				return "", fmt.Errorf("modbussim: listen %s: %w", addr, lerr)
			}
			bound = l.Addr().String()
			l.Close()
		}
		srv, serr := mb.NewServer(&mb.ServerConfiguration{
			URL:        "tcp://" + bound,
			Timeout:    5 * time.Minute,
			MaxClients: 8,
			Logger:     log.New(io.Discard, "", 0),
		}, m)
		if serr == nil {
			serr = srv.Start()
		}
		if serr != nil {
			if (port == "0" || port == "") && attempt < 5 {
				continue
			}
			return "", fmt.Errorf("modbussim: serve %s: %w", bound, serr)
		}
		go func() {
			<-ctx.Done()
			_ = srv.Stop()
		}()
		return bound, nil
	}
}

// DemoBus is the bus `edged demo` polls: the simulated meter at addr as
// device "meter", every 2 s, with its relay writable on
// `{gateway}/meter/relay/set`.
func DemoBus(addr string) config.Bus {
	f := func(name string, address int, unit string, deadband float64) config.Point {
		return config.Point{Name: name, Table: "input", Address: address, Type: "float32", Unit: unit,
			Deadband: deadband, Heartbeat: config.Duration{Duration: time.Minute}}
	}
	return config.Bus{
		Name:      "demo",
		Transport: "tcp",
		Address:   addr,
		Timeout:   config.Duration{Duration: time.Second},
		Devices: []config.Device{{
			Name:     "meter",
			Unit:     1,
			Interval: config.Duration{Duration: 2 * time.Second},
			Points: []config.Point{
				f("voltage", regVoltage, "V", 0),
				f("current", regCurrent, "A", 0),
				f("active_power", regActivePower, "W", 0),
				f("power_factor", regPowerFactor, "", 0),
				f("frequency", regFrequency, "Hz", 0),
				f("total_active_energy", regTotalEnergy, "kWh", 0),
				{Name: "relay", Table: "coil", Address: coilRelay, Type: "bool", Writable: true},
			},
		}},
	}
}

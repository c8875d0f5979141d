package modbus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/edged/edged/config"
)

// Client runs single transactions on one bus, for the commissioning
// commands (edged modbus scan, read, write): no poll plan, no MQTT, one
// request at a time, with the bus's line settings, framing and error
// classes. It is not safe for concurrent use.
type Client struct {
	b *Bus
	l *link
	d *device // the unit of the current request
}

// discard is the Publisher of a Client's Bus: a client publishes nothing.
type discard struct{}

func (discard) Publish(string, []byte, byte, bool) error { return nil }

// NewClient prepares a client for bus as config.Load (or config.Check)
// validated and completed it (its devices are ignored); the port or
// connection opens on the first request. bus.Timeout bounds every request.
func NewClient(bus config.Bus, log *slog.Logger) (*Client, error) {
	bus.Devices = nil
	b, err := New(bus, "", discard{}, nil, log)
	if err != nil {
		return nil, err
	}
	b.stats.Devices = []DeviceStats{{}}
	d := &device{name: "unit", timeout: b.cfg.Timeout.Duration}
	return &Client{b: b, l: newLink(b), d: d}, nil
}

// Close closes the port or connection.
func (c *Client) Close() { c.l.closeAll() }

// Target is the serial port or host:port the client talks to.
func (c *Client) Target() string { return c.b.target }

// Transport is rtu, tcp or rtu-over-tcp.
func (c *Client) Transport() string { return c.b.transport }

// Timeout is how long each request waits for its answer.
func (c *Client) Timeout() time.Duration { return c.d.timeout }

// Read reads count registers (holding, input) or bits (coil, discrete) of
// unit from start. It returns the registers' bytes as they came off the
// wire, or the bits. Its error wraps ErrTimeout, ErrNotOpen or an
// ExceptionError, and names the unit and the read.
func (c *Client) Read(unit uint8, t Table, start, count uint16) (regs []byte, bits []bool, err error) {
	if count == 0 {
		return nil, nil, errors.New("count 0: nothing to read")
	}
	limit := maxReadRegs
	if t.isBits() {
		limit = maxReadBits
	}
	if int(count) > limit || int(start)+int(count) > 65536 {
		return nil, nil, fmt.Errorf("%d %s from %d: one request reads at most %d, ending at 65535", count, t.plural(), start, limit)
	}
	c.d.unit = unit
	r := &read{table: t, start: start, count: count}
	regs, bits, _, err = c.b.readOnce(c.l, c.d, r)
	if err != nil {
		return nil, nil, fmt.Errorf("unit %d: read %s: %w", unit, r, err)
	}
	return regs, bits, nil
}

// Probe asks unit for holding register 0, the request every device
// understands. Any answer — an exception too — means a device is there;
// present is false when nothing came back in time. err is the answer's
// exception or the reason nothing came back.
func (c *Client) Probe(unit uint8) (present bool, err error) {
	c.d.unit = unit
	_, _, class, err := c.b.readOnce(c.l, c.d, &read{table: Holding, start: 0, count: 1})
	return class == classOK || class == classException, err
}

// Write writes value, as text ("42", "-3.5", "true", "on"), to the point
// pc describes (table, address, type, order, scale) on unit, then reads the
// point back and returns what the device now holds. pc is a writable point
// config.CheckPoint completed and checked. The error wraps ErrTimeout,
// ErrNotOpen or an ExceptionError; a value the point cannot take is refused
// before anything is sent.
func (c *Client) Write(unit uint8, pc config.Point, value string) (readBack any, err error) {
	p, err := newPoint(pc)
	if err != nil {
		return nil, err
	}
	v, err := parseSetPayload([]byte(value))
	if err != nil {
		return nil, err
	}
	c.d.unit = unit
	where := fmt.Sprintf("unit %d: write coil %d", unit, p.addr)
	if p.table == Holding {
		where = fmt.Sprintf("unit %d: write holding register %d", unit, p.addr)
	}
	if _, err := c.b.writePoint(c.l, c.d, p, v); err != nil {
		var bad valueError
		if errors.As(err, &bad) {
			return nil, fmt.Errorf("%s: %w", where, bad.err)
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	r := &read{table: p.table, start: p.addr, count: uint16(p.span()), points: []*point{p}}
	regs, bits, _, err := c.b.readOnce(c.l, c.d, r)
	if err != nil {
		return nil, fmt.Errorf("unit %d: written, but read back %s: %w", unit, r, err)
	}
	return decodePoint(p, r.start, regs, bits)
}

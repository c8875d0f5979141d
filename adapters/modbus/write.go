package modbus

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/edged/edged/adapters/internal/mqttdevice"
)

// writeReq is a `<point topic>/set` message waiting for the bus.
type writeReq struct {
	d       *device
	p       *point
	payload []byte
}

// subscribeWrites listens on `<point topic>/set` of every point. Messages
// for read-only points are refused at once; the others queue for the bus
// goroutine, which alone touches the wire.
func (b *Bus) subscribeWrites() []func() {
	if b.sub == nil {
		return nil
	}
	var unsubs []func()
	for _, d := range b.devices {
		for _, p := range d.points {
			d, p := d, p
			u, err := mqttdevice.SubscribeCommands(b.sub, p.mqtt.Topic+"/set", b.log, func(_ string, payload []byte) {
				if !p.writable {
					b.refuse(d, p, payload, "point is not writable")
					return
				}
				select {
				case b.writes <- writeReq{d: d, p: p, payload: append([]byte(nil), payload...)}:
				default:
					b.refuse(d, p, payload, "too many writes waiting for the bus")
				}
			}, nil)
			if err != nil {
				b.log.Warn("cannot subscribe for writes", "topic", p.mqtt.Topic+"/set", "err", err)
				continue
			}
			unsubs = append(unsubs, u)
		}
	}
	return unsubs
}

// refuse answers a write on `<point topic>/set/error`; nothing was written.
func (b *Bus) refuse(d *device, p *point, payload []byte, reason string) {
	msg, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Payload string `json:"payload"`
		TS      string `json:"ts"`
	}{reason, strings.ToValidUTF8(string(payload), "\uFFFD"), time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")})
	b.out.Publish(p.mqtt.Topic+"/set/error", msg, 0, false)
	b.log.Info("write refused", "device", d.name, "point", p.name, "reason", reason)
	b.count(d, func(s *DeviceStats) { s.WriteErrors++ }) // after the reply, so a counter seen means a reply sent
}

// doWrite checks, encodes and writes one request, then reads the point back
// and publishes it.
func (b *Bus) doWrite(l *link, w writeReq) {
	d, p := w.d, w.p
	v, err := parseSetPayload(w.payload)
	if err != nil {
		b.refuse(d, p, w.payload, err.Error())
		return
	}
	class, err := b.writePoint(l, d, p, v)
	var bad valueError
	switch {
	case errors.As(err, &bad):
		b.refuse(d, p, w.payload, bad.Error())
		return
	case err != nil:
		b.writeFailed(d, p, w.payload, class, err)
		return
	}
	b.log.Debug("wrote", "device", d.name, "point", p.name)
	b.readBack(l, d, p)
	b.count(d, func(s *DeviceStats) { s.Writes++ }) // after the read-back is published
}

// valueError is a value that cannot be written to its point (not a bool,
// out of range ...); nothing was sent.
type valueError struct{ err error }

func (e valueError) Error() string { return e.err.Error() }
func (e valueError) Unwrap() error { return e.err }

// writePoint encodes v for p and writes it: a coil with FC 5 (FC 15 for a
// device without it), a bit of a holding register by read-modify-write,
// registers with FC 6 or 16. A value p cannot take is a valueError.
func (b *Bus) writePoint(l *link, d *device, p *point, v any) (errClass, error) {
	switch {
	case p.table == Coil:
		on, err := asBool(v)
		if err != nil {
			return classOK, valueError{err}
		}
		what := fmt.Sprintf("write coil %d", p.addr)
		class, err := b.do(l, d, what, 5, 5, func(c *mb.ModbusClient) error { return c.WriteCoil(p.addr, on) })
		if isIllegalFunction(err) { // some devices only implement FC 15
			class, err = b.do(l, d, what, 7, 5, func(c *mb.ModbusClient) error { return c.WriteCoils(p.addr, []bool{on}) })
		}
		return class, err
	case p.typ == Bool: // one bit of a holding register: read, modify, write
		on, err := asBool(v)
		if err != nil {
			return classOK, valueError{err}
		}
		var cur uint16
		class, err := b.do(l, d, fmt.Sprintf("read holding register %d for a bit write", p.addr), 5, 4, func(c *mb.ModbusClient) error {
			var e error
			cur, e = c.ReadRegister(p.addr, mb.HOLDING_REGISTER)
			return e
		})
		if err != nil {
			return class, err
		}
		if on {
			cur |= 1 << uint(p.bit)
		} else {
			cur &^= 1 << uint(p.bit)
		}
		return b.writeWords(l, d, p, []uint16{cur})
	}
	words, err := encodeValue(p, v)
	if err != nil {
		return classOK, valueError{err}
	}
	return b.writeWords(l, d, p, words)
}

// writeWords writes registers with FC 6 (one) or FC 16 (several), falling
// back to FC 16 for a device that lacks FC 6.
func (b *Bus) writeWords(l *link, d *device, p *point, words []uint16) (errClass, error) {
	if len(words) == 1 {
		class, err := b.do(l, d, fmt.Sprintf("write holding register %d", p.addr), 5, 5, func(c *mb.ModbusClient) error { return c.WriteRegister(p.addr, words[0]) })
		if !isIllegalFunction(err) {
			return class, err
		}
	}
	return b.do(l, d, fmt.Sprintf("write holding registers %d..%d", p.addr, int(p.addr)+len(words)-1), 6+2*len(words), 5, func(c *mb.ModbusClient) error { return c.WriteRegisters(p.addr, words) })
}

func isIllegalFunction(err error) bool {
	var ex ExceptionError
	return errors.As(err, &ex) && ex.Code == 1
}

// writeFailed reports a write the device refused or did not answer.
func (b *Bus) writeFailed(d *device, p *point, payload []byte, class errClass, err error) {
	reason := "device refused the write: " + err.Error()
	if class != classException {
		reason = "write failed: " + err.Error()
	}
	b.refuse(d, p, payload, reason)
}

// readBack reads the written point and publishes what the device now holds.
func (b *Bus) readBack(l *link, d *device, p *point) {
	r := &read{table: p.table, start: p.addr, count: uint16(p.span()), points: []*point{p}}
	regs, bits, class, err := b.readOnce(l, d, r)
	now := time.Now()
	if class != classOK {
		b.out.Bad(&p.mqtt, fmt.Errorf("read back %s: %w", r, err), now)
		return
	}
	v, err := decodePoint(p, r.start, regs, bits)
	if err != nil {
		b.out.Bad(&p.mqtt, fmt.Errorf("read back %s: %w", r, err), now)
		return
	}
	b.out.ReadBack(&p.mqtt, v, now)
}

// parseSetPayload accepts `42`, `true`, `"text"`, `{"value": 42}`, or bare
// text (for string points). Numbers stay json.Number so that 64-bit
// integers keep every digit.
func parseSetPayload(payload []byte) (any, error) {
	s := bytes.TrimSpace(payload)
	if len(s) == 0 {
		return nil, errors.New("empty payload: send a value such as 42, true or {\"value\": 42}")
	}
	dec := json.NewDecoder(bytes.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		if s[0] == '{' || s[0] == '[' {
			return nil, errors.New("unparsable payload: send a value such as 42, true or {\"value\": 42}")
		}
		return string(s), nil // bare text
	}
	if m, ok := v.(map[string]any); ok {
		inner, ok := m["value"]
		if !ok {
			return nil, errors.New("object without \"value\": send {\"value\": 42}")
		}
		v = inner
	}
	switch v.(type) {
	case json.Number, bool, string:
		return v, nil
	}
	return nil, fmt.Errorf("cannot write %s: send a number, true/false or a string", s)
}

func asBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case json.Number:
		switch x.String() {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
	case string:
		switch strings.ToLower(x) {
		case "true", "on", "1":
			return true, nil
		case "false", "off", "0":
			return false, nil
		}
	}
	return false, fmt.Errorf("%v is not a bool: send true, false, 1 or 0", v)
}

// encodeValue turns a written value into the registers of p: the scale is
// inverted (raw = (value - offset) / scale), the result range-checked for
// the type and laid out in the point's order.
func encodeValue(p *point, v any) ([]uint16, error) {
	n := p.typ.words(p.length)
	be := make([]byte, 2*n)
	if p.typ == String {
		s, ok := v.(string)
		if !ok {
			if num, isNum := v.(json.Number); isNum {
				s = num.String()
			} else {
				return nil, fmt.Errorf("%v is not a string", v)
			}
		}
		if len(s) > 2*n {
			return nil, fmt.Errorf("string of %d bytes does not fit in %d registers", len(s), n)
		}
		copy(be, s) // NUL padded
		if p.order.swapsBytes() {
			be = BADC.toBigEndian(be)
		}
		return toWords(be), nil
	}
	num, ok := v.(json.Number)
	if !ok {
		if s, isStr := v.(string); isStr {
			num = json.Number(strings.TrimSpace(s))
		} else {
			return nil, fmt.Errorf("%v is not a number", v)
		}
	}
	if p.typ.isInt() {
		u, neg, err := intRaw(p, num)
		if err != nil {
			return nil, err
		}
		bits := 16 * n
		if p.typ.isSigned() {
			lim := uint64(1) << (bits - 1)
			if (!neg && u >= lim) || (neg && u > lim) {
				return nil, fmt.Errorf("%s is out of range for %s", num, p.typ)
			}
			if neg {
				u = -u // two's complement
			}
		} else {
			if neg && u != 0 {
				return nil, fmt.Errorf("%s is out of range for %s (negative)", num, p.typ)
			}
			if bits < 64 && u >= uint64(1)<<bits {
				return nil, fmt.Errorf("%s is out of range for %s", num, p.typ)
			}
		}
		switch n {
		case 1:
			binary.BigEndian.PutUint16(be, uint16(u))
		case 2:
			binary.BigEndian.PutUint32(be, uint32(u))
		default:
			binary.BigEndian.PutUint64(be, u)
		}
		return toWords(p.order.toBigEndian(be)), nil
	}
	f, err := num.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%s is not a finite number", num)
	}
	raw := (f - p.offset) / p.scale
	switch p.typ {
	case Float32:
		if math.Abs(raw) > math.MaxFloat32 {
			return nil, fmt.Errorf("%s is out of range for float32", num)
		}
		binary.BigEndian.PutUint32(be, math.Float32bits(float32(raw)))
	case Float64:
		if math.IsInf(raw, 0) {
			return nil, fmt.Errorf("%s is out of range for float64", num)
		}
		binary.BigEndian.PutUint64(be, math.Float64bits(raw))
	default:
		return nil, fmt.Errorf("cannot write type %s", p.typ)
	}
	return toWords(p.order.toBigEndian(be)), nil
}

// intRaw returns the magnitude and sign of the raw integer for an integer
// point. Without scale and offset the number is parsed exactly (64-bit
// counters keep every digit); otherwise the inverse scale is rounded to the
// nearest integer.
func intRaw(p *point, num json.Number) (mag uint64, neg bool, err error) {
	s := num.String()
	if p.scale == 1 && p.offset == 0 {
		t := strings.TrimPrefix(s, "-")
		if u, perr := strconv.ParseUint(t, 10, 64); perr == nil {
			return u, strings.HasPrefix(s, "-"), nil
		} else if errors.Is(perr, strconv.ErrRange) {
			return 0, false, fmt.Errorf("%s is out of range for %s", s, p.typ)
		}
	}
	f, perr := strconv.ParseFloat(s, 64)
	if perr != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, fmt.Errorf("%s is not a finite number", s)
	}
	raw := math.Round((f - p.offset) / p.scale)
	if math.Abs(raw) >= 18446744073709551616.0 {
		return 0, false, fmt.Errorf("%s is out of range for %s", s, p.typ)
	}
	if raw < 0 {
		return uint64(-raw), true, nil
	}
	return uint64(raw), false, nil
}

func toWords(be []byte) []uint16 {
	w := make([]uint16, len(be)/2)
	for i := range w {
		w[i] = binary.BigEndian.Uint16(be[2*i:])
	}
	return w
}

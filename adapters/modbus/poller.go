package modbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	mb "github.com/simonvetter/modbus"
)

// Run polls the bus's devices until ctx ends, then closes the port and
// returns nil. Device errors, timeouts and a vanished port are published
// and retried, never returned.
func (b *Bus) Run(ctx context.Context) error {
	unsubs := b.subscribeWrites()
	defer func() {
		for _, u := range unsubs {
			u()
		}
	}()
	l := newLink(b)
	defer l.closeAll()
	now := time.Now()
	for _, d := range b.devices {
		d.next = now
		d.live = b.live.Loop(fmt.Sprintf("modbus bus %q device %q", b.name, d.name), d.timeout+stallMargin)
		defer b.live.Remove(d.live)
	}
	b.log.Info("polling", "transport", b.transport, "target", b.target, "devices", len(b.devices))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Writes are served while the bus waits for the next poll, and within
		// a cycle one write slips in before each read (see pollDevice): a
		// flood of writes cannot hold polling off, and a saturated poll
		// schedule still lets every write through.
		d := b.nextDue()
		var wake <-chan time.Time
		if d != nil {
			if wait := time.Until(d.next); wait > 0 {
				timer.Reset(wait)
				wake = timer.C
			}
		}
		if d == nil || wake != nil {
			select {
			case <-ctx.Done():
				return nil
			case w := <-b.writes:
				timer.Stop() // Go 1.23+ timers: no stale tick after Stop
				b.doWrite(l, w)
				continue
			case <-wake:
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		b.pollDevice(ctx, l, d)
		if ctx.Err() != nil {
			return nil
		}
		b.schedule(d, time.Now())
	}
}

// PollOnce runs one poll cycle of every device and returns: the points are
// published as Run publishes them (the first reading of each always), the
// port or connection is opened for the cycle and closed after it. It is
// `edged poll --once`; it returns ctx's error when ctx ended first.
func (b *Bus) PollOnce(ctx context.Context) error {
	l := newLink(b)
	defer l.closeAll()
	for _, d := range b.devices {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.pollDevice(ctx, l, d)
	}
	return ctx.Err()
}

// nextDue is the device whose next poll comes first. Ties go to the device
// listed first; since a polled device moves its time on, devices that are
// due together take turns.
func (b *Bus) nextDue() *device {
	var best *device
	for _, d := range b.devices {
		if len(d.reads) == 0 {
			continue
		}
		if best == nil || d.next.Before(best.next) {
			best = d
		}
	}
	return best
}

// schedule sets the device's next poll. Polls run at a fixed rate: the next
// one is a whole number of intervals after the first, and a cycle that ran
// past its successor's start skips the missed slots (counted as an overrun,
// logged once until the device keeps up again) instead of piling them up.
// An offline device is retried with a growing backoff instead.
func (b *Bus) schedule(d *device, now time.Time) {
	if d.status.Offline() {
		limit := max(d.interval, min(30*time.Second, 10*d.interval))
		d.backoff = min(max(2*d.backoff, d.interval), limit)
		d.next = now.Add(d.backoff)
		return
	}
	d.backoff = 0
	d.next = d.next.Add(d.interval)
	if !d.next.After(now) {
		missed := now.Sub(d.next)/d.interval + 1
		d.next = d.next.Add(missed * d.interval)
		b.count(d, func(s *DeviceStats) { s.Overruns++ })
		if !d.overrunning {
			b.log.Warn("poll cycle took longer than the interval; skipping missed cycles",
				"device", d.name, "interval", d.interval)
			d.overrunning = true
		}
	} else if d.overrunning {
		b.log.Info("poll cycle fits its interval again", "device", d.name)
		d.overrunning = false
	}
}

// pollDevice runs one cycle of d's plan and publishes what it read.
func (b *Bus) pollDevice(ctx context.Context, l *link, d *device) {
	b.count(d, func(s *DeviceStats) { s.Cycles++ })
	var noAnswer error
	for i := 0; i < len(d.reads); i++ {
		if ctx.Err() != nil {
			return
		}
		select {
		case w := <-b.writes:
			b.doWrite(l, w)
		default:
		}
		r := d.reads[i]
		regs, bits, class, err := b.readOnce(l, d, r)
		now := time.Now()
		switch class {
		case classOK:
			for _, p := range r.points {
				v, derr := decodePoint(p, r.start, regs, bits)
				if derr != nil {
					b.out.Bad(&p.mqtt, fmt.Errorf("decode %s: %w", r, derr), now)
					continue
				}
				b.out.Value(&p.mqtt, v, now)
			}
			continue
		case classException:
			var ex ExceptionError
			if errors.As(err, &ex) && ex.Code == 2 {
				if parts := r.split(); parts != nil {
					// The device has a hole inside this read: read the halves
					// now and keep them in the plan for every later cycle.
					d.reads = replaceRead(d.reads, i, parts)
					i--
					b.count(d, func(s *DeviceStats) { s.Splits++ })
					b.log.Info("device refused a merged read; split it", "device", d.name,
						"read", r.String(), "into", fmt.Sprintf("%v + %v", parts[0], parts[1]))
					continue
				}
			}
			for _, p := range r.points {
				perr := fmt.Errorf("read %s: %w", r, err)
				if errors.As(err, &ex) && ex.Code == 2 && looksLikeRegisterNumber(p) {
					perr = fmt.Errorf("%w; address %d looks like %dxxxx notation: try address %d", perr,
						p.addr, p.addr/10000, p.addr%10000-1)
				}
				b.out.Bad(&p.mqtt, perr, now)
			}
			continue
		}
		// No answer: the rest of this cycle would only wait out more
		// timeouts and keep the other devices of the bus waiting.
		noAnswer = fmt.Errorf("read %s: %w", r, err)
		for _, rr := range d.reads[i:] {
			for _, p := range rr.points {
				b.out.Bad(&p.mqtt, noAnswer, now)
			}
		}
		break
	}
	b.setHealth(d, noAnswer)
}

// readOnce sends one read request of the plan.
func (b *Bus) readOnce(l *link, d *device, r *read) (regs []byte, bits []bool, class errClass, err error) {
	var respPDU int
	if r.table.isBits() {
		respPDU = 2 + (int(r.count)+7)/8
	} else {
		respPDU = 2 + 2*int(r.count)
	}
	class, err = b.do(l, d, "read "+r.String(), 5, respPDU, func(c *mb.ModbusClient) error {
		var e error
		switch r.table {
		case Holding:
			regs, e = c.ReadRawBytes(r.start, 2*r.count, mb.HOLDING_REGISTER) // quantity in bytes
		case Input:
			regs, e = c.ReadRawBytes(r.start, 2*r.count, mb.INPUT_REGISTER)
		case Coil:
			bits, e = c.ReadCoils(r.start, r.count)
		case Discrete:
			bits, e = c.ReadDiscreteInputs(r.start, r.count)
		}
		return e
	})
	return regs, bits, class, err
}

// setHealth counts a cycle that got no answer and publishes the device's
// retained status when it changes: offline after offlineAfter failed
// cycles in a row, online on the first answer.
func (b *Bus) setHealth(d *device, noAnswer error) {
	if noAnswer == nil {
		d.failures = 0
		d.status.Set(true)
		return
	}
	d.failures++
	if d.failures >= offlineAfter {
		d.status.Set(false, "failures", d.failures, "err", noAnswer)
	}
}

package mqttdevice

import (
	"time"

	"github.com/edged/edged/adapters/internal/pointstate"
	"github.com/edged/edged/telemetry"
)

// Point is one published value of a device: where and how it goes, and
// what was last published for it.
type Point struct {
	Device, Name, Unit string
	Topic              string
	Format             telemetry.PayloadFormat
	QoS                byte
	Retain             bool
	State              pointstate.State // deadband, heartbeat and the last publication
}

// Value publishes a good reading unless the point's deadband holds it back,
// and reports whether it went out.
func (o *Out) Value(p *Point, v any, now time.Time) bool {
	if !p.State.Good(v, now) {
		return false
	}
	return o.publishPoint(p, telemetry.Point{Value: v}, now)
}

// ReadBack publishes the value read back after a write, whatever the
// deadband says.
func (o *Out) ReadBack(p *Point, v any, now time.Time) bool {
	p.State.Set(v, now)
	return o.publishPoint(p, telemetry.Point{Value: v}, now)
}

// Bad publishes a failed reading when the point goes bad, not on every
// failed cycle: while it stays bad, a different error (a timeout becoming a
// closed port) is only logged at debug level. It reports whether it
// published.
func (o *Out) Bad(p *Point, err error, now time.Time) bool {
	publish, reason := p.State.Bad(err)
	if reason {
		o.log.Debug("point still bad", "device", p.Device, "point", p.Name, "err", err)
	}
	if !publish {
		return false
	}
	return o.publishPoint(p, telemetry.Point{Err: err}, now)
}

func (o *Out) publishPoint(p *Point, pt telemetry.Point, now time.Time) bool {
	pt.Device, pt.Name, pt.Unit, pt.Time = p.Device, p.Name, p.Unit, now
	return o.Publish(p.Topic, pt.Payload(p.Format), p.QoS, p.Retain)
}

// Points are the points of a device whose names come from its readings, such
// as the named groups of a pattern: each is made on first use, with the
// device's topic template and payload format. Points is not safe for
// concurrent use; the goroutine that reads the device owns it.
type Points struct {
	gateway, device string
	tmpl            telemetry.Template
	format          telemetry.PayloadFormat
	byName          map[string]*Point
}

// NewPoints returns the points of device, published on tmpl in format.
func NewPoints(gateway, device string, tmpl telemetry.Template, format telemetry.PayloadFormat) *Points {
	return &Points{gateway: gateway, device: device, tmpl: tmpl, format: format, byName: map[string]*Point{}}
}

// Get returns the point named name.
func (ps *Points) Get(name string) *Point {
	p := ps.byName[name]
	if p == nil {
		p = &Point{Device: ps.device, Name: name, Topic: ps.tmpl.Expand(ps.gateway, ps.device, name), Format: ps.format}
		ps.byName[name] = p
	}
	return p
}

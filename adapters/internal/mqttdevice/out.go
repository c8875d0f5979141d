package mqttdevice

import (
	"log/slog"
	"sync"

	"github.com/edged/edged/telemetry"
)

// Publisher is where readings, status and replies go: the local broker.
type Publisher interface {
	Publish(topic string, payload []byte, qos byte, retain bool) error
}

// Subscriber delivers messages published on topics matching filter; retained
// is set for a message the broker hands over from its retained store when
// the subscription starts, as MQTT sets the retain flag for a subscriber.
type Subscriber interface {
	Subscribe(filter string, handler func(topic string, payload []byte, retained bool)) (unsubscribe func(), err error)
}

// Out publishes for one adapter instance (a bus, a serial device, a module).
// A failing Publisher is logged once, when publishing starts to fail, and
// again only after a publish succeeded; every failure is counted.
type Out struct {
	pub Publisher
	log *slog.Logger

	mu      sync.Mutex
	failing bool
	errors  uint64
}

// NewOut returns an Out that publishes to pub and logs to log.
func NewOut(pub Publisher, log *slog.Logger) *Out {
	return &Out{pub: pub, log: log}
}

// Publish hands a message on and reports whether the Publisher took it.
func (o *Out) Publish(topic string, payload []byte, qos byte, retain bool) bool {
	err := o.pub.Publish(topic, payload, qos, retain)
	o.mu.Lock()
	first := err != nil && !o.failing
	o.failing = err != nil
	if err != nil {
		o.errors++
	}
	o.mu.Unlock()
	if first {
		o.log.Warn("publish failed", "topic", topic, "err", err)
	}
	return err == nil
}

// Errors is how many publishes the Publisher refused.
func (o *Out) Errors() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.errors
}

// Output converts a device's validated topic and payload keys (config
// checks the template and sets both defaults) into their telemetry types.
func Output(topic, payload string) (telemetry.Template, telemetry.PayloadFormat) {
	if payload == "value" {
		return telemetry.Template(topic), telemetry.PayloadValue
	}
	return telemetry.Template(topic), telemetry.PayloadJSON
}

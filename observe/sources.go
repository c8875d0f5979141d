package observe

import (
	"time"

	"github.com/edged/edged/adapters/at"
	"github.com/edged/edged/adapters/modbus"
	"github.com/edged/edged/adapters/serialline"
	"github.com/edged/edged/bridge"
	"github.com/edged/edged/broker"
)

// Sources is what the server reads. Every function is called on a request
// and must be cheap and safe from any goroutine, as the parts' Stats are.
type Sources struct {
	Gateway string
	Version string
	Started time.Time

	Broker func() broker.Stats
	// Listening reports why the broker's listeners are not open, or nil.
	Listening func() error
	// Uplink is nil when there is no [uplink]; its Stats carry the buffer's.
	Uplink         func() bridge.Stats
	BufferMaxBytes int64

	Modbus []func() modbus.Stats
	Serial []Named[serialline.Stats]
	AT     []Named[at.Stats]

	// Liveness returns every part's stall, the watchdog's signal: empty
	// while each part makes progress.
	Liveness func() []error

	// Subscriber and Devices feed the status page's last values.
	Subscriber Subscriber
	Devices    []Device
}

// Named is a device's counters under its name.
type Named[T any] struct {
	Name  string
	Stats func() T
}

// Subscriber is the local broker's in-process subscription.
type Subscriber interface {
	Subscribe(filter string, handler func(topic string, payload []byte, retained bool)) (unsubscribe func(), err error)
}

// Device is one configured device as the status page lists it.
type Device struct {
	Name   string
	Kind   string // modbus | serial | at
	Bus    string // modbus only
	Topic  string // its points' topic template, e.g. {gateway}/{device}/{point}
	Points []Point
}

// Point is a point known from the config, listed before its first reading.
// Points a device reports without configuring them (a serial pattern's
// groups) appear when they first arrive.
type Point struct {
	Name string
	Unit string
}

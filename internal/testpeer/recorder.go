package testpeer

import (
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/telemetry"
)

// Recorder is the in-process stand-in for edged's broker at the adapters'
// Publisher/Subscriber boundary: an adapter under test is handed a Recorder
// as both, and the test reads back what was published and delivers messages
// to what was subscribed, without a broker in between.
//
// Publish only records; it is not routed to subscribers, so an adapter never
// hears its own publishes. Messages reach subscribers through Deliver,
// Inject and the retained messages seeded with Retain, to every subscription
// whose MQTT filter matches the topic (+ and # wildcards as in MQTT).
//
// The zero value is an empty Recorder, as NewRecorder returns. It is safe for
// concurrent use.
type Recorder struct {
	mu       sync.Mutex
	msgs     []Message
	subs     []*subscription
	retained []Message
}

// Message is one publish a Recorder kept. Payload is a string so that tests
// compare and search it directly.
type Message struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
}

type subscription struct {
	filter  string
	handler func(topic string, payload []byte, retained bool)
}

// NewRecorder returns a Recorder with nothing published or subscribed.
func NewRecorder() *Recorder { return &Recorder{} }

// Publish records the message. It never fails.
func (r *Recorder) Publish(topic string, payload []byte, qos byte, retain bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, Message{Topic: topic, Payload: string(payload), QoS: qos, Retain: retain})
	return nil
}

// Subscribe registers handler for filter. Retained messages seeded with
// Retain whose topic matches are handed to handler, with retained set,
// before Subscribe returns, as the broker does on a new subscription. The
// returned function removes this subscription only; calling it again does
// nothing.
func (r *Recorder) Subscribe(filter string, handler func(topic string, payload []byte, retained bool)) (func(), error) {
	s := &subscription{filter: filter, handler: handler}
	r.mu.Lock()
	r.subs = append(r.subs, s)
	var replay []Message
	for _, m := range r.retained {
		if matches(filter, m.Topic) {
			replay = append(replay, m)
		}
	}
	r.mu.Unlock()
	// Outside the lock: a handler may publish.
	for _, m := range replay {
		handler(m.Topic, []byte(m.Payload), true)
	}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, x := range r.subs {
			if x == s {
				r.subs = append(r.subs[:i:i], r.subs[i+1:]...)
				return
			}
		}
	}, nil
}

// Retain seeds a retained message on topic, handed to every later
// subscription whose filter matches it. A second call for the same topic
// replaces the first, as a retained message does.
func (r *Recorder) Retain(topic string, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, m := range r.retained {
		if m.Topic == topic {
			r.retained[i].Payload = string(payload)
			return
		}
	}
	r.retained = append(r.retained, Message{Topic: topic, Payload: string(payload), Retain: true})
}

// Deliver hands a live message (not retained) on topic to every
// subscription whose filter matches, as the broker would, and reports
// whether there was one.
func (r *Recorder) Deliver(topic string, payload []byte) bool {
	r.mu.Lock()
	var hs []func(string, []byte, bool)
	for _, s := range r.subs {
		if matches(s.filter, topic) {
			hs = append(hs, s.handler)
		}
	}
	r.mu.Unlock()
	for _, h := range hs {
		h(topic, payload, false)
	}
	return len(hs) > 0
}

// InjectWait is how long Inject waits for a subscriber.
const InjectWait = 5 * time.Second

// Inject delivers a message on topic once something subscribes to it,
// waiting up to InjectWait, and fails the test if nothing does. An adapter
// subscribes from its own goroutine, so a test that has just started one
// injects rather than delivers.
func (r *Recorder) Inject(t testing.TB, topic string, payload []byte) {
	t.Helper()
	Eventually(t, InjectWait, "a subscriber for "+topic, func() bool {
		return r.Deliver(topic, payload)
	})
}

// Subscribed reports whether a subscription's filter matches topic.
func (r *Recorder) Subscribed(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.subs {
		if matches(s.filter, topic) {
			return true
		}
	}
	return false
}

// Filters lists the filters subscribed now, once per subscription, in the
// order they were subscribed.
func (r *Recorder) Filters() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.subs))
	for _, s := range r.subs {
		out = append(out, s.filter)
	}
	return out
}

// On returns the payloads published on topic so far, oldest first.
func (r *Recorder) On(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if m.Topic == topic {
			out = append(out, m.Payload)
		}
	}
	return out
}

// Last returns the latest payload published on topic, or "" when there is
// none; len(On(topic)) tells an empty payload from none.
func (r *Recorder) Last(topic string) string {
	p := r.On(topic)
	if len(p) == 0 {
		return ""
	}
	return p[len(p)-1]
}

// Messages returns a copy of every publish so far, in order.
func (r *Recorder) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

// WaitLastLimit is how long WaitLast waits: long enough for a part to open
// a port, time a request out or retry under -race on a loaded machine.
const WaitLastLimit = 15 * time.Second

// WaitLast waits up to WaitLastLimit until the latest payload on topic is
// want, and fails the test otherwise.
func (r *Recorder) WaitLast(t testing.TB, topic, want string) {
	t.Helper()
	Eventually(t, WaitLastLimit, topic+" = "+want, func() bool { return r.Last(topic) == want })
}

// matches reports whether an MQTT topic filter matches a topic name, as
// the broker would (telemetry.Filter); a malformed filter matches nothing.
func matches(filter, topic string) bool {
	f, err := telemetry.ParseFilter(filter)
	return err == nil && f.Match(topic)
}

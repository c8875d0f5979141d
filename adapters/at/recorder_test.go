package at

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/telemetry"
)

// recorder stands in for the local broker: it keeps what is published and
// delivers injected messages to subscribers whose filter matches.
type recorder struct {
	mu   sync.Mutex
	msgs []telemetry.Message
	subs map[string]func(string, []byte)
	// retained is handed to a new subscriber inside Subscribe, as the
	// broker does.
	retained map[string][]byte
}

func newRecorder() *recorder {
	return &recorder{subs: map[string]func(string, []byte){}, retained: map[string][]byte{}}
}

func (r *recorder) Publish(topic string, payload []byte, qos byte, retain bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, telemetry.Message{Topic: topic, Payload: append([]byte(nil), payload...), QoS: qos, Retain: retain})
	return nil
}

func (r *recorder) Subscribe(filter string, h func(string, []byte)) (func(), error) {
	r.mu.Lock()
	r.subs[filter] = h
	old, ok := r.retained[filter]
	r.mu.Unlock()
	if ok {
		h(filter, old)
	}
	return func() {
		r.mu.Lock()
		delete(r.subs, filter)
		r.mu.Unlock()
	}, nil
}

// inject delivers a message as the broker would, waiting for a subscriber.
func (r *recorder) inject(t *testing.T, topic string, payload []byte) {
	t.Helper()
	var h func(string, []byte)
	testpeer.Eventually(t, 5*time.Second, "a subscriber for "+topic, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		h = r.subs[topic]
		return h != nil
	})
	h(topic, payload)
}

// on returns the payloads published on topic so far, as strings.
func (r *recorder) on(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if m.Topic == topic {
			out = append(out, string(m.Payload))
		}
	}
	return out
}

// last is the latest payload on topic, or "".
func (r *recorder) last(topic string) string {
	p := r.on(topic)
	if len(p) == 0 {
		return ""
	}
	return p[len(p)-1]
}

// topics lists every topic published on, for failure messages.
func (r *recorder) topics() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, m := range r.msgs {
		b.WriteString(m.Topic + " " + string(m.Payload) + "\n")
	}
	return b.String()
}

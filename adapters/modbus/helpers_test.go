package modbus

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// recorder is the Publisher (and Subscriber) the tests hand the adapter:
// it keeps every publish and can deliver a message to subscribed handlers,
// the way the broker's inline client would.
type recorder struct {
	mu   sync.Mutex
	msgs []msg
	subs map[string]func(string, []byte)
}

type msg struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
}

func newRecorder() *recorder { return &recorder{subs: map[string]func(string, []byte){}} }

func (r *recorder) Publish(topic string, payload []byte, qos byte, retain bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg{topic, string(payload), qos, retain})
	return nil
}

func (r *recorder) Subscribe(filter string, h func(string, []byte)) (func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs[filter] = h
	return func() {
		r.mu.Lock()
		delete(r.subs, filter)
		r.mu.Unlock()
	}, nil
}

// send delivers a message as the broker would; it reports whether anyone
// was subscribed to the exact topic.
func (r *recorder) send(topic, payload string) bool {
	r.mu.Lock()
	h := r.subs[topic]
	r.mu.Unlock()
	if h == nil {
		return false
	}
	h(topic, []byte(payload))
	return true
}

func (r *recorder) subscribed(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.subs[topic] != nil
}

// on returns the payloads published on topic so far.
func (r *recorder) on(topic string) []string {
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

func (r *recorder) last(topic string) (string, bool) {
	p := r.on(topic)
	if len(p) == 0 {
		return "", false
	}
	return p[len(p)-1], true
}

func (r *recorder) all() []msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]msg(nil), r.msgs...)
}

// reading is a published JSON payload.
type reading struct {
	Value   any    `json:"value"`
	Unit    string `json:"unit"`
	Quality string `json:"quality"`
	Error   string `json:"error"`
	TS      string `json:"ts"`
}

func parseReading(t testing.TB, payload string) reading {
	t.Helper()
	var r reading
	d := json.NewDecoder(strings.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&r); err != nil {
		t.Fatalf("payload %q is not JSON: %v", payload, err)
	}
	return r
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("EDGED_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// runBus starts New(cfg).Run in the background and stops it when the test ends.
func runBus(t testing.TB, cfg config.Bus, rec *recorder) *Bus {
	t.Helper()
	b, err := New(cfg, "gw", rec, rec, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return b
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testpeer.Eventually(t, 15*time.Second, what, cond)
}

func dur(d time.Duration) config.Duration { return config.Duration{Duration: d} }
func ptr[T any](v T) *T                   { return &v }

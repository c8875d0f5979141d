package linesim

import (
	"context"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/adapters/serialline"
	"github.com/edged/edged/internal/testpeer"
)

type recorder struct {
	mu     sync.Mutex
	topics map[string][]byte
}

func (r *recorder) Publish(topic string, payload []byte, _ byte, _ bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.topics[topic] = payload
	return nil
}

func (r *recorder) Subscribe(string, func(string, []byte)) (func(), error) { return func() {}, nil }

func (r *recorder) get(topic string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topics[topic]
}

func TestTheRealAdapterReadsTheSimulatedSensor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{topics: map[string][]byte{}}
	dev, err := serialline.New(DemoDevice(port), "demo", rec, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- dev.Run(runCtx) }()

	testpeer.Eventually(t, 10*time.Second, "temperature and humidity", func() bool {
		return rec.get("demo/weather/temperature") != nil && rec.get("demo/weather/humidity") != nil
	})
	if !regexp.MustCompile(`^\{"value":2[0-3](\.\d)?,"ts":"[^"]+"\}$`).Match(rec.get("demo/weather/temperature")) {
		t.Errorf("temperature payload %s", rec.get("demo/weather/temperature"))
	}
	if string(rec.get("demo/weather/status")) != "online" {
		t.Errorf("status %q", rec.get("demo/weather/status"))
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	cancel()
	testpeer.Eventually(t, 10*time.Second, "the pty to go away", func() bool {
		_, err := os.Stat(port)
		return err != nil
	})
}

func TestLinesMatchTheDemoPattern(t *testing.T) {
	re := regexp.MustCompile(Pattern)
	for _, d := range []time.Duration{0, time.Minute, 7 * time.Minute, 25 * time.Hour} {
		if l := Line(d); !re.Match(l) {
			t.Errorf("line %q at %v does not match", l, d)
		}
	}
}

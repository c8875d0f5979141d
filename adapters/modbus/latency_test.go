package modbus

import (
	"context"
	"testing"
	"time"

	"github.com/edged/edged/adapters/modbus/modbussim"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

func TestEveryRequestIsTimedInTheBusLatencyHistogram(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := modbussim.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Bus{Name: "tcp", Address: addr, Timeout: dur(time.Second), Devices: []config.Device{{
		Name: "meter", Unit: 1, Interval: dur(20 * time.Millisecond),
		Points: []config.Point{{Name: "voltage", Table: "input", Address: 0, Type: "float32"}},
	}}}
	b := runBus(t, cfg, testpeer.NewRecorder())
	waitFor(t, "three requests", func() bool { return b.Stats().Devices[0].Requests >= 3 })

	s := b.Stats()
	lat := s.Latency
	var requests uint64
	for _, d := range s.Devices {
		requests += d.Requests
	}
	// Stats is one snapshot under one lock: the histogram and the device
	// counters agree exactly.
	if lat.Count != requests {
		t.Errorf("latency count %d, requests %d", lat.Count, requests)
	}
	if lat.Sum <= 0 {
		t.Errorf("busy time %v after %d requests", lat.Sum, lat.Count)
	}
	last := lat.Buckets[len(lat.Buckets)-1]
	if last > lat.Count {
		t.Errorf("the %v bucket holds %d of %d requests", lat.Bounds()[len(lat.Buckets)-1], last, lat.Count)
	}
	for i := 1; i < len(lat.Buckets); i++ {
		if lat.Buckets[i] < lat.Buckets[i-1] {
			t.Errorf("buckets are not cumulative: %v", lat.Buckets)
		}
	}
	if len(lat.Bounds()) != len(lat.Buckets) {
		t.Errorf("%d bounds for %d buckets", len(lat.Bounds()), len(lat.Buckets))
	}
}

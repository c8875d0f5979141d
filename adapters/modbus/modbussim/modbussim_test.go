package modbussim

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/adapters/modbus"
	"github.com/edged/edged/config/configtest"
	"github.com/edged/edged/internal/testpeer"
)

// values decodes the "value" of each JSON payload on topic, skipping any
// that do not decode.
func values(rec *testpeer.Recorder, topic string) []float64 {
	var out []float64
	for _, p := range rec.On(topic) {
		var v struct{ Value float64 }
		if json.NewDecoder(strings.NewReader(p)).Decode(&v) == nil {
			out = append(out, v.Value)
		}
	}
	return out
}

func TestTheDemoMeterMovesLikeARealOne(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DemoBus(addr)
	cfg.Devices[0].Interval.Duration = 150 * time.Millisecond
	rec := testpeer.NewRecorder()
	b, err := modbus.New(configtest.Bus(t, cfg), "demo", rec, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stop := testpeer.Go(t, b.Run)
	testpeer.Eventually(t, 15*time.Second, "five energy readings", func() bool {
		return len(values(rec, "demo/meter/total_active_energy")) >= 5
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values(rec, "demo/meter/voltage") {
		if v < 215 || v > 245 {
			t.Errorf("voltage %v is not near 230 V", v)
		}
	}
	for _, v := range values(rec, "demo/meter/frequency") {
		if v < 49.8 || v > 50.2 {
			t.Errorf("frequency %v is not near 50 Hz", v)
		}
	}
	e := values(rec, "demo/meter/total_active_energy")
	for i := 1; i < len(e); i++ {
		if e[i] < e[i-1] {
			t.Errorf("energy went backwards: %v", e)
		}
	}
	p := values(rec, "demo/meter/active_power")
	if len(p) == 0 || p[0] <= 0 {
		t.Errorf("active power readings %v, want positive", p)
	}
}

func TestTheMeterPowerIsVoltageTimesCurrentTimesPowerFactor(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := newMeter(func() time.Time { return now }, 1)
	e0 := m.energy
	for i := 0; i < 3600; i++ {
		now = now.Add(time.Second)
		m.advance(now)
		if p := m.voltage * m.current * m.pf; p <= 0 || p > 230*15 {
			t.Fatalf("power %v out of a household's range", p)
		}
	}
	// An hour at a few hundred watts to a few kW.
	if d := m.energy - e0; d < 0.1 || d > 5 {
		t.Errorf("energy after an hour grew by %v kWh", d)
	}
}

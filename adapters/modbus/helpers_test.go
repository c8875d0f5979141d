package modbus

import (
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/config"
	"github.com/edged/edged/config/configtest"
	"github.com/edged/edged/internal/testpeer"
)

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
func runBus(t testing.TB, cfg config.Bus, rec *testpeer.Recorder) *Bus {
	t.Helper()
	b, err := New(configtest.Bus(t, cfg), "gw", rec, rec, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	testpeer.Go(t, b.Run)
	return b
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testpeer.Eventually(t, 15*time.Second, what, cond)
}

func dur(d time.Duration) config.Duration { return config.Duration{Duration: d} }
func ptr[T any](v T) *T                   { return &v }

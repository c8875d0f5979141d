package mqttdevice

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/telemetry"
)

func TestStatusIsPublishedOncePerChange(t *testing.T) {
	rec := testpeer.NewRecorder()
	var logs bytes.Buffer
	st := NewStatus(NewOut(rec, slog.New(slog.DiscardHandler)), "gw", "dev", slog.New(slog.NewTextHandler(&logs, nil)))
	st.Begin()
	if !st.Offline() || st.Online() {
		t.Fatal("after Begin the device is known to be offline")
	}
	for _, online := range []bool{true, true, false, false, false, true} {
		st.Set(online, "reason", "test")
	}
	if got := rec.On("gw/dev/status"); !slices.Equal(got, []string{"offline", "online", "offline", "online"}) {
		t.Errorf("status history %q, want offline online offline online", got)
	}
	for _, m := range rec.Messages() {
		if !m.Retain || m.QoS != 1 {
			t.Errorf("status %q published with qos %d retain %v, want 1 and retained", m.Payload, m.QoS, m.Retain)
		}
	}
	if n := strings.Count(logs.String(), "device offline"); n != 1 {
		t.Errorf("%d offline log lines, want 1 (Begin is not a change):\n%s", n, logs.String())
	}
}

func TestAStatusNotBegunPublishesItsFirstState(t *testing.T) {
	rec := testpeer.NewRecorder()
	st := NewStatus(NewOut(rec, slog.New(slog.DiscardHandler)), "gw", "dev", slog.New(slog.DiscardHandler))
	if st.Offline() {
		t.Fatal("a status never set is not known to be offline")
	}
	st.Set(false)
	if got := rec.On("gw/dev/status"); !slices.Equal(got, []string{"offline"}) {
		t.Errorf("status history %q, want offline", got)
	}
}

// flaky is a Publisher that fails while down is set.
type flaky struct {
	mu   sync.Mutex
	down bool
	n    int
}

func (f *flaky) Publish(string, []byte, byte, bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.down {
		return errors.New("broker stopped")
	}
	return nil
}

func TestAFailingPublisherIsLoggedOncePerRunOfFailures(t *testing.T) {
	pub := &flaky{down: true}
	var logs bytes.Buffer
	out := NewOut(pub, slog.New(slog.NewTextHandler(&logs, nil)))
	for range 3 {
		if out.Publish("t", nil, 0, false) {
			t.Fatal("a refused publish reported as taken")
		}
	}
	pub.down = false
	out.Publish("t", nil, 0, false)
	pub.down = true
	out.Publish("t", nil, 0, false)
	if n := strings.Count(logs.String(), "publish failed"); n != 2 {
		t.Errorf("%d log lines for two runs of failures, want 2:\n%s", n, logs.String())
	}
	if out.Errors() != 4 {
		t.Errorf("errors = %d, want 4", out.Errors())
	}
}

func TestPointsPublishValuesAndBadQualityOncePerTransition(t *testing.T) {
	rec := testpeer.NewRecorder()
	out := NewOut(rec, slog.New(slog.DiscardHandler))
	tmpl, format := Output("site/{device}/{point}", "value")
	ps := NewPoints("gw", "dev", tmpl, format)
	p := ps.Get("temp")
	if ps.Get("temp") != p {
		t.Fatal("Get made a second point for one name")
	}
	now := time.Unix(1_800_000_000, 0)
	out.Value(p, 21.5, now)
	out.Bad(p, errors.New("timeout"), now)
	out.Bad(p, errors.New("timeout"), now)
	out.Value(p, 21.5, now)
	got := rec.On("site/dev/temp")
	if len(got) != 3 || got[0] != "21.5" || !strings.Contains(got[1], `"quality":"bad"`) || got[2] != "21.5" {
		t.Errorf("published %q, want the value, bad once, the value", got)
	}
}

// TestOutputConvertsTheValidatedKeys: config refuses a bad template or
// payload (config's TestEveryRuleAnAdapterOnceCheckedIsConfigs) and sets
// both defaults; Output only converts.
func TestOutputConvertsTheValidatedKeys(t *testing.T) {
	for _, c := range []struct {
		payload string
		want    telemetry.PayloadFormat
	}{{"json", telemetry.PayloadJSON}, {"value", telemetry.PayloadValue}} {
		if tmpl, format := Output(telemetry.DefaultTemplate, c.payload); tmpl != telemetry.DefaultTemplate || format != c.want {
			t.Errorf("Output(default, %q) = %q, %v", c.payload, tmpl, format)
		}
	}
}

func TestARetainedCommandIsNotPassedOn(t *testing.T) {
	rec := testpeer.NewRecorder()
	rec.Retain("gw/dev/tx", []byte("old"))
	var got []string
	ignored := 0
	unsub, err := SubscribeCommands(rec, "gw/dev/tx", slog.New(slog.DiscardHandler),
		func(_ string, p []byte) { got = append(got, string(p)) }, func() { ignored++ })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	rec.Deliver("gw/dev/tx", []byte("new"))
	if !slices.Equal(got, []string{"new"}) || ignored != 1 {
		t.Errorf("handled %q and ignored %d, want only the live command handled and the retained one ignored", got, ignored)
	}
}

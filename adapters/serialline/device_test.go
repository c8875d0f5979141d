package serialline

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/config"
	"github.com/edged/edged/config/configtest"
	"github.com/edged/edged/internal/testpeer"
)

const (
	gw     = "gw"
	status = gw + "/weather/status" // retained "online" or "offline"
)

// startDevice runs a Device until the test ends.
func startDevice(t *testing.T, cfg config.Serial, rec *testpeer.Recorder) *Device {
	t.Helper()
	d, err := New(configtest.Serial(t, cfg), gw, rec, rec, testpeer.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	testpeer.Go(t, d.Run)
	return d
}

// sensor is the scripted device at the other end of the pty pair.
type sensor struct {
	t *testing.T
	f *os.File

	mu  sync.Mutex
	got bytes.Buffer
}

func openSensor(t *testing.T, path string) *sensor {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &sensor{t: t, f: f}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256)
		for {
			n, err := f.Read(buf)
			s.mu.Lock()
			s.got.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		f.Close()
		<-done
	})
	return s
}

func (s *sensor) write(chunks ...string) {
	s.t.Helper()
	for _, c := range chunks {
		if _, err := s.f.Write([]byte(c)); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *sensor) received() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.String()
}

// values decodes the "value" of each JSON payload on topic.
func values(t *testing.T, rec *testpeer.Recorder, topic string) []any {
	t.Helper()
	var out []any
	for _, p := range rec.On(topic) {
		var v struct{ Value any }
		if err := json.Unmarshal([]byte(p), &v); err != nil {
			t.Fatalf("payload %q on %s: %v", p, topic, err)
		}
		out = append(out, v.Value)
	}
	return out
}

func weather(port string) config.Serial {
	return config.Serial{
		Name:       "weather",
		SerialPort: config.SerialPort{Port: port},
		Patterns:   []string{`T=(?P<temperature>-?[0-9.]+),H=(?P<humidity>[0-9.]+)`},
	}
}

func TestDeviceReadsAScriptedSensor(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	rec := testpeer.NewRecorder()
	cfg := weather(pair.A)
	cfg.Raw = true
	cfg.MaxFrame = 32
	d := startDevice(t, cfg, rec)
	rec.WaitLast(t, status, "online")
	s := openSensor(t, pair.B)

	s.write("T=2", "1.5,H=40.2\r", "\nnoise \xff\xfe here\n",
		strings.Repeat("X", 100)+"\n", "T=-3,H=50\n\r", "\n\n", "T=22,H=41\r\n")
	testpeer.Eventually(t, 10*time.Second, "three humidity readings", func() bool {
		return len(rec.On(gw+"/weather/humidity")) == 3
	})
	if got, want := values(t, rec, gw+"/weather/temperature"), []any{21.5, -3.0, 22.0}; !slices.Equal(got, want) {
		t.Errorf("temperature = %v, want %v", got, want)
	}
	if got, want := values(t, rec, gw+"/weather/humidity"), []any{40.2, 50.0, 41.0}; !slices.Equal(got, want) {
		t.Errorf("humidity = %v, want %v", got, want)
	}
	if got, want := rec.On(gw+"/weather/raw"), []string{"noise \xff\xfe here"}; !slices.Equal(got, want) {
		t.Errorf("raw = %q, want %q", got, want)
	}
	st := d.Stats()
	if st.Frames != 4 || st.Matched != 3 || st.Unmatched != 1 || st.Overlong != 1 || st.Points != 6 || !st.Online {
		t.Errorf("stats = %+v", st)
	}
	if err := d.Stalled(); err != nil {
		t.Errorf("a sensor that talks was reported stuck: %v", err)
	}
}

func TestDevicePollsAndWritesTx(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	rec := testpeer.NewRecorder()
	cfg := weather(pair.A)
	cfg.Request = `READ\r\n`
	cfg.Interval = config.Duration{Duration: 50 * time.Millisecond}
	cfg.Writable = true
	cfg.Payload = "value"
	rec.Retain(gw+"/weather/tx", []byte("OLD\r\n"))
	s := openSensor(t, pair.B)
	d := startDevice(t, cfg, rec)

	t.Run("requests are sent every interval", func(t *testing.T) {
		testpeer.Eventually(t, 10*time.Second, "two requests", func() bool {
			return strings.Count(s.received(), "READ\r\n") >= 2
		})
	})
	t.Run("an answer becomes a reading and brings the device online", func(t *testing.T) {
		s.write("T=1,H=2\n")
		testpeer.Eventually(t, 10*time.Second, "the polled reading", func() bool {
			return rec.Last(gw+"/weather/temperature") == "1"
		})
		testpeer.Eventually(t, 10*time.Second, "online", func() bool { return slices.Contains(rec.On(status), "online") })
	})
	t.Run("unanswered requests take it offline and an answer brings it back", func(t *testing.T) {
		testpeer.Eventually(t, 10*time.Second, "offline again", func() bool {
			return slices.Equal(rec.On(status), []string{"offline", "online", "offline"})
		})
		s.write("T=3,H=4\n")
		testpeer.Eventually(t, 10*time.Second, "online again", func() bool {
			h := rec.On(status)
			return len(h) >= 4 && h[3] == "online"
		})
	})
	t.Run("a payload on tx is written to the port", func(t *testing.T) {
		rec.Inject(t, gw+"/weather/tx", []byte("SET 5\r\n"))
		testpeer.Eventually(t, 10*time.Second, "the tx payload at the sensor", func() bool {
			return strings.Contains(s.received(), "SET 5\r\n")
		})
		if strings.Contains(s.received(), "OLD") {
			t.Error("the retained tx payload was replayed to the device")
		}
		if st := d.Stats(); st.TxWrites != 1 || st.TxDropped != 1 || st.Requests < 4 {
			t.Errorf("stats = %+v", st)
		}
	})
}

func TestDeviceReopensAVanishedPort(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	rec := testpeer.NewRecorder()
	d := startDevice(t, weather(pair.A), rec)
	rec.WaitLast(t, status, "online")

	pair.Stop() // the port vanishes, as on a USB unplug
	rec.WaitLast(t, status, "offline")
	if _, err := os.Stat(pair.A); err == nil {
		t.Fatal("port still there after stop")
	}
	pair.Start() // and comes back under the same name
	rec.WaitLast(t, status, "online")
	if fds := testpeer.StaleTTYs(t); len(fds) > 0 {
		t.Errorf("descriptors of the vanished port still open: %q", fds)
	}

	s := openSensor(t, pair.B)
	s.write("T=5,H=6\n")
	testpeer.Eventually(t, 10*time.Second, "a reading from the new port", func() bool {
		return len(rec.On(gw+"/weather/temperature")) == 1
	})
	if got := rec.On(status); !slices.Equal(got, []string{"offline", "online", "offline", "online"}) {
		t.Errorf("status history = %q", got)
	}
	if st := d.Stats(); st.Opens != 2 {
		t.Errorf("opens = %d, want 2", st.Opens)
	}
}

// TestNewTakesTheDeviceAsConfigCompletedIt: the rules of a [[serial]]
// table are config's (config's TestEveryRuleAnAdapterOnceCheckedIsConfigs);
// New refuses a config built in code that skipped config.Check rather than
// run without its patterns.
func TestNewTakesTheDeviceAsConfigCompletedIt(t *testing.T) {
	if _, err := New(weather("/dev/null"), gw, discard{}, nil, nil); err == nil || !strings.Contains(err.Error(), "config.Check") {
		t.Errorf("a device that skipped config: err %v", err)
	}
	if _, err := New(configtest.Serial(t, weather("/dev/null")), gw, discard{}, nil, nil); err != nil {
		t.Error(err)
	}
}

func TestRunLeavesNoGoroutinesBehind(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	rec := testpeer.NewRecorder()
	cfg := weather(pair.A)
	cfg.Writable = true
	d, err := New(configtest.Serial(t, cfg), gw, rec, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := testpeer.Go(t, d.Run)
	rec.WaitLast(t, status, "online")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	testpeer.GoroutinesGone(t, 5*time.Second, "adapters/internal/serialport.runSession", "adapters/serialline.(*Device)")
	if rec.Last(status) != "offline" {
		t.Errorf("status after shutdown %q, want offline", rec.Last(status))
	}
}

// BenchmarkDeviceFrame measures matching a frame and rendering its points.
func BenchmarkDeviceFrame(b *testing.B) {
	d, err := New(configtest.Serial(b, weather("/dev/null")), gw, discard{}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	frame := []byte("T=21.5,H=40.2")
	for b.Loop() {
		d.frame(frame)
	}
}

type discard struct{}

func (discard) Publish(string, []byte, byte, bool) error { return nil }

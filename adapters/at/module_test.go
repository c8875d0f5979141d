package at

import (
	"bufio"
	"encoding/json"
	"os"
	"reflect"
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
	status = gw + "/wifi/status" // retained "online" or "offline"
)

// modem is a scripted AT module at the other end of a pty pair: it echoes
// until ATE0, answers in chunks, puts a URC in the middle of a reply, says
// ERROR and +CME ERROR, and can be told to stop answering.
type modem struct {
	t *testing.T
	f *os.File

	stop func()

	mu     sync.Mutex
	seen   []string
	echo   bool
	mute   bool
	script map[string][]string // replies set by a test, instead of the built-in ones
}

func startModem(t *testing.T, path string) *modem {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := &modem{t: t, f: f, echo: true}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(f)
		for {
			line, err := r.ReadString('\r')
			if err != nil {
				return
			}
			m.handle(strings.TrimSpace(line))
		}
	}()
	var once sync.Once
	m.stop = func() {
		once.Do(func() {
			f.Close()
			<-done
		})
	}
	t.Cleanup(m.stop)
	return m
}

func (m *modem) handle(cmd string) {
	if cmd == "" {
		return
	}
	m.mu.Lock()
	m.seen = append(m.seen, cmd)
	echo, mute := m.echo, m.mute
	scripted, isScripted := m.script[cmd]
	if cmd == "ATE0" && !mute {
		m.echo = false
	}
	if cmd == "AT+RST" && !mute {
		m.echo = true
	}
	m.mu.Unlock()
	if mute {
		return
	}
	if echo {
		m.send(cmd + "\r\r\n")
	}
	if isScripted {
		m.send(scripted...)
		return
	}
	switch cmd {
	case "ATE0", "AT", "AT+RST":
		m.send("\r\nOK\r\n")
	case "AT+CSQ":
		m.send("\r\n+CSQ: 2", "1,99\r", "\n+CREG: 1\r\n", "\r\nO", "K\r\n")
	case "AT+GMR":
		m.send("AT version:1.7.4\r\n", "SDK version:3.0.4\r\n\r\nOK\r\n")
	case "AT+CPIN?":
		m.send("\r\n+CME ERROR: 10\r\n")
	default:
		m.send("\r\nERROR\r\n")
	}
}

// send writes each chunk with its own write, as a slow module would.
func (m *modem) send(chunks ...string) {
	for _, c := range chunks {
		if _, err := m.f.Write([]byte(c)); err != nil {
			return
		}
	}
}

func (m *modem) setMute(v bool) {
	m.mu.Lock()
	m.mute = v
	m.mu.Unlock()
}

// answer makes the modem reply to cmd with chunks from now on.
func (m *modem) answer(cmd string, chunks ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.script == nil {
		m.script = map[string][]string{}
	}
	m.script[cmd] = chunks
}

func (m *modem) commands() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seen)
}

func (m *modem) count(cmd string) int {
	n := 0
	for _, c := range m.commands() {
		if c == cmd {
			n++
		}
	}
	return n
}

func startModule(t *testing.T, cfg config.ATDev, rec *testpeer.Recorder, tweaks ...func(*Module)) *Module {
	t.Helper()
	mod, err := New(configtest.AT(t, cfg), gw, rec, rec, testpeer.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tw := range tweaks {
		tw(mod)
	}
	testpeer.Go(t, mod.Run)
	return mod
}

func wifi(port string) config.ATDev {
	return config.ATDev{
		Name:       "wifi",
		SerialPort: config.SerialPort{Port: port},
		Init:       []string{"ATE0"},
		Interval:   config.Duration{Duration: 100 * time.Millisecond},
		Timeout:    config.Duration{Duration: time.Second},
		Queries: []config.ATQuery{
			{Command: "AT+CSQ", Pattern: `^\+CSQ: (?P<rssi>\d+),(?P<ber>\d+)`},
			{Command: "AT+CPIN?", Pattern: `^\+CPIN: (?P<sim>\w+)`},
		},
		URCs: []config.ATURC{{Pattern: `^\+CREG: (?P<reg>\d)`}},
	}
}

type response struct {
	Command string   `json:"command"`
	Lines   []string `json:"lines"`
	Result  string   `json:"result"`
	Error   string   `json:"error"`
}

func TestModuleTalksToAScriptedModem(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	m := startModem(t, pair.B)
	rec := testpeer.NewRecorder()
	rec.Retain(gw+"/wifi/at", []byte("AT+RST"))
	mod := startModule(t, wifi(pair.A), rec)
	rec.WaitLast(t, status, "online")

	t.Run("init goes first and turns the echo off", func(t *testing.T) {
		testpeer.Eventually(t, 10*time.Second, "a query", func() bool { return m.count("AT+CSQ") > 0 })
		if c := m.commands(); c[0] != "ATE0" {
			t.Errorf("first command %q, want ATE0", c[0])
		}
	})
	t.Run("a reply in chunks becomes points", func(t *testing.T) {
		testpeer.Eventually(t, 10*time.Second, "rssi", func() bool { return rec.Last(gw+"/wifi/rssi") != "" })
		var v struct{ Value any }
		if err := json.Unmarshal([]byte(rec.Last(gw+"/wifi/rssi")), &v); err != nil || v.Value != 21.0 {
			t.Errorf("rssi payload %q, want value 21", rec.Last(gw+"/wifi/rssi"))
		}
	})
	t.Run("a URC inside a reply becomes its own point", func(t *testing.T) {
		testpeer.Eventually(t, 10*time.Second, "reg", func() bool { return rec.Last(gw+"/wifi/reg") != "" })
		if !strings.Contains(rec.Last(gw+"/wifi/reg"), `"value":1`) {
			t.Errorf("reg payload %q", rec.Last(gw+"/wifi/reg"))
		}
	})
	t.Run("+CME ERROR publishes a bad reading, never a value", func(t *testing.T) {
		testpeer.Eventually(t, 10*time.Second, "sim", func() bool { return rec.Last(gw+"/wifi/sim") != "" })
		p := rec.Last(gw + "/wifi/sim")
		if !strings.Contains(p, `"quality":"bad"`) || !strings.Contains(p, "+CME ERROR: 10") || strings.Contains(p, `"value"`) {
			t.Errorf("sim payload %q", p)
		}
	})

	raw := []struct {
		name, send string
		want       response
	}{
		{"a raw command round trip returns the reply lines", "AT+GMR",
			response{Command: "AT+GMR", Lines: []string{"AT version:1.7.4", "SDK version:3.0.4"}, Result: "OK"}},
		{"a raw command the module refuses returns ERROR", "AT+NOPE",
			response{Command: "AT+NOPE", Lines: []string{}, Result: "ERROR"}},
		{"a raw payload that is no AT command is refused without sending it", "rm -rf /",
			response{Command: "rm -rf /", Lines: []string{}, Error: "not an AT command (it must start with AT)"}},
		{"a raw payload of two lines is refused", "AT\r\nAT+RST",
			response{Command: "AT\r\nAT+RST", Lines: []string{}, Error: `the command must not contain line breaks (edged ends every command with \r\n)`}},
	}
	for _, tc := range raw {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.On(gw + "/wifi/at/response"))
			rec.Inject(t, gw+"/wifi/at", []byte(tc.send))
			testpeer.Eventually(t, 10*time.Second, "a response", func() bool {
				return len(rec.On(gw+"/wifi/at/response")) > before
			})
			var got response
			if err := json.Unmarshal([]byte(rec.Last(gw+"/wifi/at/response")), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("response = %+v, want %+v", got, tc.want)
			}
		})
	}
	if m.count("AT+RST") != 0 {
		t.Error("the retained command or the refused two-line payload reached the modem")
	}
	if st := mod.Stats(); st.Errors == 0 || st.URCs == 0 || st.Timeouts != 0 || !st.Online {
		t.Errorf("stats = %+v", st)
	}
	if err := mod.Stalled(); err != nil {
		t.Errorf("a module that answers was reported stuck: %v", err)
	}
}

func TestABadQueryIsPublishedOncePerChangeOfState(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	m := startModem(t, pair.B)
	rec := testpeer.NewRecorder()
	cfg := wifi(pair.A)
	cfg.Queries = cfg.Queries[1:] // AT+CPIN?, answered +CME ERROR: 10 until told otherwise
	cfg.Interval = config.Duration{Duration: 20 * time.Millisecond}
	startModule(t, cfg, rec)
	sim := gw + "/wifi/sim"
	bad := func() int {
		n := 0
		for _, p := range rec.On(sim) {
			if strings.Contains(p, `"quality":"bad"`) {
				n++
			}
		}
		return n
	}
	cycles := func(n int) {
		t.Helper()
		want := m.count("AT+CPIN?") + n
		testpeer.Eventually(t, 10*time.Second, "more queries", func() bool { return m.count("AT+CPIN?") >= want })
	}

	cycles(5)
	if got := bad(); got != 1 {
		t.Errorf("%d bad readings over %d failed queries, want 1", got, m.count("AT+CPIN?"))
	}
	m.answer("AT+CPIN?", "\r\n+CPIN: READY\r\n\r\nOK\r\n")
	testpeer.Eventually(t, 10*time.Second, "a value", func() bool { return strings.Contains(rec.Last(sim), `"value":"READY"`) })
	m.answer("AT+CPIN?", "\r\n+CPIN: ?\r\n\r\nOK\r\n") // no match: bad again
	testpeer.Eventually(t, 10*time.Second, "bad again", func() bool { return bad() == 2 })
	cycles(5)
	if got := bad(); got != 2 {
		t.Errorf("%d bad readings after the point went bad a second time, want 2", got)
	}
}

func TestModuleResetsAfterConsecutiveTimeouts(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	m := startModem(t, pair.B)
	rec := testpeer.NewRecorder()
	cfg := wifi(pair.A)
	cfg.Queries = cfg.Queries[:1]
	cfg.Timeout = config.Duration{Duration: 200 * time.Millisecond}
	cfg.Interval = config.Duration{Duration: 50 * time.Millisecond}
	cfg.Reset = "AT+RST"
	cfg.ResetAfter = 2
	mod := startModule(t, cfg, rec)
	rec.WaitLast(t, status, "online")

	m.setMute(true)
	rec.WaitLast(t, status, "offline")
	testpeer.Eventually(t, 10*time.Second, "a reset command", func() bool { return m.count("AT+RST") > 0 })
	testpeer.Eventually(t, 10*time.Second, "a bad rssi reading", func() bool {
		return strings.Contains(rec.Last(gw+"/wifi/rssi"), `"quality":"bad"`)
	})
	inits := m.count("ATE0")
	m.setMute(false)
	rec.WaitLast(t, status, "online")
	testpeer.Eventually(t, 10*time.Second, "init again after the reset", func() bool { return m.count("ATE0") > inits })
	if st := mod.Stats(); st.Resets == 0 || st.Timeouts < 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestModuleThatNeverAnswersIsResetDuringInit(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	m := startModem(t, pair.B)
	m.setMute(true)
	rec := testpeer.NewRecorder()
	cfg := wifi(pair.A)
	cfg.Init = []string{"ATE0", "AT"}
	cfg.Queries = nil
	cfg.Timeout = config.Duration{Duration: 100 * time.Millisecond}
	cfg.Reset = "AT+RST"
	cfg.ResetAfter = 2
	mod := startModule(t, cfg, rec)

	testpeer.Eventually(t, 10*time.Second, "two resets", func() bool { return m.count("AT+RST") >= 2 })
	if got := rec.On(status); !slices.Equal(got, []string{"offline"}) {
		t.Errorf("status history = %q, want only offline", got)
	}
	m.setMute(false)
	rec.WaitLast(t, status, "online")
	if st := mod.Stats(); st.Resets < 2 {
		t.Errorf("resets = %d", st.Resets)
	}
}

func TestARawCommandThatTimesOutIsAnsweredAndDoesNotReset(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	m := startModem(t, pair.B)
	rec := testpeer.NewRecorder()
	cfg := wifi(pair.A)
	cfg.Queries = nil
	cfg.Reset = "AT+RST"
	cfg.ResetAfter = 1
	mod := startModule(t, cfg, rec, func(mod *Module) { mod.rawTimeout = 100 * time.Millisecond })
	rec.WaitLast(t, status, "online")

	m.setMute(true)
	rec.Inject(t, gw+"/wifi/at", []byte("AT+CWJAP=\"slow\",\"net\""))
	testpeer.Eventually(t, 10*time.Second, "a response", func() bool { return rec.Last(gw+"/wifi/at/response") != "" })
	var got response
	if err := json.Unmarshal([]byte(rec.Last(gw+"/wifi/at/response")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Result != "" || !strings.Contains(got.Error, "no final result code") {
		t.Errorf("response = %+v, want a timeout error", got)
	}
	if st := mod.Stats(); st.Resets != 0 || !st.Online || st.Timeouts != 1 {
		t.Errorf("stats = %+v; a raw timeout must not reset the module", st)
	}
}

func TestModuleComesBackWhenThePortReturns(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	old := startModem(t, pair.B)
	rec := testpeer.NewRecorder()
	mod := startModule(t, wifi(pair.A), rec)
	rec.WaitLast(t, status, "online")

	pair.Stop()
	old.stop()
	rec.WaitLast(t, status, "offline")
	rec.Inject(t, gw+"/wifi/at", []byte("AT+GMR"))
	testpeer.Eventually(t, 10*time.Second, "a refusal while the port is gone", func() bool {
		return strings.Contains(rec.Last(gw+"/wifi/at/response"), "port not open")
	})
	pair.Start()
	m := startModem(t, pair.B)
	rec.WaitLast(t, status, "online")
	if fds := testpeer.StaleTTYs(t); len(fds) > 0 {
		t.Errorf("descriptors of the vanished port still open: %q", fds)
	}
	testpeer.Eventually(t, 10*time.Second, "init on the new port", func() bool { return m.count("ATE0") > 0 })
	if got := rec.On(status); !slices.Equal(got, []string{"offline", "online", "offline", "online"}) {
		t.Errorf("status history = %q", got)
	}
	if st := mod.Stats(); st.Opens != 2 {
		t.Errorf("opens = %d, want 2", st.Opens)
	}
}

func TestRawCommandsCanBeTurnedOff(t *testing.T) {
	rec := testpeer.NewRecorder()
	off := false
	cfg := wifi(t.TempDir() + "/no-such-port")
	cfg.RawCommands = &off
	startModule(t, cfg, rec)
	rec.WaitLast(t, status, "offline") // Run subscribes, if at all, before this
	if f := rec.Filters(); len(f) != 0 {
		t.Errorf("subscribed to %v with raw_commands = false", f)
	}
}

// TestNewTakesTheModuleAsConfigCompletedIt: the rules of an [[at]] table
// are config's (config's TestEveryRuleAnAdapterOnceCheckedIsConfigs); New
// refuses a config built in code that skipped config.Check rather than poll
// without pause.
func TestNewTakesTheModuleAsConfigCompletedIt(t *testing.T) {
	cfg := wifi("/dev/null")
	cfg.Interval = config.Duration{}
	if _, err := New(cfg, gw, testpeer.NewRecorder(), testpeer.NewRecorder(), nil); err == nil || !strings.Contains(err.Error(), "config.Check") {
		t.Errorf("a module that skipped config: err %v", err)
	}
}

func TestRunLeavesNoGoroutinesBehind(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	startModem(t, pair.B)
	rec := testpeer.NewRecorder()
	mod, err := New(configtest.AT(t, wifi(pair.A)), gw, rec, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := testpeer.Go(t, mod.Run)
	rec.WaitLast(t, status, "online")
	rec.Inject(t, gw+"/wifi/at", []byte("nonsense")) // answered from a goroutine Run owns
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	testpeer.GoroutinesGone(t, 5*time.Second, "adapters/internal/serialport.runSession", "adapters/at.(*")
	if rec.Last(status) != "offline" {
		t.Errorf("status after shutdown %q, want offline", rec.Last(status))
	}
}

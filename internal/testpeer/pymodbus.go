package testpeer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// PyModbus is a pymodbus device script (Debian python3-pymodbus) serving a
// register map over Modbus TCP or RTU for one test.
type PyModbus struct {
	Addr    string // 127.0.0.1:port when serving TCP
	Dir     string // its working directory: map, stats and control files
	stats   string
	control string
	cmd     *exec.Cmd
	mu      sync.Mutex
	out     bytes.Buffer
	done    chan struct{}
}

// PyModbusOptions says what the device script serves and where.
type PyModbusOptions struct {
	Script string // path of the device script (the test's testdata/...)
	Map    any    // register map, marshalled to the script's JSON map file
	RTU    string // serial device to serve RTU on; empty: Modbus TCP on a free loopback port
	// RTUOverTCP serves RTU frames (unit id and CRC, no MBAP header) on the
	// TCP port, as a serial device server does.
	RTUOverTCP bool
	Baud       int
	Parity     string // N, E or O
	// Identity is "VENDOR,PRODUCT,REVISION", answered to a read of the
	// basic device identification (function 43/14).
	Identity string
}

// PyModbusStats is what the device script counted.
type PyModbusStats struct {
	Requests map[string]map[string]int `json:"requests"` // unit -> function code -> count
	Writes   []PyModbusWrite           `json:"writes"`
	Total    int                       `json:"total"`
}

// PyModbusWrite is one write the device took.
type PyModbusWrite struct {
	Unit    int   `json:"unit"`
	FC      int   `json:"fc"`
	Address int   `json:"address"`
	Values  []any `json:"values"`
}

// Count is the number of requests with function code fc to unit.
func (s PyModbusStats) Count(unit, fc int) int {
	return s.Requests[fmt.Sprint(unit)][fmt.Sprint(fc)]
}

// NeedPyModbus skips (or fails under EDGED_REQUIRE_PEERS=1) when
// /usr/bin/python3 cannot import pymodbus, and returns the interpreter.
func NeedPyModbus(t testing.TB) string {
	t.Helper()
	// Debian's python3-pymodbus lives with /usr/bin/python3, which another
	// python3 earlier on PATH (a venv, a toolchain) cannot import.
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	var why string
	for _, py := range candidates {
		out, err := exec.Command(py, "-c", "import pymodbus, serial_asyncio").CombinedOutput()
		if err == nil {
			return py
		}
		why += fmt.Sprintf("%s: %v: %s\n", py, err, out)
	}
	msg := "pymodbus not importable (apt-get install python3-pymodbus python3-serial-asyncio):\n" + why
	if os.Getenv("EDGED_REQUIRE_PEERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// StartPyModbus runs the device script and waits until it serves. It is
// stopped when the test ends.
func StartPyModbus(t testing.TB, o PyModbusOptions) *PyModbus {
	t.Helper()
	py := NeedPyModbus(t)
	p := &PyModbus{Dir: t.TempDir(), done: make(chan struct{})}
	p.stats = filepath.Join(p.Dir, "stats.json")
	p.control = filepath.Join(p.Dir, "mute")
	m, err := json.Marshal(o.Map)
	if err != nil {
		t.Fatalf("pymodbus map: %v", err)
	}
	mapFile := filepath.Join(p.Dir, "map.json")
	if err := os.WriteFile(mapFile, m, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{o.Script, "--map", mapFile, "--stats", p.stats, "--control", p.control}
	if o.RTU != "" {
		args = append(args, "--rtu", o.RTU)
	} else {
		args = append(args, "--tcp", "0")
		if o.RTUOverTCP {
			args = append(args, "--rtu-over-tcp")
		}
	}
	if o.Baud > 0 {
		args = append(args, "--baud", fmt.Sprint(o.Baud))
	}
	if o.Parity != "" {
		args = append(args, "--parity", o.Parity)
	}
	if o.Identity != "" {
		args = append(args, "--identity", o.Identity)
	}
	p.cmd = exec.Command(py, args...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &pyStderr{mu: &p.mu, w: &p.out}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start pymodbus device: %v", err)
	}
	t.Cleanup(p.Stop)
	ready := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "READY ") {
				select {
				case ready <- strings.TrimPrefix(line, "READY "):
				default:
				}
			}
		}
	}()
	select {
	case where := <-ready:
		if o.RTU == "" {
			p.Addr = "127.0.0.1:" + where
			WaitListening(t, p.Addr, 10*time.Second)
		}
	case <-p.done:
		t.Fatalf("pymodbus device exited before serving: %s", p.Log())
	case <-time.After(20 * time.Second):
		t.Fatalf("pymodbus device not ready after 20s: %s", p.Log())
	}
	return p
}

type pyStderr struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *pyStderr) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Log returns what the script printed on stderr.
func (p *PyModbus) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Stats reads the device's counters as of its last request.
func (p *PyModbus) Stats(t testing.TB) PyModbusStats {
	t.Helper()
	var s PyModbusStats
	b, err := os.ReadFile(p.stats)
	if err != nil {
		t.Fatalf("pymodbus stats: %v", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("pymodbus stats %q: %v", b, err)
	}
	return s
}

// Mute makes the listed units stop answering (none: all answer again).
func (p *PyModbus) Mute(t testing.TB, units ...int) {
	t.Helper()
	var b strings.Builder
	for _, u := range units {
		fmt.Fprintf(&b, "%d\n", u)
	}
	tmp := p.control + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.control); err != nil {
		t.Fatal(err)
	}
}

// Stop kills the script and waits for it; it is safe to call twice.
func (p *PyModbus) Stop() {
	if p.cmd == nil || p.cmd.Process == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	_ = p.cmd.Wait()
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// edgedBin is the binary built once for the tests that run edged as a process.
var edgedBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edged-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	edgedBin = filepath.Join(dir, "edged")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test -X main.commit=abc1234", "-o", edgedBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building edged:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is edged started as a process, its stderr collected.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	stdout bytes.Buffer
	lines  chan string // stdout and stderr lines as they come
	done   chan struct{}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String() + p.stderr.String()
}

func startEdged(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(edgedBin, args...), lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	outR, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	collect := func(r io.Reader, buf *bytes.Buffer) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			buf.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}
	wg.Add(2)
	go collect(outR, &p.stdout)
	go collect(errR, &p.stderr)
	go func() { wg.Wait(); _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("edged output:\n%s", p.output())
		}
	})
	return p
}

// waitLine waits for an output line containing s.
func (p *proc) waitLine(t *testing.T, s string, limit time.Duration) {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, s) {
				return
			}
		case <-p.done:
			if strings.Contains(p.output(), s) {
				return
			}
			t.Fatalf("edged exited before printing %q", s)
		case <-timer.C:
			t.Fatalf("edged did not print %q within %v", s, limit)
		}
	}
}

// stop sends sig and returns the exit code, failing if edged does not stop:
// it promises 5 s, which a loaded test machine may stretch, so the test
// allows 20 s (a shutdown that waits for the network or a device would take
// a minute or more).
func (p *proc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("edged did not stop within 20 s of %v", sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

func runEdged(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, edgedBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edged.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func brokerConfig(t *testing.T, addr string) string {
	return writeConfig(t, fmt.Sprintf(`
[gateway]
id = "gw-test"
state_dir = %q

[[broker.listener]]
type = "tcp"
address = %q
`, t.TempDir(), addr))
}

func TestVersionPrintsVersionCommitAndGo(t *testing.T) {
	out, code := runEdged(t, "", "version")
	if code != 0 || !strings.Contains(out, "edged v9.9.9-test (commit abc1234, go") {
		t.Fatalf("edged version: exit %d, output %q", code, out)
	}
}

func TestHelp(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no arguments print usage and exit 2", nil, 2, "Usage: edged <command>"},
		{"--help prints usage and exits 0", []string{"--help"}, 0, "Commands:"},
		{"run -h names the config option", []string{"run", "-h"}, 0, "-c file"},
		{"help passwd shows the passwd usage", []string{"help", "passwd"}, 0, "Usage: edged passwd FILE USER"},
		{"an unknown command is named", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"a wrong argument count is a usage error", []string{"passwd", "onlyfile"}, 2, "expected 2 argument(s), got 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := runEdged(t, "", c.args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d (want %d), output:\n%s\nwant it to contain %q", code, c.code, out, c.want)
			}
		})
	}
}

func TestCheckAcceptsShippedConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.toml")
	if len(files) == 0 {
		t.Fatal("no configs/*.toml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// The files it names under /etc/edged/ are made up for the test.
			path := writeConfig(t, testpeer.NewEtcEdged(t).Rewrite(string(data)))
			out, code := runEdged(t, "", "check", "-c", path)
			if code != 0 || !strings.Contains(out, ": ok") {
				t.Fatalf("edged check %s: exit %d\n%s", f, code, out)
			}
		})
	}
}

func TestCheckListsEveryErrorWithFileAndLine(t *testing.T) {
	path := writeConfig(t, `[gateway]
id = "pi-01"
stat_dir = "/tmp/x"

[broker]
max_clients = "many"
`)
	out, code := runEdged(t, "", "check", "-c", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{path + ":3: gateway.stat_dir", `did you mean "state_dir"`, path + ":6: broker.max_clients"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckWarnsAbout4xxxxAddressesButAccepts(t *testing.T) {
	path := writeConfig(t, `[gateway]
id = "pi-01"

[[modbus]]
name = "bus"
address = "127.0.0.1:502"

  [[modbus.device]]
  name = "meter"
  points = [ { name = "energy", table = "holding", address = 40001, type = "uint32" } ]
`)
	out, code := runEdged(t, "", "check", "-c", path)
	want := "warning: " + path + ":10: modbus[0].device[0].points[0].address: looks like 4xxxx notation"
	if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, ": ok") {
		t.Fatalf("exit %d, want 0 with %q\n%s", code, want, out)
	}
}

func TestCheckMissingFileSaysSo(t *testing.T) {
	out, code := runEdged(t, "", "check", "-c", "/nonexistent/edged.toml")
	if code != 1 || !strings.Contains(out, "/nonexistent/edged.toml") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

func TestPasswdWritesAFileMosquittoAccepts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	out, code := runEdged(t, "s3cret\n", "passwd", file, "alice")
	if code != 0 {
		t.Fatalf("edged passwd: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "s3cret") {
		t.Fatalf("the password was echoed: %s", out)
	}
	data, err := os.ReadFile(file)
	if err != nil || !strings.HasPrefix(string(data), "alice:$7$") {
		t.Fatalf("users file: %q %v", data, err)
	}
	// "user root": as root, mosquitto would drop to its own user and not read the 0600 file.
	m := testpeer.StartMosquitto(t, "user root\npassword_file "+file+"\nallow_anonymous false")
	pub := testpeer.Need(t, "mosquitto_pub", "mosquitto-clients")
	host, port, _ := net.SplitHostPort(m.Addr)
	ok := exec.Command(pub, "-h", host, "-p", port, "-u", "alice", "-P", "s3cret", "-t", "t", "-m", "x")
	if out, err := ok.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto refused the right password: %v %s", err, out)
	}
	bad := exec.Command(pub, "-h", host, "-p", port, "-u", "alice", "-P", "wrong", "-t", "t", "-m", "x")
	if err := bad.Run(); err == nil {
		t.Fatal("mosquitto accepted a wrong password")
	}
}

func TestRunStopsCleanlyOnSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			addr := testpeer.FreePort(t)
			p := startEdged(t, nil, "run", "-c", brokerConfig(t, addr))
			testpeer.WaitListening(t, addr, 10*time.Second)
			if code := p.stop(t, sig); code != 0 {
				t.Fatalf("exit code %d, want 0", code)
			}
		})
	}
}

func TestRunRefusesAPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, code := runEdged(t, "", "run", "-c", brokerConfig(t, l.Addr().String()))
	if code != 1 || !strings.Contains(out, l.Addr().String()) {
		t.Fatalf("exit %d, want 1 naming the address\n%s", code, out)
	}
}

func TestRunTellsSystemdWhenReadyAndPingsTheWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	addr := testpeer.FreePort(t)
	p := startEdged(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000"}, "run", "-c", brokerConfig(t, addr))
	want := []string{"READY=1", "WATCHDOG=1"}
	buf := make([]byte, 256)
	for len(want) > 0 {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", want[0], err)
		}
		if string(buf[:n]) == want[0] {
			if want[0] == "READY=1" {
				// READY means the listeners are open.
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatalf("READY=1 sent before the listener was open: %v", err)
				}
				c.Close()
			}
			want = want[1:]
		}
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestDemoPublishesSimulatedReadingsAndTakesWrites(t *testing.T) {
	addr := testpeer.FreePort(t)
	host, port, _ := net.SplitHostPort(addr)
	p := startEdged(t, nil, "demo", "-listen", addr)
	p.waitLine(t, "mosquitto_sub -h "+host+" -p "+port+" -v -t 'demo/#'", 15*time.Second)
	sub := testpeer.StartMosquittoSub(t, "-h", host, "-p", port, "-t", "demo/#")
	want := map[string]bool{"demo/meter/voltage": false, "demo/meter/total_active_energy": false,
		"demo/weather/temperature": false, "demo/weather/humidity": false, "demo/meter/status": false,
		"demo/edged/stats": false}
	for missing := len(want); missing > 0; {
		topic, payload, _ := strings.Cut(sub.Next(t, 15*time.Second), " ")
		if seen, ok := want[topic]; ok && !seen {
			switch topic {
			case "demo/meter/status":
			case "demo/edged/stats":
				if !strings.Contains(payload, `"broker":{`) || !strings.Contains(payload, `"weather":{`) {
					t.Fatalf("stats lack the broker or a device: %s", payload)
				}
			default:
				if !strings.Contains(payload, `"value":`) {
					t.Fatalf("%s carries no value: %s", topic, payload)
				}
			}
			want[topic] = true
			missing--
		}
	}
	if out, err := testpeer.MosquittoPub(t, "-h", host, "-p", port, "-t", "demo/meter/relay/set", "-m", "true"); err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, out)
	}
	for {
		topic, payload, _ := strings.Cut(sub.Next(t, 15*time.Second), " ")
		if topic == "demo/meter/relay" && strings.Contains(payload, `"value":true`) {
			break
		}
		if strings.HasPrefix(topic, "demo/meter/relay/set/error") {
			t.Fatalf("write refused: %s", payload)
		}
	}
	if code := p.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

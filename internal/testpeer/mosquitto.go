package testpeer

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mosquitto is a running mosquitto broker started for one test.
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	Dir  string // its working directory (config, logs)
	cmd  *exec.Cmd
	log  *Output

	exited chan struct{} // closed when the process has ended
}

// Output collects what a process or a logger writes while tests read it.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Output) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Output) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartMosquitto runs mosquitto on a free loopback port with the given extra
// configuration lines (the listener line is written for you unless extra
// starts with its own "listener", allow_anonymous true unless extra sets
// it, and, as root, "user root" unless extra names a user). It is stopped
// when the test ends.
func StartMosquitto(t testing.TB, extra string) *Mosquitto {
	t.Helper()
	return StartMosquittoPorts(t, 0, func([]string) string { return extra })
}

// StartMosquittoPorts is StartMosquitto for a configuration with n more
// listeners: extra gets n free loopback addresses for them. A free port
// can be taken by someone else before mosquitto binds it (other tests on
// the machine open connections all the time); then mosquitto exits, and it
// is started again on new ports, up to three times.
func StartMosquittoPorts(t testing.TB, n int, extra func(addrs []string) string) *Mosquitto {
	t.Helper()
	bin := Need(t, "mosquitto", "mosquitto")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("mosquitto: %v", err)
	}
	for attempt := 1; ; attempt++ {
		addrs := make([]string, n)
		for i := range addrs {
			addrs[i] = FreePort(t)
		}
		m, err := startMosquitto(t, bin, extra(addrs), addrs)
		if err == nil {
			return m
		}
		if attempt == 3 || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("mosquitto: %v", err)
		}
		t.Logf("mosquitto: %v; trying other ports", err)
	}
}

func startMosquitto(t testing.TB, bin, extra string, more []string) (*Mosquitto, error) {
	t.Helper()
	m := &Mosquitto{Addr: FreePort(t), Dir: t.TempDir(), log: &Output{}, exited: make(chan struct{})}
	conf := fmt.Sprintf("listener %d 127.0.0.1\n", Port(t, m.Addr))
	if !strings.Contains(extra, "allow_anonymous") {
		conf += "allow_anonymous true\n"
	}
	if strings.HasPrefix(extra, "listener") {
		conf = ""
	}
	if os.Geteuid() == 0 && !strings.Contains(extra, "user ") {
		// As root, mosquitto drops to its own user, which cannot read the
		// test's 0600 certificates and password files.
		conf += "user root\n"
	}
	conf += extra + "\n"
	path := filepath.Join(m.Dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(bin, "-c", path)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(m.Stop)
	deadline := time.Now().Add(10 * time.Second)
	// Mosquitto says "running" once every listener is bound, and exits on
	// the first it cannot bind. Wait for one or the other: a port answering
	// is not proof, since whoever took it answers too.
	for !strings.Contains(m.Log(), " running") {
		select {
		case <-m.exited:
			return nil, fmt.Errorf("exited before it was running: %s", m.Log())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, fmt.Errorf("not running after 10s: %s", m.Log())
		}
	}
	for _, addr := range append([]string{m.Addr}, more...) {
		for !listening(addr) {
			select {
			case <-m.exited:
				return nil, fmt.Errorf("exited before listening on %s: %s", addr, m.Log())
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				m.Stop()
				return nil, fmt.Errorf("not listening on %s after 10s: %s", addr, m.Log())
			}
		}
	}
	// Every listener answers; one that failed to bind makes mosquitto exit
	// right after the others were opened.
	select {
	case <-m.exited:
		return nil, fmt.Errorf("exited after opening its listeners: %s", m.Log())
	default:
	}
	return m, nil
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Stop kills the broker and waits for it; it is safe to call twice.
func (m *Mosquitto) Stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
}

// Log returns what mosquitto printed so far.
func (m *Mosquitto) Log() string { return m.log.String() }

// MosquittoPasswd writes a password file entry with Debian's mosquitto_passwd.
func MosquittoPasswd(t testing.TB, file, user, password string) {
	t.Helper()
	bin := Need(t, "mosquitto_passwd", "mosquitto")
	args := []string{"-b", file, user, password}
	if _, err := os.Stat(file); err != nil {
		args = []string{"-c", "-b", file, user, password}
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
}

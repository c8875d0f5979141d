package testpeer

import (
	"bytes"
	"fmt"
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
	log  *lockedBuffer
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartMosquitto runs mosquitto on a free loopback port with the given extra
// configuration lines (the listener line is written for you unless extra
// starts with its own "listener", and allow_anonymous true unless extra sets
// it). It is stopped when the test ends.
func StartMosquitto(t testing.TB, extra string) *Mosquitto {
	t.Helper()
	bin := Need(t, "mosquitto", "mosquitto")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("mosquitto: %v", err)
	}
	m := &Mosquitto{Addr: FreePort(t), Dir: t.TempDir(), log: &lockedBuffer{}}
	conf := fmt.Sprintf("listener %d 127.0.0.1\n", Port(t, m.Addr))
	if !strings.Contains(extra, "allow_anonymous") {
		conf += "allow_anonymous true\n"
	}
	if strings.HasPrefix(extra, "listener") {
		conf = ""
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
	t.Cleanup(m.Stop)
	WaitListening(t, m.Addr, 10*time.Second)
	return m
}

// Stop kills the broker and waits for it; it is safe to call twice.
func (m *Mosquitto) Stop() {
	if m.cmd == nil || m.cmd.Process == nil || m.cmd.ProcessState != nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
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

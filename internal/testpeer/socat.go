package testpeer

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PtyPair is two pseudo-terminals joined by socat: what is written to one end
// is read from the other, like a null-modem cable between two serial ports.
// A and B are stable symlinks to the pty devices, so a test can stop the pair
// (the port vanishes, as on a USB unplug) and start it again under the same
// names.
type PtyPair struct {
	A, B string // link paths: open A on one side, B on the other

	t    testing.TB
	bin  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPtyPair runs `socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B` with
// links in a fresh temporary directory and waits until socat moves data. The
// pair is stopped when the test ends.
func StartPtyPair(t testing.TB) *PtyPair {
	t.Helper()
	bin := Need(t, "socat", "socat")
	dir := t.TempDir()
	p := &PtyPair{A: filepath.Join(dir, "ptyA"), B: filepath.Join(dir, "ptyB"), t: t, bin: bin}
	t.Cleanup(p.Stop)
	p.Start()
	return p
}

// Start starts socat again after Stop, with the same link names. It is a no-op
// while the pair runs.
func (p *PtyPair) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return
	}
	// A link left by a socat that could not clean up would make socat refuse.
	_ = os.Remove(p.A)
	_ = os.Remove(p.B)
	cmd := exec.Command(p.bin, "-d", "-d",
		"pty,raw,echo=0,link="+p.A,
		"pty,raw,echo=0,link="+p.B)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		p.t.Fatalf("socat: %v", err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start socat: %v", err)
	}
	ready := make(chan struct{})
	done := make(chan struct{})
	var logMu sync.Mutex
	var log strings.Builder
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			// socat -d -d says this once both ends are open and linked.
			if !signalled && strings.Contains(sc.Text(), "starting data transfer loop") {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	select {
	case <-ready:
	case <-done:
		logMu.Lock()
		defer logMu.Unlock()
		p.t.Fatalf("socat exited before it was ready:\n%s", log.String())
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		logMu.Lock()
		defer logMu.Unlock()
		p.t.Fatalf("socat not ready after 10s:\n%s", log.String())
	}
	for _, l := range []string{p.A, p.B} {
		if _, err := os.Stat(l); err != nil {
			_ = cmd.Process.Kill()
			<-done
			p.t.Fatalf("socat ready but link missing: %v", err)
		}
	}
	p.cmd, p.done = cmd, done
}

// Stop ends socat and waits for it; both pty devices and their links vanish.
// It is safe to call twice.
func (p *PtyPair) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	// SIGTERM lets socat remove its links, as a real device node disappears.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	for _, l := range []string{p.A, p.B} {
		if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
			p.t.Logf("remove %s: %v", l, err)
		}
	}
	p.cmd, p.done = nil, nil
}

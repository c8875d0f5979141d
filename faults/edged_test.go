package faults

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Edged runs the edged binary as the user would (`edged run -c FILE`), one
// process after another on the same config, and keeps what every one of
// them printed in one log file.
type Edged struct {
	Bin    string // the edged binary
	Config string // its config file
	Listen string // the local listener in the config, host:port
	Log    string // where the output of every run goes

	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

// Start starts edged and waits until its local listener accepts
// connections. A process that exits first, or does not listen within
// limit, is an error that quotes the end of the log.
func (e *Edged) Start(limit time.Duration) error {
	if e.Running() {
		return errors.New("edged is already running")
	}
	out, err := os.OpenFile(e.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	e.runs++
	fmt.Fprintf(out, "=== run %d at %s\n", e.runs, time.Now().Format(time.RFC3339Nano))
	e.cmd = exec.Command(e.Bin, "run", "-c", e.Config)
	e.cmd.Stdout, e.cmd.Stderr = out, out
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("start edged: %w", err)
	}
	done := make(chan struct{})
	e.done = done
	go func(c *exec.Cmd) { _ = c.Wait(); close(done) }(e.cmd)
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", e.Listen, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("edged exited (%v) before listening on %s:\n%s", e.cmd.ProcessState, e.Listen, e.Tail(30))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("edged not listening on %s within %v:\n%s", e.Listen, limit, e.Tail(30))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Running reports whether the last process started is still alive.
func (e *Edged) Running() bool {
	if e.done == nil {
		return false
	}
	select {
	case <-e.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to end. It does nothing when
// none runs.
func (e *Edged) Kill() {
	if !e.Running() {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGKILL)
	<-e.done
}

// Stop sends SIGTERM and waits up to limit for the process to end.
func (e *Edged) Stop(limit time.Duration) error {
	if !e.Running() {
		return nil
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
		if code := e.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("edged exited %d after SIGTERM:\n%s", code, e.Tail(20))
		}
		return nil
	case <-time.After(limit):
		e.Kill()
		return fmt.Errorf("edged did not stop within %v of SIGTERM:\n%s", limit, e.Tail(20))
	}
}

// Tail returns the last n lines of the log.
func (e *Edged) Tail(n int) string {
	b, err := os.ReadFile(e.Log)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

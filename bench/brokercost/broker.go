package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// brokerProc is one broker under measurement: a process of its own, started
// fresh for every run so that its peak RSS belongs to that run's load.
type brokerProc struct {
	kind string // "edged" | "mosquitto" | "demo" (edged demo: simulated devices) | "serve" (edged's broker alone, profiled)
	addr string
	cmd  *exec.Cmd
	dir  string
	out  bytes.Buffer
}

// startBroker starts kind on a free loopback port with its defaults. oneCore
// pins it to CPU 0 (and gives edged GOMAXPROCS=1), as a Pi Zero runs it.
func startBroker(kind, edgedBin string, oneCore bool, profiles ...string) (*brokerProc, error) {
	dir, err := os.MkdirTemp("", "brokercost-")
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	var argv []string
	switch kind {
	case "edged":
		conf := fmt.Sprintf("[gateway]\nid = \"bench\"\nstate_dir = %q\n\n[[broker.listener]]\naddress = %q\n", filepath.Join(dir, "state"), addr)
		path := filepath.Join(dir, "edged.toml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		argv = []string{edgedBin, "run", "-c", path}
	case "demo":
		argv = []string{edgedBin, "demo", "-listen", addr}
	case "serve":
		argv = []string{edgedBin, "-serve", addr, "-cpuprofile", profiles[0], "-memprofile", profiles[1]}
	case "mosquitto":
		conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\n", port)
		path := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		argv = []string{"mosquitto", "-c", path}
	default:
		return nil, fmt.Errorf("unknown broker %q", kind)
	}
	if oneCore {
		argv = append([]string{"taskset", "-c", "0"}, argv...)
	}
	p := &brokerProc{kind: kind, addr: addr, dir: dir}
	// taskset execs the broker, so the pid is the broker's own.
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.Env = os.Environ()
	if oneCore && kind != "mosquitto" {
		p.cmd.Env = append(p.cmd.Env, "GOMAXPROCS=1")
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	if err := waitListening(addr, 10*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w\n%s", kind, err, p.out.String())
	}
	return p, nil
}

func (p *brokerProc) pid() int { return p.cmd.Process.Pid }

func (p *brokerProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(p.dir)
}

// cpuSeconds is the broker's user and system CPU time so far, all threads
// (/proc/PID/stat utime, stime).
func (p *brokerProc) cpuSeconds() (user, sys float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces; fields count from after its ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return ut / clockTicks, st / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// peakRSS is the broker's peak resident set (VmHWM) in bytes.
func (p *brokerProc) peakRSS() (int64, error) {
	return procStatusKB(p.pid(), "VmHWM:")
}

func procStatusKB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", key, pid)
}

// switches is the broker's context switches so far, voluntary and not, all
// threads: each is a wake-up or a preemption.
func (p *brokerProc) switches() (int64, error) {
	var n int64
	err := p.eachThread("status", func(b []byte) error {
		for _, line := range strings.Split(string(b), "\n") {
			for _, key := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if rest, ok := strings.CutPrefix(line, key); ok {
					v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
					n += v
				}
			}
		}
		return nil
	})
	return n, err
}

// eachThread calls f with the content of /proc/PID/task/TID/file for each
// of the broker's threads; a thread that ended meanwhile is skipped.
func (p *brokerProc) eachThread(file string, f func([]byte) error) error {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.pid()))
	if err != nil {
		return err
	}
	for _, e := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/%s", p.pid(), e.Name(), file))
		if err != nil {
			continue
		}
		if err := f(b); err != nil {
			return err
		}
	}
	return nil
}

// syscalls is the broker's read and write system calls so far, all
// threads (/proc/PID/io syscr, syscw): reads and writes of sockets, the
// calls a message costs most in.
func (p *brokerProc) syscalls() (reads, writes int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", p.pid()))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "syscr:"); ok {
			reads, _ = strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		}
		if rest, ok := strings.CutPrefix(line, "syscw:"); ok {
			writes, _ = strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		}
	}
	return reads, writes, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitListening(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %s: %w", addr, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startServe starts this program as edged's broker alone, profiled (see serve).
func startServe(self, cpuFile, memFile string) (*brokerProc, error) {
	return startBroker("serve", self, false, cpuFile, memFile)
}

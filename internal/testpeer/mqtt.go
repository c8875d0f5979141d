package testpeer

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// subMsgPrefix marks a received message in mosquitto_sub's output, so that
// messages are told apart from its -d debug lines.
const subMsgPrefix = "=msg= "

// MosquittoSub is a running mosquitto_sub whose received messages are
// collected as "topic payload" strings.
type MosquittoSub struct {
	cmd      *exec.Cmd
	msgs     chan string
	subacked chan struct{}
	exited   chan struct{}
	mu       sync.Mutex
	out      bytes.Buffer // everything it printed, for failure messages
}

// StartMosquittoSub runs mosquitto_sub with args (host, port, topic, -V,
// -q ...; debug output and the message format are added) and waits until
// the broker acknowledged its subscription. It is killed when the test ends.
func StartMosquittoSub(t testing.TB, args ...string) *MosquittoSub {
	t.Helper()
	bin := Need(t, "mosquitto_sub", "mosquitto-clients")
	s := &MosquittoSub{msgs: make(chan string, 10000), subacked: make(chan struct{}), exited: make(chan struct{})}
	all := append([]string{"-d", "-F", subMsgPrefix + "%t %p"}, args...)
	// mosquitto_sub block-buffers stdout into a pipe; stdbuf makes it write
	// each line as it happens, so the SUBACK and messages arrive in time.
	if sb, err := exec.LookPath("stdbuf"); err == nil {
		s.cmd = exec.Command(sb, append([]string{"-oL", bin}, all...)...)
	} else {
		s.cmd = exec.Command(bin, all...)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &lockedWriter{mu: &s.mu, b: &s.out}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start mosquitto_sub: %v", err)
	}
	go func() {
		defer close(s.exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			s.mu.Unlock()
			if m, ok := strings.CutPrefix(line, subMsgPrefix); ok {
				s.msgs <- m
			} else if strings.Contains(line, "received SUBACK") {
				once.Do(func() { close(s.subacked) })
			}
		}
		_ = s.cmd.Wait()
	}()
	t.Cleanup(s.Stop)
	select {
	case <-s.subacked:
	case <-s.exited:
		t.Fatalf("mosquitto_sub %v exited before subscribing:\n%s", args, s.Output())
	case <-time.After(10 * time.Second):
		t.Fatalf("mosquitto_sub %v: no SUBACK within 10s:\n%s", args, s.Output())
	}
	return s
}

// Next returns the next message ("topic payload"), failing the test after limit.
func (s *MosquittoSub) Next(t testing.TB, limit time.Duration) string {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(limit):
		t.Fatalf("mosquitto_sub: no message within %v; output:\n%s", limit, s.Output())
		return ""
	}
}

// Exited is closed when mosquitto_sub has ended.
func (s *MosquittoSub) Exited() <-chan struct{} { return s.exited }

// Output is everything mosquitto_sub printed so far.
func (s *MosquittoSub) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// Stop kills mosquitto_sub and waits for it.
func (s *MosquittoSub) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
	<-s.exited
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// MosquittoPub runs mosquitto_pub with args and returns what it printed and
// its error (a non-zero exit is an *exec.ExitError). It is given 10s.
func MosquittoPub(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return MosquittoPubInput(t, "", args...)
}

// MosquittoPubInput is MosquittoPub with stdin, for -l (one message per
// line, published in order over one connection) and -s.
func MosquittoPubInput(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	bin := Need(t, "mosquitto_pub", "mosquitto-clients")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MosquittoSubFile is a mosquitto_sub writing the messages it receives to a
// file, one line each, as a user tailing a broker into a log would: the
// fastest subscriber there is, and one that never stops reading.
type MosquittoSubFile struct {
	path   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartMosquittoSubFile runs mosquitto_sub with args (host, port, topic, -q
// ...), its output going to path. It cannot tell when its subscription
// was acknowledged: publish until Lines counts one. It is killed when the
// test ends.
func StartMosquittoSubFile(t testing.TB, path string, args ...string) *MosquittoSubFile {
	t.Helper()
	bin := Need(t, "mosquitto_sub", "mosquitto-clients")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &MosquittoSubFile{path: path, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start mosquitto_sub: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
	return s
}

// Lines counts the lines written so far.
func (s *MosquittoSubFile) Lines(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte{'\n'})
}

// Count counts the lines written so far that are exactly line.
func (s *MosquittoSubFile) Count(t testing.TB, line string) int {
	t.Helper()
	b, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for l := range bytes.SplitSeq(b, []byte{'\n'}) {
		if string(l) == line {
			n++
		}
	}
	return n
}

// Exited is closed when mosquitto_sub has ended.
func (s *MosquittoSubFile) Exited() <-chan struct{} { return s.exited }

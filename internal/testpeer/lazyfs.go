package testpeer

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LazyFSEnv names the environment variable that holds the path of the
// lazyfs binary (libpcache.so beside it); without it lazyfs is looked up on
// PATH. `make powercut` builds it from ../shared/tools/lazyfs and sets it.
const LazyFSEnv = "EDGED_LAZYFS"

// LazyFS is a directory mounted through LazyFS, a FUSE file system with a
// page cache of its own: what a program writes reaches the directory below
// (Root) only when it fsyncs. Throwing that cache away is what a power cut
// does to a program that trusted the kernel's page cache.
type LazyFS struct {
	Dir  string // the mount point: give this to the program under test
	Root string // the directory below: what a power cut leaves

	bin, conf, fifo, done string
	cmd                   *exec.Cmd
	exited                chan struct{} // closed when this mount's lazyfs process has ended
	log                   *markLog
	cmds                  *os.File    // the fault FIFO, held open for writing
	finished              chan string // lines from the completion FIFO
	doneFile              *os.File
}

// StartLazyFS mounts a fresh LazyFS on a temporary directory. It needs root,
// /dev/fuse, fusermount3 and a built lazyfs (see LazyFSEnv); where one is
// missing the test is skipped with the reason, or fails when
// EDGED_REQUIRE_PEERS=1. It is unmounted when the test ends.
func StartLazyFS(t testing.TB) *LazyFS {
	t.Helper()
	bin := os.Getenv(LazyFSEnv)
	if bin == "" {
		if p, err := exec.LookPath("lazyfs"); err == nil {
			bin = p
		}
	}
	switch {
	case bin == "":
		Unavailable(t, "LazyFS is not built: `make powercut` builds it from ../shared/tools/lazyfs (or set "+LazyFSEnv+")")
	case os.Geteuid() != 0:
		Unavailable(t, "LazyFS needs root to mount a FUSE file system with allow_other")
	}
	if _, err := os.Stat(bin); err != nil {
		Unavailable(t, fmt.Sprintf("LazyFS binary: %v", err))
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		Unavailable(t, "LazyFS needs /dev/fuse (in a container: --device /dev/fuse --cap-add SYS_ADMIN)")
	}
	Need(t, "fusermount3", "fuse3")

	// A short base directory: fault commands name files by their path below
	// Root, and LazyFS reads a command in one read of at most 100 bytes.
	base, err := os.MkdirTemp("/tmp", "lzfs")
	if err != nil {
		if base, err = os.MkdirTemp("", "lzfs"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	l := &LazyFS{
		Dir: filepath.Join(base, "mnt"), Root: filepath.Join(base, "root"), bin: bin,
		conf: filepath.Join(base, "lazyfs.toml"), fifo: filepath.Join(base, "faults.fifo"),
		done: filepath.Join(base, "done.fifo"), log: newMarkLog(), finished: make(chan string, 16),
	}
	for _, d := range []string{l.Dir, l.Root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`[faults]
fifo_path = %q
fifo_path_completed = %q
[cache]
apply_eviction = false
[cache.simple]
custom_size = "256mb"
blocks_per_page = 1
[filesystem]
log_all_operations = false
logfile = ""
`, l.fifo, l.done)
	if err := os.WriteFile(l.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// The FIFOs are made and opened here, read-write so that neither open
	// waits for the other side: lazyfs opens the completion FIFO for writing
	// and would block until a reader exists.
	for _, f := range []string{l.fifo, l.done} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Fatalf("lazyfs fifo: %v", err)
		}
	}
	if l.cmds, err = os.OpenFile(l.fifo, os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	if l.doneFile, err = os.OpenFile(l.done, os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(l.doneFile)
		for sc.Scan() {
			l.finished <- sc.Text()
		}
	}()
	t.Cleanup(l.stop)
	l.mount(t)
	return l
}

// Unavailable skips the test because something it needs is missing, saying
// what; with EDGED_REQUIRE_PEERS=1 it fails the test instead.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("EDGED_REQUIRE_PEERS") == "1" {
		t.Fatalf("%s (EDGED_REQUIRE_PEERS=1)", why)
	}
	t.Skipf("%s (set EDGED_REQUIRE_PEERS=1 to fail instead)", why)
}

func (l *LazyFS) mount(t testing.TB) {
	t.Helper()
	l.cmd = exec.Command(l.bin, l.Dir, "--config-path", l.conf, "-o", "allow_other",
		"-o", "modules=subdir", "-o", "subdir="+l.Root, "-f")
	l.cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Dir(l.bin))
	l.cmd.Stdout, l.cmd.Stderr = l.log, l.log
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("start lazyfs: %v", err)
	}
	exited := make(chan struct{})
	l.exited = exited
	go func(c *exec.Cmd) { _ = c.Wait(); close(exited) }(l.cmd)
	deadline := time.Now().Add(10 * time.Second)
	ready := l.log.count(markReady)
	for !l.mounted() || l.log.count(markReady) == ready {
		select {
		case <-exited:
			t.Fatalf("lazyfs exited before mounting %s:\n%s", l.Dir, l.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lazyfs did not mount %s within 10s:\n%s", l.Dir, l.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mounted reports whether a lazyfs file system is mounted on Dir.
func (l *LazyFS) mounted() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == l.Dir && strings.Contains(line, "fuse.lazyfs") {
			return true
		}
	}
	return false
}

// ClearCache throws away every write not yet fsynced — a power cut — and
// returns once LazyFS has done it. Stop the program under test first (with
// SIGKILL), as a power cut would.
func (l *LazyFS) ClearCache(t testing.TB) {
	t.Helper()
	l.command(t, "lazyfs::clear-cache")
	select {
	case line := <-l.finished:
		if line != "finished::clear-cache" {
			t.Fatalf("lazyfs: unexpected completion %q", line)
		}
	case <-l.exited:
		t.Fatalf("lazyfs ended while clearing its cache:\n%s", l.Log())
	case <-time.After(10 * time.Second):
		t.Fatalf("lazyfs: cache not cleared within 10s:\n%s", l.Log())
	}
}

// TearNextWrite arms a torn write: the next write to file (relative to Dir)
// is cut into parts equal pieces of which only those numbered in persist
// (from 1) reach the disk, and LazyFS then dies, losing everything else it
// had not synced. Crashed tells when it happened; Remount brings the file
// system back.
func (l *LazyFS) TearNextWrite(t testing.TB, file string, parts int, persist []int) {
	t.Helper()
	l.configure(t, fmt.Sprintf("lazyfs::torn-op::file=%s::parts=%d::persist=%s",
		filepath.Join(l.Root, file), parts, joinInts(persist)), markConfigured)
}

// ReorderNextWrites arms a torn sequence: of the next run of writes to file
// (relative to Dir) without an fsync between them, only those numbered in
// persist (from 1) reach the disk, and LazyFS then dies — later writes
// persisted while earlier ones were lost, as a disk that reorders them.
func (l *LazyFS) ReorderNextWrites(t testing.TB, file string, persist []int) {
	t.Helper()
	l.configure(t, fmt.Sprintf("lazyfs::torn-seq::op=write::file=%s::persist=%s",
		filepath.Join(l.Root, file), joinInts(persist)), markConfigured)
}

// CrashAt arms a crash: LazyFS dies, losing what it had not synced, when
// (timing "before" or "after") the file system operation op (write, fsync,
// rename ...) touches a path matching the regular expression pathRE.
func (l *LazyFS) CrashAt(t testing.TB, timing, op, pathRE string) {
	t.Helper()
	l.configure(t, fmt.Sprintf("lazyfs::crash::timing=%s::op=%s::from_rgx=%s", timing, op, pathRE), markCrashArmed)
}

// configure sends a fault command and waits until LazyFS has accepted it.
func (l *LazyFS) configure(t testing.TB, cmd, accepted string) {
	t.Helper()
	before, refused := l.log.count(accepted), l.log.count(markRefused)
	l.command(t, cmd)
	deadline := time.Now().Add(10 * time.Second)
	for l.log.count(accepted) == before {
		if l.log.count(markRefused) > refused {
			t.Fatalf("lazyfs refused %q:\n%s", cmd, l.Log())
		}
		if time.Now().After(deadline) {
			t.Fatalf("lazyfs did not accept %q within 10s:\n%s", cmd, l.Log())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// maxCommand is the longest fault command LazyFS reads whole, newline
// included.
const maxCommand = 100

func (l *LazyFS) command(t testing.TB, cmd string) {
	t.Helper()
	if len(cmd)+1 > maxCommand {
		t.Fatalf("lazyfs command %q is longer than the %d bytes LazyFS reads at once", cmd, maxCommand)
	}
	select {
	case <-l.exited:
		t.Fatalf("lazyfs is not running (command %q):\n%s", cmd, l.Log())
	default:
	}
	// One write of less than PIPE_BUF bytes reaches the reader whole.
	if _, err := l.cmds.WriteString(cmd + "\n"); err != nil {
		t.Fatalf("lazyfs fifo: %v", err)
	}
}

// Crashed is closed when the current LazyFS process has ended, as an armed
// fault makes it.
func (l *LazyFS) Crashed() <-chan struct{} { return l.exited }

// Remount kills LazyFS if it still runs — its unsynced cache is lost, as in
// a power cut — unmounts Dir and mounts it again. Stop the program under
// test first.
func (l *LazyFS) Remount(t testing.TB) {
	t.Helper()
	l.unmount()
	l.mount(t)
}

func (l *LazyFS) unmount() {
	if l.cmd != nil && l.cmd.Process != nil {
		_ = l.cmd.Process.Kill()
		<-l.exited
	}
	if l.mounted() {
		if err := exec.Command("fusermount3", "-u", "-z", l.Dir).Run(); err != nil {
			_ = exec.Command("umount", "-l", l.Dir).Run()
		}
	}
}

func (l *LazyFS) stop() {
	l.unmount()
	l.cmds.Close()
	l.doneFile.Close()
}

// Log returns the last lines LazyFS printed (all mounts).
func (l *LazyFS) Log() string { return l.log.String() }

// What LazyFS prints when it is ready, and when it accepts or refuses a
// fault command.
const (
	markReady      = "waiting for fault commands"
	markConfigured = "configured successfully"
	markCrashArmed = "received: VALID crash fault"
	markRefused    = "INVALID"
)

// markLog keeps the last lines of LazyFS's output — it logs every sparse
// write, far too much to keep — and counts the lines that carry a mark.
type markLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	counts  map[string]int
}

const markLogLines = 200

func newMarkLog() *markLog { return &markLog{counts: map[string]int{}} }

func (m *markLog) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.partial = append(m.partial, p...)
	for {
		i := bytes.IndexByte(m.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(m.partial[:i])
		m.partial = m.partial[i+1:]
		if strings.Contains(line, "Calling a sparse write") {
			continue
		}
		for _, mark := range []string{markReady, markConfigured, markCrashArmed, markRefused} {
			if strings.Contains(line, mark) {
				m.counts[mark]++
			}
		}
		if m.lines = append(m.lines, line); len(m.lines) > markLogLines {
			m.lines = m.lines[len(m.lines)-markLogLines:]
		}
	}
}

func (m *markLog) count(mark string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[mark]
}

func (m *markLog) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.lines, "\n")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

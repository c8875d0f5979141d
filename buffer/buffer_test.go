package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edged/edged/telemetry"
)

// TestMain lets the test binary double as the helper processes of the crash
// test and the memory benchmark (see helpers_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// logRecorder is a slog handler that keeps the records for assertions.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// count returns how many records at level have msg containing sub.
func (h *logRecorder) count(level slog.Level, sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Level == level && strings.Contains(r.Message, sub) {
			n++
		}
	}
	return n
}

// fakeClock is an injectable clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openT(t testing.TB, opts Options) *Buffer {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "state", "buffer.db")
	}
	b, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", opts.Path, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func msg(topic string, i int) telemetry.Message {
	return telemetry.Message{Topic: topic, Payload: fmt.Appendf(nil, "%d", i), QoS: 1}
}

func appendN(t testing.TB, b *Buffer, topic string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := b.Append(context.Background(), msg(topic, i)); err != nil {
			t.Fatalf("Append %s %d: %v", topic, i, err)
		}
	}
}

// readAll reads every entry from the start, in pages of 7 to exercise paging.
func readAll(t testing.TB, b *Buffer) []Entry {
	t.Helper()
	var out []Entry
	after := int64(0)
	for {
		es, err := b.Read(after, 7)
		if err != nil {
			t.Fatalf("Read after %d: %v", after, err)
		}
		if len(es) == 0 {
			return out
		}
		out = append(out, es...)
		after = es[len(es)-1].Seq
	}
}

func payloads(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Msg.Payload)
	}
	return out
}

func seqRange(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReopen(t *testing.T) {
	t.Run("un-acked entries survive a close and are redelivered in order, acked ones are gone", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "buffer.db")
		b := openT(t, Options{Path: path})
		appendN(t, b, "gw/dev/p", 0, 50)
		es := readAll(t, b)
		if len(es) != 50 {
			t.Fatalf("read %d entries, want 50", len(es))
		}
		// Ack the first 20 and every third of the rest, as a bridge with a
		// window of in-flight publishes would.
		var acked []int64
		var want []string
		for i, e := range es {
			if i < 20 || i%3 == 0 {
				acked = append(acked, e.Seq)
			} else {
				want = append(want, string(e.Msg.Payload))
			}
		}
		if err := b.Ack(acked...); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		b2 := openT(t, Options{Path: path})
		got := readAll(t, b2)
		if !equal(payloads(got), want) {
			t.Fatalf("after reopen got %v, want %v", payloads(got), want)
		}
		st := b2.Stats()
		if st.Messages != int64(len(want)) {
			t.Errorf("Stats.Messages = %d, want %d", st.Messages, len(want))
		}
		var bytes int64
		for _, e := range got {
			bytes += entrySize(e.Msg)
		}
		if st.Bytes != bytes {
			t.Errorf("Stats.Bytes = %d, want %d", st.Bytes, bytes)
		}
		if st.Oldest.IsZero() || !st.Oldest.Equal(got[0].Enqueued) {
			t.Errorf("Stats.Oldest = %v, want %v", st.Oldest, got[0].Enqueued)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq <= got[i-1].Seq {
				t.Fatalf("seq not increasing: %d after %d", got[i].Seq, got[i-1].Seq)
			}
		}
	})

	t.Run("seqs are not reused after the queue was emptied and reopened", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "buffer.db")
		b := openT(t, Options{Path: path})
		appendN(t, b, "t", 0, 5)
		es := readAll(t, b)
		last := es[len(es)-1].Seq
		var all []int64
		for _, e := range es {
			all = append(all, e.Seq)
		}
		if err := b.Ack(all...); err != nil {
			t.Fatal(err)
		}
		b.Close()
		b2 := openT(t, Options{Path: path})
		appendN(t, b2, "t", 5, 6)
		es2, err := b2.Read(last, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es2) != 1 || es2[0].Seq <= last {
			t.Fatalf("after emptying, a bridge reading after %d got %+v; want the new entry with a higher seq", last, es2)
		}
	})

	t.Run("message fields round-trip", func(t *testing.T) {
		b := openT(t, Options{})
		in := []telemetry.Message{
			{Topic: "a/b", Payload: []byte(`{"value":1}`), QoS: 1, Retain: true},
			{Topic: "a/empty", Payload: nil, QoS: 0},
			{Topic: "a/binary", Payload: []byte{0, 1, 2, 0xff}, QoS: 1},
		}
		for _, m := range in {
			if err := b.Append(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
		got := readAll(t, b)
		if len(got) != len(in) {
			t.Fatalf("got %d entries, want %d", len(got), len(in))
		}
		for i := range in {
			g := got[i].Msg
			if g.Topic != in[i].Topic || string(g.Payload) != string(in[i].Payload) || g.QoS != in[i].QoS || g.Retain != in[i].Retain {
				t.Errorf("entry %d = %+v, want %+v", i, g, in[i])
			}
		}
	})
}

func TestAck(t *testing.T) {
	t.Run("acks of unknown or repeated seqs are harmless", func(t *testing.T) {
		b := openT(t, Options{})
		appendN(t, b, "t", 0, 3)
		es := readAll(t, b)
		if err := b.Ack(es[0].Seq, es[0].Seq, 999999, -1); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if err := b.Ack(es[0].Seq); err != nil {
			t.Fatalf("second Ack: %v", err)
		}
		if err := b.Ack(); err != nil {
			t.Fatalf("empty Ack: %v", err)
		}
		st := b.Stats()
		if st.Messages != 2 || st.Acked != 1 {
			t.Fatalf("Stats = %+v; want 2 messages, 1 acked", st)
		}
		if got := payloads(readAll(t, b)); !equal(got, []string{"1", "2"}) {
			t.Fatalf("remaining = %v", got)
		}
	})

	t.Run("acking everything empties the buffer and its stats", func(t *testing.T) {
		b := openT(t, Options{})
		appendN(t, b, "t", 0, 10)
		var seqs []int64
		for _, e := range readAll(t, b) {
			seqs = append(seqs, e.Seq)
		}
		if err := b.Ack(seqs...); err != nil {
			t.Fatal(err)
		}
		st := b.Stats()
		if st.Messages != 0 || st.Bytes != 0 || !st.Oldest.IsZero() || st.Acked != 10 || st.Appended != 10 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

func TestConcurrentAppenders(t *testing.T) {
	const goroutines, each = 100, 30
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openT(t, Options{Path: path})
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := b.Append(context.Background(), msg(fmt.Sprintf("g/%d", g), i)); err != nil {
					errs <- fmt.Errorf("goroutine %d message %d: %w", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := b.Stats()
	t.Logf("%d appends in %d commits", st.Appended, st.Commits)
	if st.Appended != goroutines*each {
		t.Fatalf("Appended = %d, want %d", st.Appended, goroutines*each)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Every acknowledged append is on disk, and each goroutine's messages
	// come back in the order it appended them.
	b2 := openT(t, Options{Path: path})
	next := map[string]int{}
	for _, e := range readAll(t, b2) {
		want := fmt.Sprint(next[e.Msg.Topic])
		if string(e.Msg.Payload) != want {
			t.Fatalf("topic %s: got %s, want %s (order lost)", e.Msg.Topic, e.Msg.Payload, want)
		}
		next[e.Msg.Topic]++
	}
	for g := range goroutines {
		if n := next[fmt.Sprintf("g/%d", g)]; n != each {
			t.Errorf("goroutine %d: %d of %d messages stored", g, n, each)
		}
	}
}

func TestMaxBytes(t *testing.T) {
	// Each message "t" + "NN" is 1+2+32 = 35 bytes; ten fit in 350.
	const limit = 10 * (1 + 2 + entryOverhead)

	t.Run("drop-oldest deletes the oldest entries, counts and logs them once", func(t *testing.T) {
		rec := &logRecorder{}
		b := openT(t, Options{MaxBytes: limit, WhenFull: DropOldest, Log: slog.New(rec)})
		appendN(t, b, "t", 10, 35)
		got := payloads(readAll(t, b))
		if want := seqRange(25, 35); !equal(got, want) {
			t.Fatalf("stored %v, want the newest %v", got, want)
		}
		st := b.Stats()
		if st.DroppedFull != 15 || st.Messages != 10 || st.Bytes != limit || st.Rejected != 0 {
			t.Fatalf("Stats = %+v; want 15 dropped, 10 stored, %d bytes", st, limit)
		}
		if n := rec.count(slog.LevelWarn, "dropping the oldest"); n != 1 {
			t.Errorf("logged the drop %d times, want once per episode", n)
		}
	})

	t.Run("reject refuses with ErrFull and loses nothing it accepted", func(t *testing.T) {
		b := openT(t, Options{MaxBytes: limit, WhenFull: Reject})
		appendN(t, b, "t", 10, 20)
		for i := 20; i < 25; i++ {
			err := b.Append(context.Background(), msg("t", i))
			if !errors.Is(err, ErrFull) {
				t.Fatalf("Append %d over the limit: err = %v, want ErrFull", i, err)
			}
		}
		es := readAll(t, b)
		if got, want := payloads(es), seqRange(10, 20); !equal(got, want) {
			t.Fatalf("stored %v, want %v", got, want)
		}
		st := b.Stats()
		if st.Rejected != 5 || st.DroppedFull != 0 || st.Messages != 10 {
			t.Fatalf("Stats = %+v; want 5 rejected, 10 stored", st)
		}
		// An ack makes room again.
		if err := b.Ack(es[0].Seq); err != nil {
			t.Fatal(err)
		}
		if err := b.Append(context.Background(), msg("t", 99)); err != nil {
			t.Fatalf("Append after an ack freed room: %v", err)
		}
	})

	for _, p := range []Policy{DropOldest, Reject} {
		t.Run("a message larger than max_bytes is refused under "+p.String(), func(t *testing.T) {
			b := openT(t, Options{MaxBytes: limit, WhenFull: p})
			appendN(t, b, "t", 10, 13)
			big := telemetry.Message{Topic: "t", Payload: make([]byte, limit)}
			if err := b.Append(context.Background(), big); !errors.Is(err, ErrFull) {
				t.Fatalf("err = %v, want ErrFull", err)
			}
			if got := payloads(readAll(t, b)); !equal(got, seqRange(10, 13)) {
				t.Fatalf("stored %v, want the three earlier messages untouched", got)
			}
		})
	}
}

func TestMaxAge(t *testing.T) {
	t.Run("Read skips and deletes entries older than max_age, counting them", func(t *testing.T) {
		clock := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
		b := openT(t, Options{MaxAge: time.Hour, Now: clock.Now})
		appendN(t, b, "t", 0, 5)
		clock.Advance(30 * time.Minute)
		appendN(t, b, "t", 5, 8)
		clock.Advance(45 * time.Minute) // the first five are 75 minutes old now

		// A Read that starts in the middle of the expired ones still skips them.
		es := readAll(t, b)
		if got := payloads(es); !equal(got, seqRange(5, 8)) {
			t.Fatalf("read %v, want %v", got, seqRange(5, 8))
		}
		st := b.Stats()
		if st.Expired != 5 || st.Messages != 3 {
			t.Fatalf("Stats = %+v; want 5 expired, 3 left", st)
		}
		if want := clock.Now().Add(-45 * time.Minute); !st.Oldest.Equal(want) {
			t.Errorf("Oldest = %v, want %v", st.Oldest, want)
		}
	})

	t.Run("expired entries at the head are deleted on the next commit even without a Read", func(t *testing.T) {
		clock := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
		b := openT(t, Options{MaxAge: time.Hour, Now: clock.Now})
		appendN(t, b, "t", 0, 4)
		clock.Advance(2 * time.Hour)
		appendN(t, b, "t", 4, 5)
		st := b.Stats()
		if st.Expired != 4 || st.Messages != 1 {
			t.Fatalf("Stats = %+v; want 4 expired, 1 left", st)
		}
	})

	t.Run("Read with a limit returns that many live entries past expired ones", func(t *testing.T) {
		clock := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
		b := openT(t, Options{MaxAge: time.Hour, Now: clock.Now})
		appendN(t, b, "t", 0, 20)
		clock.Advance(61 * time.Minute)
		appendN(t, b, "t", 20, 23) // this commit also trims the head
		es, err := b.Read(0, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := payloads(es); !equal(got, []string{"20", "21"}) {
			t.Fatalf("Read(0, 2) = %v", got)
		}
	})
}

func TestLifecycle(t *testing.T) {
	t.Run("Close is idempotent and later calls fail with ErrClosed", func(t *testing.T) {
		b := openT(t, Options{})
		appendN(t, b, "t", 0, 1)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := b.Append(context.Background(), msg("t", 1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close: %v, want ErrClosed", err)
		}
		if _, err := b.Read(0, 1); !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close: %v, want ErrClosed", err)
		}
		if err := b.Ack(1); !errors.Is(err, ErrClosed) {
			t.Fatalf("Ack after Close: %v, want ErrClosed", err)
		}
	})

	t.Run("Close commits appends already queued", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "buffer.db")
		b := openT(t, Options{Path: path})
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted := 0
		for g := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					if err := b.Append(context.Background(), msg(fmt.Sprint(g), i)); err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("Append: %v", err)
						}
						return
					}
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}()
		}
		// Let some appends through, then close under the appenders' feet.
		ch := b.Notify()
		for range 3 {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Fatal("no commit within 10s")
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		b2 := openT(t, Options{Path: path})
		if n := len(readAll(t, b2)); n != accepted {
			t.Fatalf("%d accepted appends, %d stored", accepted, n)
		}
	})

	t.Run("Notify signals after a commit that added entries", func(t *testing.T) {
		b := openT(t, Options{})
		select {
		case <-b.Notify():
			t.Fatal("signal before any append")
		default:
		}
		appendN(t, b, "t", 0, 1)
		select {
		case <-b.Notify():
		case <-time.After(10 * time.Second):
			t.Fatal("no signal after Append returned")
		}
	})

	t.Run("a cancelled context stops Append from waiting", func(t *testing.T) {
		b := openT(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.Append(ctx, msg("t", 0)); !errors.Is(err, context.Canceled) {
			// The request may have been queued before the cancel was
			// seen; then it was committed and nil is right too.
			if err != nil {
				t.Fatalf("Append with a cancelled context: %v", err)
			}
		}
	})

	t.Run("a second Open of the same file fails while the first holds it", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "buffer.db")
		openT(t, Options{Path: path})
		b2, err := Open(Options{Path: path})
		if err == nil {
			b2.Close()
			t.Fatal("second Open succeeded")
		}
		if !strings.Contains(err.Error(), "in use") {
			t.Fatalf("err = %v, want it to say the file is in use", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	t.Run("a permission problem reads as itself", func(t *testing.T) {
		dir := t.TempDir()
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// A directory the opener may not write, and a database file it may
		// not read: both must say "permission denied", not SQLite's
		// "unable to open database file".
		roDir := filepath.Join(dir, "ro")
		if err := os.Mkdir(roDir, 0o555); err != nil {
			t.Fatal(err)
		}
		lockedFile := filepath.Join(dir, "locked", "buffer.db")
		if err := os.MkdirAll(filepath.Dir(lockedFile), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Dir(lockedFile), 0o777)
		writeFile(t, lockedFile, nil)
		if err := os.Chmod(lockedFile, 0o000); err != nil {
			t.Fatal(err)
		}

		if os.Geteuid() != 0 {
			for _, p := range []string{filepath.Join(roDir, "buffer.db"), lockedFile} {
				if _, err := Open(Options{Path: p}); !errors.Is(err, os.ErrPermission) {
					t.Errorf("Open(%s): %v, want a permission error", p, err)
				}
			}
			return
		}
		// As root permissions do not apply, so run the opener as nobody:
		// a copy of this test binary where nobody can execute it.
		bin := filepath.Join(dir, "buffer.test")
		data, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{filepath.Join(roDir, "buffer.db"), lockedFile} {
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(), helperEnv+"=open", helperPathEnv+"="+p)
			cmd.Dir = dir
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Skipf("cannot run the opener as nobody: %v: %s", err, out)
			}
			got := string(out)
			t.Logf("Open(%s) as nobody: %s", filepath.Base(filepath.Dir(p)), strings.TrimSpace(got))
			if !strings.HasPrefix(got, "permission=true") || !strings.Contains(got, "permission denied") {
				t.Errorf("Open(%s) as nobody: %q, want a permission error that says so", p, got)
			}
		}
	})

	t.Run("a path below a regular file names the problem", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(Options{Path: filepath.Join(file, "buffer.db")})
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("err = %v, want 'not a directory'", err)
		}
	})

	t.Run("an empty path is refused", func(t *testing.T) {
		if _, err := Open(Options{}); err == nil {
			t.Fatal("Open with no path succeeded")
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("gw/dev/p", []byte(`{"value":1}`), byte(1), true)
	f.Add("", []byte{}, byte(0), false)
	f.Add("\xff\x00/x", []byte{0, 0xff}, byte(2), false)
	b := openT(f, Options{})
	f.Fuzz(func(t *testing.T, topic string, payload []byte, qos byte, retain bool) {
		m := telemetry.Message{Topic: topic, Payload: payload, QoS: qos, Retain: retain}
		st := b.Stats()
		if err := b.Append(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		es, err := b.Read(0, 1)
		if err != nil || len(es) != 1 {
			t.Fatalf("Read = %v, %v", es, err)
		}
		g := es[0].Msg
		if g.Topic != m.Topic || string(g.Payload) != string(m.Payload) || g.QoS != m.QoS || g.Retain != m.Retain {
			t.Fatalf("round trip: got %+v, want %+v", g, m)
		}
		if err := b.Ack(es[0].Seq); err != nil {
			t.Fatal(err)
		}
		if b.Stats().Bytes != st.Bytes {
			t.Fatalf("bytes not back to %d after ack: %+v", st.Bytes, b.Stats())
		}
	})
}

// The zero Options must give the mode that survives a power cut: the WAL is
// fsynced on every commit (synchronous=FULL), not only at checkpoints.
func TestDurabilityModesSetWhatSQLiteSyncs(t *testing.T) {
	for _, c := range []struct {
		name string
		dur  Durability
		want int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{"the default fsyncs every commit", Options{}.Durability, 2},
		{"power-loss-unsafe fsyncs only at checkpoints", PowerLossUnsafe, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := openT(t, Options{Durability: c.dur})
			var got int
			if err := b.wdb.QueryRow("PRAGMA synchronous").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("synchronous = %d, want %d", got, c.want)
			}
		})
	}
}

package buffer

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storedT fills a buffer at path with n messages on topic "t" (payloads
// "0".."n-1", padded so the table spans many pages) and closes it, which
// checkpoints everything into the database file.
func storedT(t *testing.T, path string, n int) {
	t.Helper()
	b := openT(t, Options{Path: path, Durability: PowerLossUnsafe})
	for i := range n {
		m := msg("t", i)
		m.Payload = fmt.Appendf(m.Payload, " %s", strings.Repeat("p", 80))
		if err := b.Append(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkDrain reads the whole buffer and checks that what comes out is a
// subsequence, in order, of what storedT wrote; it returns how many came out.
func checkDrain(t *testing.T, b *Buffer, n int) int {
	t.Helper()
	last := -1
	es := readAll(t, b)
	for _, e := range es {
		var i int
		if _, err := fmt.Sscanf(string(e.Msg.Payload), "%d ", &i); err != nil || e.Msg.Topic != "t" || e.Msg.QoS != 1 {
			t.Fatalf("entry %d is not one that was stored: %q %q qos %d", e.Seq, e.Msg.Topic, e.Msg.Payload, e.Msg.QoS)
		}
		if i <= last || i >= n {
			t.Fatalf("message %d after %d (of %d stored)", i, last, n)
		}
		last = i
	}
	return len(es)
}

func TestDamagedFile(t *testing.T) {
	const stored = 5000
	garbage := randomBytes(4096, 3)
	cases := []struct {
		name    string
		damage  func(t *testing.T, path string)
		atLeast int // messages that must come back through salvage
	}{
		{"a file cut short in its last page is quarantined and what can be read is kept", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()-1234); err != nil {
				t.Fatal(err)
			}
		}, stored - 200},
		{"a page in the middle overwritten with garbage is quarantined and the rows around it are kept", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			page := len(data) / 4096 / 2
			copy(data[page*4096:], garbage)
			writeFile(t, path, data)
		}, stored - 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			storedT(t, path, stored)
			c.damage(t, path)

			rec := &logRecorder{}
			b := openT(t, Options{Path: path, Log: slog.New(rec)})
			if n := rec.count(slog.LevelError, "damaged"); n != 1 {
				t.Errorf("%d Error-level log lines about the damaged file, want 1", n)
			}
			if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) == 0 {
				t.Error("the damaged file was not kept aside")
			}
			st := b.Stats()
			got := checkDrain(t, b, stored)
			if got < c.atLeast || int64(got) != st.Messages {
				t.Errorf("salvaged %d of %d (Stats.Messages %d), want at least %d", got, stored, st.Messages, c.atLeast)
			}
			if st.Damaged != uint64(stored-got) || st.LostOnOpen != uint64(stored-got) {
				t.Errorf("Stats.Damaged = %d, LostOnOpen = %d, want the %d that could not be salvaged", st.Damaged, st.LostOnOpen, stored-got)
			}
			t.Logf("salvaged %d of %d; Stats %+v", got, stored, st)
			// The new buffer works: more appends come out after the salvaged ones.
			appendN(t, b, "t", stored, stored+3)
			if n := checkDrain(t, b, stored+3); n != got+3 {
				t.Errorf("after 3 more appends %d entries, want %d", n, got+3)
			}
		})
	}

	t.Run("a WAL torn in its last frame opens without quarantine and keeps every whole commit", func(t *testing.T) {
		dir := t.TempDir()
		live := filepath.Join(dir, "live.db")
		b := openT(t, Options{Path: live})
		appendN(t, b, "t", 0, 300) // one commit each: 300 WAL commits
		// Copy the files as a power cut would find them: buffer open, WAL
		// not checkpointed; then tear the WAL's last frame.
		path := filepath.Join(dir, "buffer.db")
		copyFile(t, live, path)
		copyFile(t, live+"-wal", path+"-wal")
		fi, err := os.Stat(path + "-wal")
		if err != nil || fi.Size() < 8192 {
			t.Fatalf("WAL of %v bytes (%v)", fi.Size(), err)
		}
		if err := os.Truncate(path+"-wal", fi.Size()-1234); err != nil {
			t.Fatal(err)
		}

		rec := &logRecorder{}
		torn := openT(t, Options{Path: path, Log: slog.New(rec)})
		if n := rec.count(slog.LevelError, ""); n != 0 {
			t.Errorf("%d Error-level log lines for a torn WAL, which SQLite recovers from", n)
		}
		es := readAll(t, torn)
		if len(es) < 299 || !equal(payloads(es), seqRange(0, len(es))) {
			t.Fatalf("after the torn WAL: %d entries %v..., want the first 299 or 300 in order", len(es), payloads(es)[:min(len(es), 5)])
		}
	})
}

// A row that cannot be decoded (here a qos that is not a number) is skipped,
// counted and removed; the rows behind it are still delivered.
func TestUnreadableRowDoesNotStopTheDrain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	rec := &logRecorder{}
	b := openT(t, Options{Path: path, Log: slog.New(rec)})
	appendN(t, b, "t", 0, 5)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE queue SET qos = 'x', enqueued = NULL WHERE seq = 3`); err == nil {
		t.Fatal("the schema let enqueued be NULL")
	}
	if _, err := db.Exec(`UPDATE queue SET qos = 'x' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	es := readAll(t, b)
	if got := payloads(es); !equal(got, []string{"0", "1", "3", "4"}) {
		t.Fatalf("drained %v, want every readable row", got)
	}
	if st := b.Stats(); st.Damaged != 1 || st.Messages != 4 {
		t.Errorf("Stats = %+v, want 1 damaged and 4 stored", st)
	}
	if n := rec.count(slog.LevelError, "unreadable"); n != 1 {
		t.Errorf("%d Error-level log lines about the unreadable row, want 1", n)
	}
	if got := payloads(readAll(t, b)); !equal(got, []string{"0", "1", "3", "4"}) {
		t.Fatalf("second drain %v", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

package buffer

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// The buffer keeps the number of stored messages beside the database file,
// so that a file that lost them (deleted, cut to nothing, or rolled back by a
// power cut under power-loss-unsafe) is reported instead of starting empty
// without a word.
func TestLostOnOpen(t *testing.T) {
	const stored = 2000
	cases := []struct {
		name string
		lose func(t *testing.T, path string)
	}{
		{"a buffer.db truncated to 0 bytes is reported with the number of messages lost", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"a deleted buffer.db is reported with the number of messages lost", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			b := openT(t, Options{Path: path})
			appendN(t, b, "t", 0, stored)
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			c.lose(t, path)

			rec := &logRecorder{}
			b = openT(t, Options{Path: path, Log: slog.New(rec)})
			if st := b.Stats(); st.LostOnOpen != stored {
				t.Errorf("Stats.LostOnOpen = %d, want %d", st.LostOnOpen, stored)
			}
			if n := rec.count(slog.LevelError, "lost"); n != 1 {
				t.Errorf("%d Error-level log lines about lost messages, want 1", n)
			}
			// Reported once: the next start finds what it recorded.
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			rec = &logRecorder{}
			b = openT(t, Options{Path: path, Log: slog.New(rec)})
			if st := b.Stats(); st.LostOnOpen != 0 || rec.count(slog.LevelError, "") != 0 {
				t.Errorf("second start: LostOnOpen %d and %d error lines, want none", st.LostOnOpen, rec.count(slog.LevelError, ""))
			}
		})
	}

	t.Run("messages acknowledged after the count was last recorded are not reported lost", func(t *testing.T) {
		dir := t.TempDir()
		live := filepath.Join(dir, "live.db")
		b := openT(t, Options{Path: live})
		appendN(t, b, "t", 0, 100)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		b = openT(t, Options{Path: live})
		es, err := b.Read(0, 50)
		if err != nil || len(es) != 50 {
			t.Fatalf("Read: %d entries, %v", len(es), err)
		}
		var seqs []int64
		for _, e := range es {
			seqs = append(seqs, e.Seq)
		}
		if err := b.Ack(seqs...); err != nil {
			t.Fatal(err)
		}
		// A crash now: the database holds the acks, the record of the
		// count (taken at the last Close) still says 100.
		path := filepath.Join(dir, "buffer.db")
		copyFile(t, live, path)
		copyFile(t, live+"-wal", path+"-wal")
		copyFile(t, live+sidecarSuffix, path+sidecarSuffix)

		rec := &logRecorder{}
		b = openT(t, Options{Path: path, Log: slog.New(rec)})
		if st := b.Stats(); st.LostOnOpen != 0 || st.Messages != 50 || rec.count(slog.LevelError, "") != 0 {
			t.Errorf("Stats %+v and %d error lines; want 50 stored, none lost", st, rec.count(slog.LevelError, ""))
		}
	})
}

package buffer

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCorruptFile(t *testing.T) {
	garbage := randomBytes(8192, 1)

	cases := []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"random bytes instead of a database are moved aside", func(t *testing.T, path string) {
			writeFile(t, path, garbage)
		}},
		{"a text file instead of a database is moved aside", func(t *testing.T, path string) {
			writeFile(t, path, []byte("this is not a database\n"))
		}},
		{"a database whose table pages were overwritten is moved aside", func(t *testing.T, path string) {
			b := openT(t, Options{Path: path})
			appendN(t, b, "t", 0, 2000)
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) < 8*4096 {
				t.Fatalf("database only %d bytes", len(data))
			}
			// Keep the header page, trash everything after it.
			for i := 4096; i < len(data); i++ {
				data[i] = garbage[i%len(garbage)]
			}
			writeFile(t, path, data)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "buffer.db")
			c.corrupt(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			rec := &logRecorder{}
			b := openT(t, Options{Path: path, Log: slog.New(rec)})
			if n := rec.count(slog.LevelError, "corrupt"); n != 1 {
				t.Errorf("%d Error-level log lines about the corrupt file, want 1", n)
			}
			if st := b.Stats(); st.Messages != 0 {
				t.Errorf("new buffer holds %d messages, want an empty one", st.Messages)
			}
			appendN(t, b, "t", 0, 3)
			if got := payloads(readAll(t, b)); !equal(got, seqRange(0, 3)) {
				t.Fatalf("new buffer stored %v", got)
			}

			aside, err := filepath.Glob(path + ".corrupt-*")
			if err != nil {
				t.Fatal(err)
			}
			var main []string
			for _, a := range aside {
				if !strings.HasSuffix(a, "-wal") {
					main = append(main, a)
				}
			}
			if len(main) != 1 {
				t.Fatalf("files moved aside: %v, want one", aside)
			}
			kept, err := os.ReadFile(main[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kept, before) {
				t.Errorf("%s does not hold the corrupt file's bytes", main[0])
			}
		})
	}
}

// randomBytes returns n reproducible random bytes.
func randomBytes(n int, seed uint64) []byte {
	out := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for i := range out {
		out[i] = byte(rng.Uint32())
	}
	return out
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A healthy database must never be mistaken for a corrupt one.
func TestHealthyFileIsNotMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	for range 3 {
		b := openT(t, Options{Path: path})
		if err := b.Append(context.Background(), msg("t", 1)); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Fatalf("healthy file moved aside: %v", aside)
	}
}

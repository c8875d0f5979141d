package buffer

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeadLetter(t *testing.T) {
	t.Run("an entry set aside leaves the queue, keeps its message and reason, and survives a reopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "buffer.db")
		b := openT(t, Options{Path: path})
		if n, err := b.DeadLetters(); err != nil || n != 0 {
			t.Fatalf("a new buffer has %d dead letters, %v", n, err)
		}
		appendN(t, b, "a/b", 0, 3)
		es, err := b.Read(0, 3)
		if err != nil || len(es) != 3 {
			t.Fatalf("Read: %d entries, %v", len(es), err)
		}
		if err := b.DeadLetter(es[1].Seq, "refused upstream"); err != nil {
			t.Fatal(err)
		}
		left, err := b.Read(0, 10)
		if err != nil || len(left) != 2 || left[0].Seq != es[0].Seq || left[1].Seq != es[2].Seq {
			t.Fatalf("queue after setting the second aside: %+v, %v", left, err)
		}
		if s := b.Stats(); s.Messages != 2 || s.Bytes != 2*entrySize(msg("a/b", 0)) {
			t.Errorf("stats %+v, want 2 messages", s)
		}
		if err := b.DeadLetter(es[1].Seq, "again"); err != nil {
			t.Errorf("setting aside an entry no longer queued: %v", err)
		}
		if n, err := b.DeadLetters(); err != nil || n != 1 {
			t.Errorf("%d dead letters, %v; want 1", n, err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.DeadLetters(); err == nil {
			t.Error("DeadLetters after Close succeeded")
		}
		b = openT(t, Options{Path: path})
		if n, err := b.DeadLetters(); err != nil || n != 1 {
			t.Errorf("after a reopen %d dead letters, %v; want 1", n, err)
		}
		if s := b.Stats(); s.Messages != 2 {
			t.Errorf("after a reopen %d queued, want 2", s.Messages)
		}
		b.Close()

		// What the README tells users to run.
		sqlite3, err := exec.LookPath("sqlite3")
		if err != nil {
			t.Skip("sqlite3 not installed: the command-line check is skipped")
		}
		out, err := exec.Command(sqlite3, path, "SELECT seq, topic, CAST(payload AS TEXT), reason FROM dead_letter").CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3: %v: %s", err, out)
		}
		if want := "2|a/b|1|refused upstream"; strings.TrimSpace(string(out)) != want {
			t.Errorf("sqlite3 reads %q, want %q", out, want)
		}
	})
}

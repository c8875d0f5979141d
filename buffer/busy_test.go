package buffer

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

func TestBusyDatabase(t *testing.T) {
	t.Run("an append that meets another process's write lock is retried and succeeds once the lock is gone", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "buffer.db")
		rec := &logRecorder{}
		b := openT(t, Options{Path: path, Log: slog.New(rec)})
		appendN(t, b, "t", 0, 1)

		// Someone else (a sqlite3 shell, say) takes the write lock.
		release := testpeer.HoldWriteLock(t, path)

		done := make(chan error, 1)
		go func() { done <- b.Append(context.Background(), msg("t", 1)) }()
		testpeer.Eventually(t, 20*time.Second, "the committer to retry a busy commit", func() bool {
			return rec.count(slog.LevelDebug, "database busy") > 0
		})
		release()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Append after the lock was released: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Append did not return after the lock was released")
		}
		if got := payloads(readAll(t, b)); !equal(got, []string{"0", "1"}) {
			t.Fatalf("stored %v", got)
		}
	})
}

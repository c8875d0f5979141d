package sqlitefile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

func TestAFileThatIsNotADatabaseIsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, []byte("this is not an SQLite file, it is a note left by someone"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, []string{"busy_timeout(1000)"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := Check(db); !IsCorrupt(err) {
		t.Fatalf("Check = %v, want an error IsCorrupt reports", err)
	}
}

func TestAMissingDirectoryReadsAsItself(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "no", "such", "state.db"), nil, nil)
	if !errors.Is(err, os.ErrNotExist) || IsCorrupt(err) {
		t.Fatalf("Open = %v, want the operating system's not-exist error", err)
	}
}

func TestMoveAsideTakesTheWALAlongAndDropsTheIndex(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.WriteFile(path+suffix, []byte(suffix), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	aside, err := MoveAside(path, time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := path + ".corrupt-20261122T100000.000000000Z"; aside != want {
		t.Errorf("moved to %s, want %s", aside, want)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there", p)
		}
	}
	if b, err := os.ReadFile(aside + "-wal"); err != nil || string(b) != "-wal" {
		t.Errorf("the WAL did not move with the file: %q, %v", b, err)
	}
}

func TestRetryBusyGivesUpAfterItsRetries(t *testing.T) {
	t.Run("an error that is not busy is returned at once", func(t *testing.T) {
		calls := 0
		want := errors.New("disk I/O error")
		if err := RetryBusy(context.Background(), func() error { calls++; return want }, nil); err != want || calls != 1 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})
	t.Run("a busy lock is tried BusyRetries more times", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		testpeer.HoldWriteLock(t, path)
		other, err := Open(path, []string{"busy_timeout(0)"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		calls, told := 0, 0
		err = RetryBusy(context.Background(), func() error {
			calls++
			_, err := other.Exec("CREATE TABLE t (x)")
			return err
		}, func(int, error) { told++ })
		if !IsBusy(err) || calls != BusyRetries+1 || told != BusyRetries {
			t.Fatalf("err %v after %d calls, %d retries told", err, calls, told)
		}
	})
}

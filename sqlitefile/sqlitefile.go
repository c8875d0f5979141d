package sqlitefile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Open returns a handle on the database at path (created when missing)
// through the modernc driver, with pragmas applied to every connection
// ("busy_timeout(1000)", "journal_mode(WAL)", ...) and the driver's other
// query parameters (such as _txlock). The file is opened by Open itself
// first: a permission problem or a missing directory is returned as the
// operating system names it. Like sql.Open it does not yet read the file;
// Check does.
func Open(path string, pragmas []string, params url.Values) (*sql.DB, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	return sql.Open("sqlite", DSN(path, pragmas, params))
}

// DSN is the modernc data source name for path with pragmas and params.
func DSN(path string, pragmas []string, params url.Values) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	for k, v := range params {
		q[k] = v
	}
	return path + "?" + q.Encode()
}

// ErrDamaged is wrapped by Check's error when the file opened but its pages
// or records are not well formed.
var ErrDamaged = errors.New("integrity check failed")

// Check runs PRAGMA quick_check (every page and record well formed; it does
// not compare indexes with their tables). A file that is not a database at
// all fails with SQLite's own error; both are what IsCorrupt reports.
func Check(db *sql.DB) error {
	rows, err := db.Query("PRAGMA quick_check(5)")
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %q", ErrDamaged, problems)
	}
	return nil
}

// code returns the primary SQLite result code in err, or 0.
func code(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// IsCorrupt reports whether err says the file is not a usable database:
// SQLITE_CORRUPT, SQLITE_NOTADB, or a failed Check.
func IsCorrupt(err error) bool {
	c := code(err)
	return c == sqlite3.SQLITE_CORRUPT || c == sqlite3.SQLITE_NOTADB || errors.Is(err, ErrDamaged)
}

// IsBusy reports whether err is another connection's lock (SQLITE_BUSY,
// SQLITE_LOCKED) that outlasted busy_timeout.
func IsBusy(err error) bool {
	c := code(err)
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// IsFull reports whether err is SQLITE_FULL: the disk (or quota) is full.
func IsFull(err error) bool { return code(err) == sqlite3.SQLITE_FULL }

// MoveAside renames a corrupt database, and its WAL (which belongs to it
// and must not be replayed into a fresh file), to <path>.corrupt-<now>,
// and removes the shared-memory index, which SQLite rebuilds. It returns
// the new name.
func MoveAside(path string, now time.Time) (string, error) {
	aside := path + ".corrupt-" + now.UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	if err := os.Rename(path+"-wal", aside+"-wal"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return aside, err
	}
	if err := os.Remove(path + "-shm"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return aside, err
	}
	return aside, nil
}

// BusyRetries bounds RetryBusy's retries after the first attempt: with a
// busy_timeout of a second, a transaction waits about four seconds for
// another process's lock before it fails.
const BusyRetries = 3

// RetryBusy runs tx, and runs it again, up to BusyRetries times with a
// short growing pause, while it fails with IsBusy (another process, such as
// a sqlite3 shell, holds the write lock beyond busy_timeout). retrying,
// when not nil, is told before each retry. It returns tx's last error.
func RetryBusy(ctx context.Context, tx func() error, retrying func(attempt int, err error)) error {
	for attempt := 0; ; attempt++ {
		err := tx()
		if err == nil || !IsBusy(err) || attempt == BusyRetries {
			return err
		}
		if retrying != nil {
			retrying(attempt+1, err)
		}
		t := time.NewTimer(min(10*time.Millisecond<<attempt, 500*time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

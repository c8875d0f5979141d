package buffer

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"

	"github.com/edged/edged/sqlitefile"
)

// The dead-letter table holds messages the bridge gave up sending: ones the
// upstream broker kept refusing. They are kept, in the same database file,
// for a person to read and, if they wish, to send again by hand:
//
//	sqlite3 /var/lib/edged/buffer.db 'SELECT seq, topic, payload, reason FROM dead_letter'
//
// Nothing in edged reads them back into the queue.
const deadLetterSchema = `
CREATE TABLE IF NOT EXISTS dead_letter (
	seq      INTEGER PRIMARY KEY, -- its place in the queue it left
	enqueued INTEGER NOT NULL,    -- unix nanoseconds, when it was buffered
	topic    TEXT    NOT NULL,    -- the upstream topic
	payload  BLOB    NOT NULL,
	qos      INTEGER NOT NULL,
	retain   INTEGER NOT NULL,
	moved    INTEGER NOT NULL,    -- unix nanoseconds, when it was set aside
	reason   TEXT    NOT NULL
);`

const (
	sqlDeadLetter = `INSERT OR IGNORE INTO dead_letter(seq, enqueued, topic, payload, qos, retain, moved, reason)
		SELECT seq, enqueued, topic, payload, qos, retain, ?, ? FROM queue WHERE seq = ?`
	sqlHasDeadLetters = `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'dead_letter'`
	sqlCountDead      = `SELECT count(*) FROM dead_letter`
)

// DeadLetter moves the entry seq from the queue into the dead-letter table,
// with the reason, and then removes it from the queue like Ack. It is rare
// and off the hot path, so it uses a connection of its own rather than the
// committer's; a crash between the two steps leaves the entry in both, and
// setting it aside again later is harmless. An entry no longer in the queue
// is not an error.
func (b *Buffer) DeadLetter(seq int64, reason string) error {
	err := b.withConn(false, func(ctx context.Context, db *sql.DB) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
		if _, err := tx.ExecContext(ctx, deadLetterSchema); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqlDeadLetter, b.now().UnixNano(), reason, seq); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return fmt.Errorf("buffer %s: moving entry %d to dead_letter: %w", b.opts.Path, seq, err)
	}
	return b.Ack(seq)
}

// DeadLetters counts the entries in the dead-letter table.
func (b *Buffer) DeadLetters() (int64, error) {
	var n int64
	err := b.withConn(true, func(ctx context.Context, db *sql.DB) error {
		var tables int
		if err := db.QueryRowContext(ctx, sqlHasDeadLetters).Scan(&tables); err != nil || tables == 0 {
			return err
		}
		return db.QueryRowContext(ctx, sqlCountDead).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("buffer %s: counting dead_letter: %w", b.opts.Path, err)
	}
	return n, nil
}

// deadLetterWait bounds one dead-letter operation, including the wait for
// the committer's write lock.
const deadLetterWait = 10 * time.Second

// withConn runs fn on a short-lived connection to the database file (read
// only when readOnly), unless the buffer is closed.
func (b *Buffer) withConn(readOnly bool, fn func(context.Context, *sql.DB) error) error {
	b.sendMu.RLock()
	defer b.sendMu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	sync := "NORMAL"
	if b.opts.Durability == Full {
		sync = "FULL"
	}
	pragmas := []string{fmt.Sprintf("busy_timeout(%d)", deadLetterWait.Milliseconds()), "synchronous(" + sync + ")"}
	if readOnly {
		pragmas = append(pragmas, "query_only(1)")
	}
	db, err := sql.Open("sqlite", sqlitefile.DSN(b.opts.Path, pragmas, url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), deadLetterWait)
	defer cancel()
	return fn(ctx, db)
}

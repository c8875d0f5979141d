package buffer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/edged/edged/liveness"
	"github.com/edged/edged/sqlitefile"
)

const schema = `
CREATE TABLE IF NOT EXISTS queue (
	seq      INTEGER PRIMARY KEY,
	enqueued INTEGER NOT NULL, -- unix nanoseconds
	topic    TEXT    NOT NULL,
	payload  BLOB    NOT NULL,
	qos      INTEGER NOT NULL,
	retain   INTEGER NOT NULL,
	size     INTEGER NOT NULL  -- what the entry counts towards max_bytes
);
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
`

// The statements the committer runs; prepared once on the writer.
const (
	sqlInsert     = `INSERT INTO queue(seq, enqueued, topic, payload, qos, retain, size) VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlDeleteSeq  = `DELETE FROM queue WHERE seq = ? RETURNING coalesce(CAST(size AS INTEGER), 0)` // a damaged row may hold anything
	sqlHead       = `SELECT seq, enqueued, size FROM queue WHERE seq > ? ORDER BY seq LIMIT ?`
	sqlDeleteTo   = `DELETE FROM queue WHERE seq <= ?`
	sqlOldest     = `SELECT seq, enqueued FROM queue ORDER BY seq LIMIT 1`
	sqlSetLast    = `INSERT INTO meta(key, value) VALUES ('last_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`
	sqlSetRemoved = `INSERT INTO meta(key, value) VALUES ('removed', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`
	sqlPresent    = `SELECT count(*) FROM queue WHERE seq <= ?`
	sqlRead       = `SELECT seq, enqueued, topic, payload, qos, retain FROM queue WHERE seq > ? ORDER BY seq LIMIT ?`
	sqlReadOne    = `SELECT seq, enqueued, topic, payload, qos, retain FROM queue WHERE seq = ?`

	// sqlLoad recomputes the running totals at Open in one pass.
	sqlLoad = `SELECT count(*), coalesce(sum(size), 0), coalesce(max(seq), 0),
		(SELECT seq FROM queue ORDER BY seq LIMIT 1),
		(SELECT enqueued FROM queue ORDER BY seq LIMIT 1),
		coalesce((SELECT value FROM meta WHERE key = 'last_seq'), 0),
		coalesce((SELECT value FROM meta WHERE key = 'removed'), 0)
		FROM queue`
)

// Tuning. The page cache is per connection; 2 MB each keeps a gateway with
// 100 000 buffered messages well under its memory budget while still holding
// the hot end of the queue. The WAL is checkpointed when it reaches the
// plan's limit (diskPlan: up to 16 MiB, raised from SQLite's 1000 pages so
// checkpoints, and with them the database fsync, happen a few times less
// often under a sustained burst; a sixty-fourth of a small partition) and
// truncated back to that size after each one.
const (
	cacheSizeKiB  = 2000
	pageSize      = 4096 // SQLite's default
	busyTimeoutMS = 1000
)

// Open opens (or creates) the buffer at opts.Path and starts its committer.
// A file that is not a readable SQLite database is moved aside as
// <path>.corrupt-<UTC time>, logged at Error level, and an empty buffer is
// started in its place. Any other problem (permissions, a missing disk) is
// returned as it is.
func Open(opts Options) (*Buffer, error) {
	if opts.Path == "" {
		return nil, errors.New("buffer: no path")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("path", opts.Path)

	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o750); err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	unlock, err := lockFile(opts.Path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("buffer %s: %w", opts.Path, err)
	}

	total, _ := fsSize(filepath.Dir(opts.Path))
	b := &Buffer{
		plan:   planFor(total),
		opts:   opts,
		log:    log,
		now:    opts.Now,
		unlock: unlock,
		reqs:   make(chan *request, 4096),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		live:   liveness.NewSet(opts.Now),
	}
	rec, haveRec, err := readCount(opts.Path)
	if err != nil {
		log.Warn("cannot read the message count recorded beside the buffer; not checking for lost messages", "err", err)
	}
	st, err := b.openWriter()
	if err == nil {
		if err = sqlitefile.Check(b.wdb); err != nil {
			b.wdb.Close()
			b.wdb = nil
		}
	}
	if sqlitefile.IsCorrupt(err) {
		st, err = b.quarantine(err)
	}
	if err != nil {
		unlock()
		return nil, err
	}
	if err := b.openReader(); err != nil {
		b.wdb.Close()
		unlock()
		return nil, err
	}
	b.lastSeq.Store(st.lastSeq)
	b.stats.Messages = st.messages
	b.stats.Bytes = st.bytes
	if st.messages > 0 {
		b.stats.Oldest = time.Unix(0, st.oldestEnq)
	}
	if haveRec {
		b.checkLost(rec, st)
	}
	c, err := newCommitter(b, st)
	if err != nil {
		b.closeDB()
		return nil, err
	}
	c.record(true) // a loss is reported once, not at every start
	go c.run()
	log.Info("buffer open", "messages", st.messages, "bytes", st.bytes,
		"durability", opts.Durability.String(), "when_full", opts.WhenFull.String(),
		"wal_limit", b.plan.walLimit, "reserve", b.plan.reserve)
	return b, nil
}

// checkLost reports, loudly, entries the count record says were stored
// but the database no longer holds.
func (b *Buffer) checkLost(rec countRecord, st state) {
	var present int64
	if err := b.wdb.QueryRow(sqlPresent, rec.lastSeq).Scan(&present); err != nil {
		b.log.Warn("cannot check the buffer against its recorded message count", "err", err)
		return
	}
	lost, historyLost := checkLost(rec, st, present)
	if lost == 0 {
		return
	}
	b.stats.LostOnOpen = uint64(lost)
	msg := "buffer holds fewer messages than it last recorded: acknowledged messages lost"
	if historyLost {
		msg = "buffer file was replaced, cut short or rolled back: acknowledged messages lost (those acknowledged upstream in the last second before may be counted too)"
	}
	b.log.Error(msg, "lost", lost, "recorded", rec.messages, "stored", st.messages, "record", b.opts.Path+sidecarSuffix)
}

// openWriter opens the writing connection, makes sure the schema exists and
// loads the running totals. On error nothing is left open.
func (b *Buffer) openWriter() (state, error) {
	sync := "FULL"
	if b.opts.Durability == PowerLossUnsafe {
		sync = "NORMAL"
	}
	// sqlitefile.Open creates the file first: SQLite reports a permission
	// problem as "unable to open database file", which hides the reason.
	db, err := sqlitefile.Open(b.opts.Path, []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS),
		"journal_mode(WAL)",
		"synchronous(" + sync + ")",
		fmt.Sprintf("cache_size(-%d)", cacheSizeKiB),
		fmt.Sprintf("wal_autocheckpoint(%d)", b.plan.walLimit/pageSize),
		fmt.Sprintf("journal_size_limit(%d)", b.plan.walLimit),
	}, url.Values{"_txlock": {"immediate"}})
	if err != nil {
		return state{}, fmt.Errorf("buffer %s: %w", b.opts.Path, err)
	}
	// One connection: the committer is the only writer, and prepared
	// statements stay on it.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	st, err := setup(db)
	if err != nil {
		db.Close()
		return state{}, fmt.Errorf("buffer %s: %w", b.opts.Path, err)
	}
	b.wdb = db
	return st, nil
}

func setup(db *sql.DB) (state, error) {
	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		return state{}, err
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return state{}, err
	}
	if mode != "wal" {
		return state{}, fmt.Errorf("journal mode is %q, not wal", mode)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return state{}, fmt.Errorf("schema: %w", err)
	}
	var (
		st          state
		maxSeq      int64
		first, fenq sql.NullInt64
	)
	err := db.QueryRowContext(ctx, sqlLoad).Scan(&st.messages, &st.bytes, &maxSeq, &first, &fenq, &st.lastSeq, &st.removed)
	if err != nil {
		return state{}, fmt.Errorf("load totals: %w", err)
	}
	st.lastSeq = max(st.lastSeq, maxSeq)
	st.oldestSeq, st.oldestEnq = first.Int64, fenq.Int64
	return st, nil
}

func (b *Buffer) openReader() error {
	name := sqlitefile.DSN(b.opts.Path, []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS),
		fmt.Sprintf("cache_size(-%d)", cacheSizeKiB),
		"query_only(1)",
	}, nil)
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return fmt.Errorf("buffer %s: reader: %w", b.opts.Path, err)
	}
	// Reads come from the bridge's drain loop, one at a time; a second
	// connection covers a status query meanwhile.
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(0)
	stmt, err := db.Prepare(sqlRead)
	if err != nil {
		db.Close()
		return fmt.Errorf("buffer %s: reader: %w", b.opts.Path, err)
	}
	one, err := db.Prepare(sqlReadOne)
	if err != nil {
		stmt.Close()
		db.Close()
		return fmt.Errorf("buffer %s: reader: %w", b.opts.Path, err)
	}
	b.rdb, b.readStmt, b.readOneStmt = db, stmt, one
	return nil
}

// closeDB closes both connections (checkpointing the WAL into the database
// on the way, which SQLite does when the last connection closes) and
// releases the file lock.
func (b *Buffer) closeDB() error {
	var errs []error
	for _, s := range []*sql.Stmt{b.readStmt, b.readOneStmt} {
		if s != nil {
			s.Close()
		}
	}
	if b.rdb != nil {
		if err := b.rdb.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if b.wdb != nil {
		if err := b.wdb.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if b.unlock != nil {
		b.unlock()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("buffer %s: close: %w", b.opts.Path, err)
	}
	return nil
}

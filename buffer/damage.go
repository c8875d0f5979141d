package buffer

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/edged/edged/sqlitefile"
)

// A damaged file is one SQLite opens but cannot read all of: a page torn by
// a power cut, a file cut short, a block the flash card gave back wrong.
// SQLite only notices when it reads the page, so Open runs quick_check and
// the readers step over what they cannot read instead of failing on it.

// rawRow holds one queue row as SQLite returned it, before any conversion,
// so that a damaged row (a NULL, a value of the wrong type) is reported as
// such instead of failing the whole read.
type rawRow struct {
	seq, enq, topic, payload, qos, retain any
}

func (r *rawRow) dest() []any {
	return []any{&r.seq, &r.enq, &r.topic, &r.payload, &r.qos, &r.retain}
}

// decode converts the row; it fails when a column is not what Append wrote.
func (r *rawRow) decode() (Entry, error) {
	var e Entry
	seq, ok1 := r.seq.(int64)
	enq, ok2 := r.enq.(int64)
	topic, ok3 := r.topic.(string)
	payload, ok4 := r.payload.([]byte) // an empty BLOB is a nil []byte, NULL is nil
	qos, ok5 := r.qos.(int64)
	retain, ok6 := r.retain.(int64)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || qos < 0 || qos > 255 || retain < 0 || retain > 1 {
		return e, fmt.Errorf("row %v: unreadable columns (enqueued %T, topic %T, payload %T, qos %v, retain %v)",
			r.seq, r.enq, r.topic, r.payload, r.qos, r.retain)
	}
	e.Seq = seq
	e.Enqueued = time.Unix(0, enq)
	e.Msg.Topic = topic
	e.Msg.Payload = payload
	e.Msg.QoS = byte(qos)
	e.Msg.Retain = retain == 1
	return e, nil
}

// rowReader reads queue rows in seq order from one database, stepping over
// pages it cannot read.
type rowReader struct {
	chunk *sql.Stmt // sqlRead: rows after a seq, in order, with a limit
	one   *sql.Stmt // sqlReadOne: the row with a seq
}

// visit receives each row that was found: its seq, and the entry or why it
// could not be decoded. unreadable receives each seq whose lookup failed: a
// row may or may not have been there.
type rowVisitor struct {
	row        func(seq int64, e Entry, err error)
	unreadable func(seq int64)
}

// read visits up to n rows with seq greater than after, in seq order, and
// returns the last seq it got past and how many rows it visited (fewer than
// n: there are no more). When the scan meets a page SQLite calls
// corrupt, it looks seqs up one at a time (up to upper, the highest seq
// that may be stored) until one can be read, and scans on from there.
// Errors other than corruption are returned.
func (rr rowReader) read(after int64, n int, upper int64, v rowVisitor) (last int64, seen int, err error) {
	for seen < n {
		want := n - seen
		got, err := rr.scan(&after, want, v)
		seen += got
		if err == nil {
			if got < want {
				return after, seen, nil // nothing more stored
			}
			continue
		}
		if !sqlitefile.IsCorrupt(err) {
			return after, seen, err
		}
		// Step over the page that failed.
		found := false
		for after < upper && !found {
			after++
			var r rawRow
			switch err := rr.one.QueryRow(after).Scan(r.dest()...); {
			case err == nil:
				e, derr := r.decode()
				v.row(after, e, derr)
				seen++
				found = true
			case errors.Is(err, sql.ErrNoRows):
				found = true // the lookup got through: scan on from here
			case sqlitefile.IsCorrupt(err):
				v.unreadable(after)
			default:
				return after - 1, seen, err
			}
		}
		if !found {
			return after, seen, nil // unreadable to the end
		}
	}
	return after, seen, nil
}

// scan runs one chunk query and visits its rows, advancing after.
func (rr rowReader) scan(after *int64, want int, v rowVisitor) (int, error) {
	rows, err := rr.chunk.Query(*after, want)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var r rawRow
		if err := rows.Scan(r.dest()...); err != nil {
			return got, err
		}
		seq, _ := r.seq.(int64) // the rowid: always an integer
		e, derr := r.decode()
		v.row(seq, e, derr)
		*after = seq
		got++
	}
	return got, rows.Err()
}

// salvageChunk is how many rows one salvage transaction copies.
const salvageChunk = 1000

// quarantine moves a damaged database aside, opens a new one in its place
// and copies into it, with their seqs and enqueue times, every entry that
// can still be read from the damaged one. Nothing is repaired in place: the
// damaged file is kept as <path>.corrupt-<time> for whoever wants to look.
// A row is copied only when every column is what Append wrote, so salvage
// cannot deliver a message that was not acknowledged; it may miss some
// that were. It counts the loss it can tell (rows the damaged file says it
// held less those salvaged, or the rows it found unreadable) in Damaged.
func (b *Buffer) quarantine(cause error) (state, error) {
	path := b.opts.Path
	aside, err := sqlitefile.MoveAside(path, b.opts.Now())
	if err != nil {
		return state{}, fmt.Errorf("buffer %s: damaged (%v) and cannot be moved aside: %w", path, cause, err)
	}
	if _, err := b.openWriter(); err != nil {
		return state{}, err
	}
	sv := b.salvage(aside)
	st, err := setup(b.wdb)
	if err != nil {
		b.wdb.Close()
		b.wdb = nil
		return state{}, fmt.Errorf("buffer %s: after salvage: %w", path, err)
	}
	lost := max(sv.held-sv.copied, sv.undecodable+sv.unreadable, 0)
	b.stats.Damaged += uint64(lost)
	b.log.Error("buffer file is corrupt or damaged; moved it aside and started a new buffer with the messages that could still be read",
		"err", cause, "moved_to", aside, "salvaged", sv.copied, "lost", lost, "salvage_err", sv.err)
	return st, nil
}

// salvaged is what salvage did.
type salvaged struct {
	held        int64 // rows the damaged file said it held; 0 when it could not tell
	copied      int64
	undecodable int64
	unreadable  int64 // seqs between readable rows that could not be looked up
	err         error // why salvage stopped early, if it did
}

// salvage copies the readable entries of the database at from into the
// writer's (new, empty) database.
func (b *Buffer) salvage(from string) (sv salvaged) {
	db, err := sql.Open("sqlite", sqlitefile.DSN(from, []string{fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS)}, nil))
	if err != nil {
		sv.err = err
		return sv
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	// Both may fail on a damaged file; each is only a hint.
	_ = db.QueryRow("SELECT count(*) FROM queue").Scan(&sv.held)
	var upper, maxSeq, removed sql.NullInt64
	_ = db.QueryRow("SELECT value FROM meta WHERE key = 'last_seq'").Scan(&upper)
	_ = db.QueryRow("SELECT value FROM meta WHERE key = 'removed'").Scan(&removed)
	if removed.Valid {
		// Carried over so the count record still explains past acks.
		if _, err := b.wdb.Exec(sqlSetRemoved, removed.Int64); err != nil {
			sv.err = err
			return sv
		}
	}
	_ = db.QueryRow("SELECT max(seq) FROM queue").Scan(&maxSeq)
	hi := max(upper.Int64, maxSeq.Int64)

	chunk, err := db.Prepare(sqlRead)
	if err != nil {
		sv.err = err
		return sv
	}
	defer chunk.Close()
	one, err := db.Prepare(sqlReadOne)
	if err != nil {
		sv.err = err
		return sv
	}
	defer one.Close()
	rr := rowReader{chunk: chunk, one: one}

	after := int64(0)
	visited := false
	for {
		var batch []Entry
		var seen int
		after, seen, err = rr.read(after, salvageChunk, hi, rowVisitor{
			row: func(_ int64, e Entry, err error) {
				visited = true
				if err != nil {
					sv.undecodable++
					return
				}
				batch = append(batch, e)
			},
			unreadable: func(int64) {
				// Before the first row they are most likely seqs acked
				// long ago; after it, rows that were there.
				if visited {
					sv.unreadable++
				}
			},
		})
		if err == nil {
			err = b.copyEntries(batch, after)
		}
		if err != nil {
			sv.err = err
			return sv
		}
		sv.copied += int64(len(batch))
		hi = max(hi, after)
		if seen < salvageChunk {
			return sv
		}
	}
}

// copyEntries inserts salvaged entries, keeping their seqs, in one
// transaction, and raises the stored high-water mark to last.
func (b *Buffer) copyEntries(es []Entry, last int64) error {
	tx, err := b.wdb.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, e := range es {
		payload := e.Msg.Payload
		if payload == nil {
			payload = []byte{}
		}
		if _, err := tx.Exec(sqlInsert, e.Seq, e.Enqueued.UnixNano(), e.Msg.Topic, payload,
			int64(e.Msg.QoS), e.Msg.Retain, entrySize(e.Msg)); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(sqlSetLast, last); err != nil {
		return err
	}
	return tx.Commit()
}

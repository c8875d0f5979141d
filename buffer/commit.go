package buffer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/edged/edged/liveness"
	"github.com/edged/edged/sqlitefile"
)

// state is the committer's picture of what is stored. It is changed only
// from a committed transaction's outcome, so it never runs ahead of disk.
type state struct {
	messages, bytes      int64
	oldestSeq, oldestEnq int64 // the head of the queue; meaningful when messages > 0
	lastSeq              int64 // highest seq ever handed out; never reused
	removed              int64 // entries ever removed (acked, dropped, expired, discarded)
}

// Limits of the committer.
const (
	// maxBatch caps the requests in one transaction, so one commit's latency
	// stays bounded under a flood.
	maxBatch = 4096
	// headChunk is how many head rows one query looks at when trimming.
	headChunk = 256
	// expiryEvery is how often the committer looks for expired entries at the
	// head when nothing else makes it commit.
	expiryEvery = time.Minute
	// logEvery rate-limits the expiry log line.
	logEvery = time.Minute
	// commitLimit is how long one commit may take before the watchdog
	// hears that the committer is stuck. A healthy one takes milliseconds;
	// busy retries (busyRetries × busyTimeoutMS plus backoff) and a slow
	// SD card's fsync take seconds. A minute means the disk has stopped.
	commitLimit = time.Minute
)

// committer is the single goroutine that writes. It owns the writer
// connection and its prepared statements.
type committer struct {
	b    *Buffer
	st   state
	res  *reserve
	loop *liveness.Loop // busy during each commit
	// lastReserveTry rate-limits attempts to re-create a released reserve.
	lastReserveTry time.Time

	insert, delSeq, head, delTo, oldest, setLast, setRemoved *sql.Stmt

	// The count record beside the file (sidecar.go): what it says now and
	// when it was written.
	recorded     countRecord
	recordedAt   time.Time
	recordFailed bool

	// Episodes are logged when they start and end, not per message.
	dropping       bool
	droppedInEp    uint64
	rejecting      bool
	rejectedInEp   uint64
	diskFull       bool
	refusedInFull  uint64 // appends refused since the disk filled or an append was last accepted
	lastExpiredLog time.Time
	expiredSince   uint64
}

func newCommitter(b *Buffer, st state) (*committer, error) {
	c := &committer{b: b, st: st, res: &reserve{path: b.opts.Path + ".reserve", size: b.plan.reserve},
		loop:     b.live.Loop("buffer committer", commitLimit),
		recorded: countRecord{messages: -1}} // unknown: the first record() writes
	if !c.res.ensure() {
		b.log.Warn("cannot set aside the disk reserve; on a full disk acknowledgements may fail until space is freed",
			"reserve", c.res.path, "bytes", c.res.size)
	}
	for _, p := range []struct {
		s   **sql.Stmt
		sql string
	}{
		{&c.insert, sqlInsert}, {&c.delSeq, sqlDeleteSeq}, {&c.head, sqlHead},
		{&c.delTo, sqlDeleteTo}, {&c.oldest, sqlOldest}, {&c.setLast, sqlSetLast},
		{&c.setRemoved, sqlSetRemoved},
	} {
		s, err := b.wdb.Prepare(p.sql)
		if err != nil {
			return nil, fmt.Errorf("buffer %s: prepare: %w", b.opts.Path, err)
		}
		*p.s = s
	}
	return c, nil
}

func (c *committer) run() {
	defer close(c.b.done)
	defer c.record(true)
	tick := time.NewTicker(expiryEvery)
	defer tick.Stop()
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r, ok := <-c.b.reqs:
			if !ok {
				return
			}
			batch = append(batch[:0], r)
			bytes := r.bytes()
		fill:
			// Everything that queued up while the last transaction was
			// committing goes into this one: that is the group commit.
			// Its size is bounded too, so its frames fit in the WAL.
			for len(batch) < maxBatch && bytes < c.b.plan.batchBytes {
				select {
				case r, ok := <-c.b.reqs:
					if !ok {
						break fill
					}
					batch = append(batch, r)
					bytes += r.bytes()
				default:
					break fill
				}
			}
			c.commit(batch)
			clear(batch)
		case <-tick.C:
			if c.headExpired(c.b.now()) {
				c.commit(nil)
			}
		}
	}
}

// bytes is what a request adds to the database.
func (r *request) bytes() int64 {
	if r.kind == opAppend {
		return entrySize(r.msg)
	}
	return 0
}

// headExpired reports whether the first entry is older than MaxAge.
func (c *committer) headExpired(now time.Time) bool {
	return c.b.opts.MaxAge > 0 && c.st.messages > 0 &&
		c.st.oldestEnq < now.Add(-c.b.opts.MaxAge).UnixNano()
}

// outcome is what one transaction would do to the state and the counters.
type outcome struct {
	st                                state
	errs                              []error // per request, aligned with the batch
	committed                         bool    // a transaction ran (false: all refused up front)
	appended, acked, dropped, expired uint64
	refusedMax, refusedDisk           uint64 // appends refused by max_bytes / a full disk
	discarded                         uint64 // unreadable rows deleted
}

// commit runs the batch as one transaction, retrying SQLITE_BUSY with a
// bounded backoff, and answers every request in it.
func (c *committer) commit(batch []*request) {
	c.loop.Busy("a commit")
	defer c.loop.Idle()
	if c.b.opts.stall != nil {
		c.b.opts.stall()
	}
	now := c.b.now()
	var (
		o   outcome
		err error
	)
	err = sqlitefile.RetryBusy(context.Background(), func() (err error) {
		o, err = c.tx(batch, now, false)
		return err
	}, func(attempt int, err error) {
		c.b.log.Debug("database busy; retrying commit", "attempt", attempt, "err", err)
	})
	if sqlitefile.IsFull(err) {
		c.enterDiskFull(err)
		o, err = c.tx(batch, now, true)
		if sqlitefile.IsFull(err) {
			c.deleteInSteps(batch, now)
			return
		}
	}
	if c.diskFull && err == nil {
		c.checkpoint()
	}
	if !c.res.held && time.Since(c.lastReserveTry) > time.Second {
		c.lastReserveTry = time.Now()
		if c.res.ensure() {
			c.b.log.Info("disk reserve set aside again", "bytes", c.res.size)
			if c.diskFull {
				c.leaveDiskFullIfRoom()
			}
		}
	}
	if err != nil {
		c.b.log.Error("commit failed", "requests", len(batch), "err", err)
		err = fmt.Errorf("buffer %s: commit: %w", c.b.opts.Path, err)
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	c.apply(o)
	for i, r := range batch {
		r.done <- o.errs[i]
	}
	c.record(false)
}

// record rewrites the count record when the state changed, at most every
// sidecarEvery unless now is set.
func (c *committer) record(now bool) {
	rec := recordOf(c.st)
	if rec == c.recorded || (!now && time.Since(c.recordedAt) < sidecarEvery) {
		return
	}
	c.recordedAt = time.Now()
	if err := writeCount(c.b.opts.Path, rec); err != nil {
		if !c.recordFailed {
			c.recordFailed = true
			c.b.log.Warn("cannot record the message count beside the buffer; a lost file would go unnoticed", "err", err)
		}
		return
	}
	c.recorded = rec
	c.recordFailed = false
}

// checkpoint lets the WAL be reused from its start: with no room to grow,
// it must be; the automatic checkpoint waits for a size it may not reach.
func (c *committer) checkpoint() {
	if _, err := c.b.wdb.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		c.b.log.Debug("checkpoint on a full disk failed", "err", err)
	}
}

// deleteSteps is how many entries one transaction deletes when the disk is
// too full for a whole batch of deletions: each deleted row rewrites part of
// a page, so a thousand acks need a few hundred KB of WAL.
const deleteSteps = 32

// deleteInSteps answers a batch whose deletions did not fit in one
// transaction on a full disk: it refuses the appends and runs the deletions
// a few at a time, checkpointing between, so the WAL is reused instead of
// grown.
func (c *committer) deleteInSteps(batch []*request, now time.Time) {
	refused := outcome{st: c.st}
	for _, r := range batch {
		if r.kind == opAppend {
			refused.refusedDisk++
			r.done <- errDiskFull
			continue
		}
		var err error
		for i := 0; i < len(r.seqs) && err == nil; i += deleteSteps {
			// Each step is a commit of its own, bounded on its own.
			c.loop.Busy("a commit on a full disk")
			part := &request{kind: r.kind, seqs: r.seqs[i:min(i+deleteSteps, len(r.seqs))]}
			var o outcome
			if o, err = c.tx([]*request{part}, now, true); err == nil {
				c.apply(o)
				c.checkpoint()
			}
		}
		if err != nil {
			c.b.log.Error("commit failed", "requests", 1, "err", err)
			err = fmt.Errorf("buffer %s: commit: %w", c.b.opts.Path, err)
		}
		r.done <- err
	}
	refused.st = c.st
	c.apply(refused)
	c.record(false)
}

// enterDiskFull starts (or continues) a disk-full episode after SQLite
// found no room. A full disk behaves like reject: the appends are refused,
// but the acks, which are what frees space, still run. The reserve is given
// up so that they can, and until the disk has room again appends may only
// use the pages acks freed inside the database file (roomInFile).
func (c *committer) enterDiskFull(err error) {
	if !c.diskFull {
		c.diskFull = true
		c.refusedInFull = 0
		c.b.log.Error("disk full: refusing new messages until acknowledgements or the disk free space",
			"err", err, "bytes", c.st.bytes)
	}
	if c.res.release() {
		c.b.log.Warn("released the disk reserve so acknowledgements can free space", "bytes", c.res.size)
	}
}

// leaveDiskFullIfRoom ends the episode once the disk has room again: the
// reserve could be set aside anew.
func (c *committer) leaveDiskFullIfRoom() {
	if c.diskFull && c.res.held {
		c.diskFull = false
		c.b.log.Warn("disk has space again; accepting messages")
	}
}

// fullMargin is the free pages an append must leave inside the database
// file while the disk is full: room for the page splits of a batch and for
// the acks that follow.
const fullMargin = 16

// roomInFile reports whether, on a full disk, the database file has free
// pages enough for an entry of size bytes. SQLite reuses the pages acks
// freed before it grows the file (which it never shrinks), and growing is
// what a full disk cannot take.
func (c *committer) roomInFile(ctx context.Context, tx *sql.Tx, size int64) (bool, error) {
	var pages int64
	if err := tx.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&pages); err != nil {
		return false, err
	}
	return pages-fullMargin >= (size+pageSize-1)/pageSize+1, nil
}

// apply publishes a committed outcome: state, stats, notification, logs.
func (c *committer) apply(o outcome) {
	c.st = o.st
	c.b.lastSeq.Store(o.st.lastSeq)
	c.b.statsMu.Lock()
	s := &c.b.stats
	s.Messages, s.Bytes = o.st.messages, o.st.bytes
	s.Oldest = time.Time{}
	if o.st.messages > 0 {
		s.Oldest = time.Unix(0, o.st.oldestEnq)
	}
	s.Appended += o.appended
	s.Acked += o.acked
	s.DroppedFull += o.dropped
	s.Expired += o.expired
	s.Rejected += o.refusedMax + o.refusedDisk
	s.Damaged += o.discarded
	if o.committed {
		s.Commits++
	}
	c.b.statsMu.Unlock()

	if o.appended > 0 {
		select {
		case c.b.notify <- struct{}{}:
		default:
		}
	}
	c.logEpisodes(o)
}

func (c *committer) logEpisodes(o outcome) {
	log := c.b.log
	if c.diskFull {
		if o.appended > 0 && c.refusedInFull > 0 {
			log.Warn("acknowledgements made room in the buffer file; accepting messages again while the disk stays full",
				"refused", c.refusedInFull)
			c.refusedInFull = 0
		}
		c.refusedInFull += o.refusedDisk
	}
	max := c.b.opts.MaxBytes
	if o.dropped > 0 {
		if !c.dropping {
			c.dropping = true
			log.Warn("buffer full: dropping the oldest messages to make room", "max_bytes", max)
		}
		c.droppedInEp += o.dropped
	} else if c.dropping && o.appended > 0 {
		log.Warn("buffer no longer full; oldest messages were dropped", "dropped", c.droppedInEp)
		c.dropping, c.droppedInEp = false, 0
	}
	if o.refusedMax > 0 {
		if !c.rejecting {
			c.rejecting = true
			log.Warn("buffer full: rejecting new messages", "max_bytes", max)
		}
		c.rejectedInEp += o.refusedMax
	} else if c.rejecting && o.appended > 0 {
		log.Warn("buffer accepting messages again", "rejected", c.rejectedInEp)
		c.rejecting, c.rejectedInEp = false, 0
	}
	if o.expired > 0 {
		c.expiredSince += o.expired
		if now := time.Now(); now.Sub(c.lastExpiredLog) >= logEvery {
			log.Warn("messages expired before they could be forwarded", "expired", c.expiredSince, "max_age", c.b.opts.MaxAge)
			c.lastExpiredLog, c.expiredSince = now, 0
		}
	}
}

var errDiskFull = fmt.Errorf("%w: disk full", ErrFull)

// tx runs one transaction for the batch and returns what it did. Deletions
// go first, so acks in the same batch make room for appends. With
// refuseAppends every append is refused (the disk is full) and only the
// deletions are attempted.
func (c *committer) tx(batch []*request, now time.Time, refuseAppends bool) (o outcome, err error) {
	o = outcome{st: c.st, errs: make([]error, len(batch))}
	opts := &c.b.opts
	var cutoff int64
	if opts.MaxAge > 0 {
		cutoff = now.Add(-opts.MaxAge).UnixNano()
	}

	writes := !refuseAppends
	if refuseAppends {
		for i, r := range batch {
			if r.kind == opAppend {
				o.errs[i] = errDiskFull
				o.refusedDisk++
			} else {
				writes = true
			}
		}
	}
	if !writes && !c.headExpired(now) {
		return o, nil
	}

	ctx := context.Background()
	tx, err := c.b.wdb.BeginTx(ctx, nil)
	if err != nil {
		return o, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()

	headMoved := false
	del := tx.StmtContext(ctx, c.delSeq)
	for _, r := range batch {
		if r.kind != opAck && r.kind != opExpire && r.kind != opDiscard {
			continue
		}
		for _, seq := range r.seqs {
			var size int64
			switch err := del.QueryRowContext(ctx, seq).Scan(&size); {
			case errors.Is(err, sql.ErrNoRows):
				continue // already gone: a duplicate ack, or dropped meanwhile
			case err != nil:
				return o, err
			}
			o.st.messages--
			o.st.bytes -= size
			switch r.kind {
			case opAck:
				o.acked++
			case opExpire:
				o.expired++
			default:
				o.discarded++
			}
			headMoved = true
		}
	}
	if headMoved {
		if err := c.refreshOldest(ctx, tx, &o.st); err != nil {
			return o, err
		}
	}
	if cutoff != 0 && o.st.messages > 0 && o.st.oldestEnq < cutoff {
		if err := c.trimHead(ctx, tx, &o, 0, cutoff); err != nil {
			return o, err
		}
	}

	if !refuseAppends {
		if err := c.appendAll(ctx, tx, batch, now, &o); err != nil {
			return o, err
		}
		if opts.MaxBytes > 0 && o.st.bytes > opts.MaxBytes {
			if err := c.trimHead(ctx, tx, &o, o.st.bytes-opts.MaxBytes, cutoff); err != nil {
				return o, err
			}
		}
	}
	if n := int64(o.acked + o.expired + o.dropped + o.discarded); n > 0 {
		o.st.removed += n
		if _, err := tx.StmtContext(ctx, c.setRemoved).ExecContext(ctx, o.st.removed); err != nil {
			return o, err
		}
	}
	if err := tx.Commit(); err != nil {
		return o, err
	}
	o.committed = true
	return o, nil
}

// appendAll inserts the batch's appends in order, refusing those the policy
// or the size bound does not admit.
func (c *committer) appendAll(ctx context.Context, tx *sql.Tx, batch []*request, now time.Time, o *outcome) error {
	opts := &c.b.opts
	enq := now.UnixNano()
	ins := tx.StmtContext(ctx, c.insert)
	first := o.st.lastSeq + 1
	for i, r := range batch {
		if r.kind != opAppend {
			continue
		}
		size := entrySize(r.msg)
		if opts.MaxBytes > 0 && size > opts.MaxBytes {
			o.errs[i] = fmt.Errorf("%w: a message of %d bytes does not fit in max_bytes %d", ErrFull, size, opts.MaxBytes)
			o.refusedMax++
			continue
		}
		if c.diskFull {
			switch ok, err := c.roomInFile(ctx, tx, size); {
			case err != nil:
				return err
			case !ok:
				o.errs[i] = errDiskFull
				o.refusedDisk++
				continue
			}
		}
		if opts.MaxBytes > 0 && opts.WhenFull == Reject && o.st.bytes+size > opts.MaxBytes {
			o.errs[i] = fmt.Errorf("%w: %d of max_bytes %d used", ErrFull, o.st.bytes, opts.MaxBytes)
			o.refusedMax++
			continue
		}
		payload := r.msg.Payload
		if payload == nil {
			payload = []byte{} // NOT NULL: an empty payload is a valid MQTT message
		}
		seq := o.st.lastSeq + 1
		if _, err := ins.ExecContext(ctx, seq, enq, r.msg.Topic, payload, int64(r.msg.QoS), r.msg.Retain, size); err != nil {
			return err
		}
		if o.st.messages == 0 {
			o.st.oldestSeq, o.st.oldestEnq = seq, enq
		}
		o.st.lastSeq = seq
		o.st.messages++
		o.st.bytes += size
		o.appended++
	}
	if o.st.lastSeq >= first {
		// Remember the high-water mark, so seqs are not reused after the
		// queue has been emptied: the bridge reads "after" the last one.
		if _, err := tx.StmtContext(ctx, c.setLast).ExecContext(ctx, o.st.lastSeq); err != nil {
			return err
		}
	}
	return nil
}

// trimHead deletes entries from the head of the queue while they are older
// than cutoff (expired) or until need bytes have been freed (dropped).
func (c *committer) trimHead(ctx context.Context, tx *sql.Tx, o *outcome, need, cutoff int64) error {
	head := tx.StmtContext(ctx, c.head)
	var (
		after, upTo, freed int64
		done               bool
	)
	for !done {
		rows, err := head.QueryContext(ctx, after, headChunk)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			var seq, enq, size int64
			if err := rows.Scan(&seq, &enq, &size); err != nil {
				rows.Close()
				return err
			}
			n++
			expired := cutoff != 0 && enq < cutoff
			if !expired && freed >= need {
				done = true
				break
			}
			upTo, after = seq, seq
			freed += size
			o.st.messages--
			o.st.bytes -= size
			if expired {
				o.expired++
			} else {
				o.dropped++
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
		if n < headChunk {
			done = true
		}
	}
	if upTo == 0 {
		return nil
	}
	if _, err := tx.StmtContext(ctx, c.delTo).ExecContext(ctx, upTo); err != nil {
		return err
	}
	return c.refreshOldest(ctx, tx, &o.st)
}

// refreshOldest reads the head of the queue after deletions.
func (c *committer) refreshOldest(ctx context.Context, tx *sql.Tx, st *state) error {
	err := tx.StmtContext(ctx, c.oldest).QueryRowContext(ctx).Scan(&st.oldestSeq, &st.oldestEnq)
	if errors.Is(err, sql.ErrNoRows) {
		st.oldestSeq, st.oldestEnq = 0, 0
		if st.messages != 0 || st.bytes != 0 {
			// The running totals drifted from the table (they cannot, short
			// of a bug); the table is the truth.
			c.b.log.Error("buffer totals drifted; resetting", "messages", st.messages, "bytes", st.bytes)
			st.messages, st.bytes = 0, 0
		}
		return nil
	}
	return err
}

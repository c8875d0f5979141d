package buffer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edged/edged/liveness"
	"github.com/edged/edged/telemetry"
)

// Policy says what Append does when a new message would take the buffer past
// its MaxBytes.
type Policy int

const (
	// DropOldest deletes the oldest entries to make room (counted and logged).
	DropOldest Policy = iota
	// Reject refuses the new message with ErrFull and keeps what is stored.
	Reject
)

// String returns the policy as the config spells it.
func (p Policy) String() string {
	switch p {
	case DropOldest:
		return "drop-oldest"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Durability says what a successful Append survives.
type Durability int

const (
	// Full survives a crash of the process and a power cut: WAL with
	// synchronous=FULL, one fsync per group commit. It is the zero value.
	Full Durability = iota
	// PowerLossUnsafe survives a crash of the process (kill -9) but not a
	// power cut: WAL with synchronous=NORMAL, no fsync per commit, so the
	// last commits before the cut may be lost although Append returned nil.
	PowerLossUnsafe
)

// String returns the durability as the config spells it.
func (d Durability) String() string {
	switch d {
	case Full:
		return "full"
	case PowerLossUnsafe:
		return "power-loss-unsafe"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Options configure a Buffer.
type Options struct {
	// Path is the database file, e.g. state_dir/buffer.db. Missing parent
	// directories are created.
	Path string
	// MaxBytes bounds the stored size (see Stats.Bytes); 0 or less means no bound.
	MaxBytes int64
	// MaxAge drops entries older than this when they are read or reach the
	// head of the queue; 0 or less means entries never expire.
	MaxAge time.Duration
	// WhenFull is the policy at MaxBytes.
	WhenFull Policy
	// Durability chooses between surviving power loss (Full, the zero
	// value) and only process crashes.
	Durability Durability
	// Log receives the buffer's log lines, each with the path; pass the
	// component logger (log.With("component", "buffer")). nil discards them.
	Log *slog.Logger
	// Now is the clock used for enqueue times, expiry and the watchdog's
	// view of a commit (Stalled); nil means time.Now.
	Now func() time.Time

	// stall, when set (by tests), is called at the start of every commit:
	// a disk that stops answering until it returns.
	stall func()
}

// ErrFull is returned by Append when the message was not stored because the
// buffer is at MaxBytes under the Reject policy, the message alone is larger
// than MaxBytes, or the disk is full.
var ErrFull = errors.New("buffer full")

// ErrClosed is returned by calls on a Buffer after Close.
var ErrClosed = errors.New("buffer closed")

// Entry is one stored message.
type Entry struct {
	// Seq orders entries: it grows in commit order and is never reused.
	Seq      int64
	Msg      telemetry.Message
	Enqueued time.Time
}

// Stats describe the buffer's contents and what happened to it since Open.
type Stats struct {
	Messages int64     // entries stored now
	Bytes    int64     // their size: topic + payload + a fixed per-entry overhead
	Oldest   time.Time // enqueue time of the first entry; zero when empty

	Appended    uint64 // messages stored by Append
	Acked       uint64 // entries removed by Ack
	DroppedFull uint64 // entries deleted by DropOldest to make room
	Expired     uint64 // entries deleted for being older than MaxAge
	Rejected    uint64 // Appends refused with ErrFull (policy or full disk)
	Commits     uint64 // transactions committed
	Damaged     uint64 // entries lost to a damaged file: unreadable rows skipped, or not salvaged at Open
	LostOnOpen  uint64 // entries recorded as stored (beside the file) but missing at Open, beyond what removals explain
}

// entryOverhead is added to topic and payload length so that Bytes tracks
// what an entry really costs on disk (row header, seq, time, flags) and so a
// flood of empty messages is still bounded by MaxBytes.
const entryOverhead = 32

// entrySize is what one message counts towards MaxBytes.
func entrySize(m telemetry.Message) int64 {
	return int64(len(m.Topic)) + int64(len(m.Payload)) + entryOverhead
}

// Buffer is the durable queue. Its methods are safe for concurrent use.
type Buffer struct {
	plan   diskPlan
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	unlock func() // releases the file lock

	wdb *sql.DB // the single writing connection, owned by the committer
	rdb *sql.DB // readers; WAL lets them run beside the writer

	readStmt, readOneStmt *sql.Stmt

	// lastSeq mirrors the committer's high-water mark for readers: the
	// highest seq that can be stored.
	lastSeq atomic.Int64

	// unreadable holds seqs Read could not look up in a damaged file, so
	// each is counted once.
	unreadableMu sync.Mutex
	unreadable   map[int64]struct{}

	reqs   chan *request
	notify chan struct{}
	done   chan struct{} // closed when the committer has exited

	// live records the committer's progress for the watchdog (Stalled);
	// its clock is Options.Now.
	live *liveness.Set

	// sendMu orders Close against senders on reqs: a sender holds it for
	// reading while it sends, Close takes it for writing to set closed.
	sendMu sync.RWMutex
	closed bool

	closeOnce sync.Once
	closeErr  error

	statsMu sync.Mutex
	stats   Stats
}

// opKind is what a request asks of the committer.
type opKind int

const (
	opAppend  opKind = iota
	opAck            // delete delivered entries
	opExpire         // delete entries Read found too old
	opDiscard        // delete entries Read could not decode
)

// request is one caller's share of a group commit.
type request struct {
	kind opKind
	msg  telemetry.Message
	seqs []int64
	done chan error // buffered; receives exactly once
}

// Append stores m durably: when it returns nil the message is committed to
// disk (with the configured Durability) and will be returned by Read until it
// is acknowledged or pushed out by MaxBytes/MaxAge. It returns an error
// wrapping ErrFull when the message was refused for space. If ctx ends while
// the commit is under way, Append returns ctx's error and the message may or
// may not have been stored (at worst a duplicate upstream, never a loss
// reported as a success).
func (b *Buffer) Append(ctx context.Context, m telemetry.Message) error {
	r := &request{kind: opAppend, msg: m, done: make(chan error, 1)}
	return b.submit(ctx, r)
}

// Ack removes delivered entries. The bridge calls it only once the upstream
// broker has acknowledged them. Sequence numbers that are not (or no longer)
// stored are ignored.
func (b *Buffer) Ack(seq ...int64) error {
	if len(seq) == 0 {
		return nil
	}
	r := &request{kind: opAck, seqs: append([]int64(nil), seq...), done: make(chan error, 1)}
	return b.submit(context.Background(), r)
}

// submit hands r to the committer and waits for its commit.
func (b *Buffer) submit(ctx context.Context, r *request) error {
	if err := b.send(ctx, r); err != nil {
		return err
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("buffer: waiting for commit: %w", ctx.Err())
	}
}

func (b *Buffer) send(ctx context.Context, r *request) error {
	b.sendMu.RLock()
	defer b.sendMu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	select {
	case b.reqs <- r:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("buffer: queueing for commit: %w", ctx.Err())
	}
}

// Read returns up to n entries with Seq greater than after, in Seq order.
// Entries older than MaxAge are not returned; they are deleted and counted as
// expired. An empty result means nothing is waiting after that point: wait on
// Notify before reading again.
func (b *Buffer) Read(after int64, n int) ([]Entry, error) {
	if n <= 0 {
		return nil, nil
	}
	b.sendMu.RLock()
	closed := b.closed
	b.sendMu.RUnlock()
	if closed {
		return nil, ErrClosed
	}

	var cutoff int64
	expiring := b.opts.MaxAge > 0
	if expiring {
		cutoff = b.now().Add(-b.opts.MaxAge).UnixNano()
	}
	out := make([]Entry, 0, min(n, 1024))
	var expired, bad []int64
	var badErr error
	var unreadable int
	rr := rowReader{chunk: b.readStmt, one: b.readOneStmt}
	v := rowVisitor{
		row: func(seq int64, e Entry, err error) {
			switch {
			case err != nil:
				if badErr == nil {
					badErr = err
				}
				bad = append(bad, seq)
			case expiring && e.Enqueued.UnixNano() < cutoff:
				expired = append(expired, seq)
			default:
				out = append(out, e)
			}
		},
		unreadable: func(seq int64) {
			if b.markUnreadable(seq) {
				unreadable++
			}
		},
	}
	var err error
	for len(out) < n {
		// Expired and unreadable rows take no place in out: read on.
		want := n - len(out)
		var seen int
		if after, seen, err = rr.read(after, want, b.lastSeq.Load(), v); err != nil || seen < want {
			break
		}
	}
	if unreadable > 0 {
		b.log.Error("buffer file damaged: skipped entries that cannot be read (restart edged to quarantine the file)",
			"entries", unreadable, "after", after)
	}
	if err != nil {
		return nil, fmt.Errorf("buffer %s: read after %d: %w", b.opts.Path, after, err)
	}
	if len(bad) > 0 {
		b.log.Error("unreadable buffer entries skipped and removed; their messages are lost",
			"entries", len(bad), "first_seq", bad[0], "err", badErr)
		r := &request{kind: opDiscard, seqs: bad, done: make(chan error, 1)}
		if err := b.submit(context.Background(), r); err != nil && !errors.Is(err, ErrClosed) {
			b.log.Warn("deleting unreadable entries failed", "entries", len(bad), "err", err)
		}
	}
	if len(expired) > 0 {
		r := &request{kind: opExpire, seqs: expired, done: make(chan error, 1)}
		if err := b.submit(context.Background(), r); err != nil && !errors.Is(err, ErrClosed) {
			// The entries are skipped either way; they will be tried again.
			b.log.Warn("deleting expired entries failed", "entries", len(expired), "err", err)
		}
	}
	return out, nil
}

// markUnreadable records that seq could not be read and counts it as
// damaged the first time; it reports whether this was the first time.
func (b *Buffer) markUnreadable(seq int64) bool {
	b.unreadableMu.Lock()
	defer b.unreadableMu.Unlock()
	if _, ok := b.unreadable[seq]; ok {
		return false
	}
	if b.unreadable == nil {
		b.unreadable = map[int64]struct{}{}
	}
	b.unreadable[seq] = struct{}{}
	b.statsMu.Lock()
	b.stats.Damaged++
	b.statsMu.Unlock()
	return true
}

// Notify returns a channel that receives after each commit that stored new
// entries. It holds at most one pending signal, so a drainer that reads until
// Read comes back empty and then waits on Notify misses nothing.
func (b *Buffer) Notify() <-chan struct{} { return b.notify }

// Stats returns the current counts. It does not touch the database.
func (b *Buffer) Stats() Stats {
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	return b.stats
}

// Stalled reports a commit that has lasted longer than commitLimit (a
// disk that stopped answering, an fsync that never returns), for the
// systemd watchdog (package liveness). A committer waiting for work is
// healthy however long it waits.
func (b *Buffer) Stalled() error { return b.live.Check() }

// Close commits the appends already queued, stops the committer and closes
// the database. It is safe to call more than once; later calls return the
// first call's result. Appends after Close return ErrClosed.
func (b *Buffer) Close() error {
	b.closeOnce.Do(func() {
		b.sendMu.Lock()
		b.closed = true
		b.sendMu.Unlock()
		close(b.reqs) // no sender can be inside send now
		<-b.done
		b.closeErr = b.closeDB()
	})
	return b.closeErr
}

package buffer

import (
	"errors"
	"os"
	"path/filepath"
)

// The buffer sets disk space aside in <path>.reserve. On a full disk SQLite
// cannot even delete, because a delete is written to the WAL first; without
// a reserve a buffer that filled the disk could never take an Ack again and
// would refuse every new message for good. Releasing the reserve gives the
// acks (and the checkpoint that lets the WAL be reused) room to run. A
// megabyte holds hundreds of ack transactions; a small partition gets a
// smaller one (see diskPlan).

// reserve is a file of real (not sparse) zero blocks.
type reserve struct {
	path string
	size int64
	held bool
}

// ensure creates the reserve unless it is held; it reports whether it is.
func (r *reserve) ensure() bool {
	if r.held {
		return true
	}
	if fi, err := os.Stat(r.path); err == nil && fi.Size() >= r.size {
		r.held = true // left by an earlier run
		return true
	}
	if free, ok := freeBytes(filepath.Dir(r.path)); ok && free < 2*r.size {
		return false // not worth trying: it would eat the last of the disk
	}
	if err := writeZeros(r.path, r.size); err != nil {
		os.Remove(r.path)
		return false
	}
	r.held = true
	return true
}

// release deletes the reserve; it reports whether there was one to free.
func (r *reserve) release() bool {
	err := os.Remove(r.path)
	was := r.held
	r.held = false
	return was && (err == nil || errors.Is(err, os.ErrNotExist))
}

func writeZeros(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	block := make([]byte, 64<<10)
	for n > 0 {
		w, err := f.Write(block[:min(n, int64(len(block)))])
		if err != nil {
			f.Close()
			return err
		}
		n -= int64(w)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// diskPlan sizes what the buffer keeps beside its entries to the partition
// it lives on. SQLite's defaults suit a disk with room to spare; on the small
// state partition of a Pi image (8 MiB) a 16 MiB WAL limit let the WAL take
// most of the disk and left room for a few hundred messages.
type diskPlan struct {
	walLimit   int64 // WAL bytes before a checkpoint, and kept after one
	reserve    int64 // the disk reserve
	batchBytes int64 // bytes of appends one transaction takes at most
}

// Bounds of the plan: a sixty-fourth of the partition for the WAL, and for
// the reserve twice that (a full disk may leave a WAL's worth of pages
// waiting to be checkpointed into the database file, which must grow for
// them, and the acks need room beside), within these limits.
const (
	maxWAL, minWAL         = 16 << 20, 128 << 10
	maxReserve, minReserve = 1 << 20, 256 << 10
)

// planFor sizes the plan for a partition of total bytes (0: unknown, which
// gets the limits meant for a roomy disk).
func planFor(total int64) diskPlan {
	p := diskPlan{walLimit: maxWAL, reserve: maxReserve}
	if total > 0 {
		p.walLimit = min(max(total/64, minWAL), maxWAL)
		p.reserve = min(max(2*p.walLimit, minReserve), maxReserve)
	}
	// A transaction's frames must fit in the WAL it is bounded to.
	p.batchBytes = p.walLimit / 2
	return p
}

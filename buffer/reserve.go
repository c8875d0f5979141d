package buffer

import (
	"errors"
	"os"
	"path/filepath"
)

// reserveSize is the disk space the buffer sets aside in <path>.reserve. On
// a full disk SQLite cannot even delete, because a delete is written to the
// WAL first; without a reserve a buffer that filled the disk could never
// take an Ack again and would refuse every new message for good. Releasing
// the reserve gives the acks (and the checkpoint that lets the WAL be
// reused) room to run. A megabyte holds hundreds of ack transactions.
const reserveSize = 1 << 20

// reserve is a file of real (not sparse) zero blocks.
type reserve struct {
	path string
	held bool
}

// ensure creates the reserve unless it is held; it reports whether it is.
func (r *reserve) ensure() bool {
	if r.held {
		return true
	}
	if fi, err := os.Stat(r.path); err == nil && fi.Size() >= reserveSize {
		r.held = true // left by an earlier run
		return true
	}
	if free, ok := freeBytes(filepath.Dir(r.path)); ok && free < 4*reserveSize {
		return false // not worth trying: it would eat the last of the disk
	}
	if err := writeZeros(r.path, reserveSize); err != nil {
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

func writeZeros(path string, n int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	block := make([]byte, 64<<10)
	for n > 0 {
		w, err := f.Write(block[:min(n, len(block))])
		if err != nil {
			f.Close()
			return err
		}
		n -= w
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

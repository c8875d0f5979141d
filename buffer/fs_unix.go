//go:build unix

package buffer

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on path so that a second edged
// pointed at the same state directory fails at start instead of sharing the
// queue behind the first one's back. The lock dies with the process, so a
// kill -9 never leaves it stale.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("in use by another process (lock %s held)", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// freeBytes reports the space available to us on the filesystem holding
// path; ok is false when it cannot be told.
func freeBytes(path string) (n int64, ok bool) {
	free, _, ok := statfs(path)
	return free, ok
}

// fsSize reports the size of the filesystem holding path; ok is false when
// it cannot be told.
func fsSize(path string) (n int64, ok bool) {
	_, total, ok := statfs(path)
	return total, ok
}

func statfs(path string) (free, total int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), true
}

//go:build !unix

package buffer

// lockFile is a no-op where flock is not available; edged targets Linux.
func lockFile(string) (func(), error) { return func() {}, nil }

// freeBytes cannot tell the free space here.
func freeBytes(string) (int64, bool) { return 0, false }

// fsSize cannot tell the filesystem's size here.
func fsSize(string) (int64, bool) { return 0, false }

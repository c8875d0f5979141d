package testpeer

import (
	"os"
	"strings"
	"testing"
)

// StaleTTYs lists this process's descriptors of pty devices that no longer
// exist: a port that was not closed when it vanished (see PtyPair.Stop). It
// skips the test where /proc/self/fd cannot be read.
func StaleTTYs(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var stale []string
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(target, "/dev/pts/") && strings.HasSuffix(target, "(deleted)") {
			stale = append(stale, target)
		}
	}
	return stale
}

package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openFiles lists the files of this process whose path contains name.
func openFiles(t *testing.T, name string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, fd := range fds {
		if p, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.Contains(p, name) {
			out = append(out, p)
		}
	}
	return out
}

func TestABrokerThatNeverRunsClosesItsStoreOnClose(t *testing.T) {
	dir := t.TempDir()
	b, err := New(loopbackCfg(), dir, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(openFiles(t, dir)) == 0 {
		t.Fatal("New opened no file in state_dir; is persistence off?")
	}
	b.Close()
	if open := openFiles(t, dir); len(open) > 0 {
		t.Fatalf("still open after Close: %v", open)
	}
	if err := b.Run(t.Context()); err == nil {
		t.Fatal("Run after Close started a broker")
	}
}

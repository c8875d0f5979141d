package broker

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/config"
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

// TestShutdownWhileClientsKeepConnecting: mochi counts a connection in its
// wait group (Listeners.ClientsWg) only once the goroutine serving it runs,
// and waits on that group when it closes. A connection accepted just before
// shutdown was counted while the wait had begun: a data race under -race
// (`make race` caught it in TestAConnectionThatStallsBeforeCONNECTIsClosed)
// and, as the sync package warns, a wait that may not see it.
func TestShutdownWhileClientsKeepConnecting(t *testing.T) {
	for range 20 {
		b, err := New(config.DefaultBroker(loopbackCfg()), t.TempDir(), testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		stop := runBroker(t, b)
		addr := b.Addrs()[0].String()
		quit := make(chan struct{})
		var dialers sync.WaitGroup
		for range 4 {
			dialers.Add(1)
			go func() {
				defer dialers.Done()
				for {
					select {
					case <-quit:
						return
					default:
					}
					if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
						_ = c.Close()
					}
				}
			}()
		}
		stop()
		close(quit)
		dialers.Wait()
	}
}

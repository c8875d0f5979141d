package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// TestARetainedCommandIsWrittenOnceNotAtEveryStart runs edged with a
// writable [[serial]] device on a pty and its broker's persistence on. A
// command published with the retain flag is written when it is published,
// but not again when edged restarts and the broker hands the retained copy
// to the adapter: the broker marks it retained and the adapters ignore it.
func TestARetainedCommandIsWrittenOnceNotAtEveryStart(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	sensor, err := os.OpenFile(pair.B, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sensor.Close() })
	var mu sync.Mutex
	var got strings.Builder
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := sensor.Read(buf)
			mu.Lock()
			got.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	received := func() string {
		mu.Lock()
		defer mu.Unlock()
		return got.String()
	}

	addr := testpeer.FreePort(t)
	host, port, _ := net.SplitHostPort(addr)
	cfg := writeConfig(t, fmt.Sprintf(`
[gateway]
id = "gw"
state_dir = %q

[[broker.listener]]
address = %q

[[serial]]
name = "s"
port = %q
patterns = ['T=(?P<t>[0-9]+)']
writable = true
`, t.TempDir(), addr, pair.A))
	publish := func(args ...string) {
		t.Helper()
		if out, err := testpeer.MosquittoPub(t, append([]string{"-h", host, "-p", port, "-q", "1", "-t", "gw/s/tx"}, args...)...); err != nil {
			t.Fatalf("mosquitto_pub: %v %s", err, out)
		}
	}

	p := startEdged(t, nil, "run", "-config", cfg)
	p.waitLine(t, "device online", 15*time.Second)
	publish("-r", "-m", "RETAINED;")
	testpeer.Eventually(t, 10*time.Second, "the live retained command at the device", func() bool {
		return strings.Contains(received(), "RETAINED;")
	})
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	p = startEdged(t, nil, "run", "-config", cfg)
	p.waitLine(t, "retained command ignored", 15*time.Second)
	publish("-m", "LIVE;") // writes keep their order: a replay would come first
	testpeer.Eventually(t, 10*time.Second, "the live command at the device", func() bool {
		return strings.Contains(received(), "LIVE;")
	})
	if n := strings.Count(received(), "RETAINED;"); n != 1 {
		t.Errorf("the retained command reached the device %d times, want once: %q", n, received())
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

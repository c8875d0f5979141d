package bridge

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// TestARestartDeliversWhatTheLastRunLeft stops a bridge during an outage
// with messages buffered, then starts a new bridge on the same buffer file.
func TestARestartDeliversWhatTheLastRunLeft(t *testing.T) {
	u := startUpstream(t, false)
	proxy := testpeer.StartProxy(t, u.tlsAddr)
	proxy.Cut()
	col := collect(t, u.plain, "sites/a/gw/#")
	path := filepath.Join(t.TempDir(), "buffer.db")
	log, _ := testLogger(t)

	buf1, err := buffer.Open(buffer.Options{Path: path, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	local := &testLocal{}
	br1, err := testNew(uplinkCfg(u, proxy.Addr), buf1, "gw", local, log)
	if err != nil {
		t.Fatal(err)
	}
	local.intercept = br1.Intercept
	stop := runBridge(t, br1)
	for i := range 50 {
		if err := local.Publish("gw/m/p", []byte(fmt.Sprint(i)), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if err := buf1.Close(); err != nil {
		t.Fatal(err)
	}

	buf2 := openBuffer(t, buffer.Options{Path: path, Log: log})
	br2, err := testNew(uplinkCfg(u, proxy.Addr), buf2, "gw", &testLocal{}, log)
	if err != nil {
		t.Fatal(err)
	}
	runBridge(t, br2)
	proxy.Restore()
	ms := col.waitFor(t, 20*time.Second, "the 50 messages of the last run", func(ms []mqttMessage) bool {
		return count(ms, "").unique == 50
	})
	if tl := count(ms, ""); !tl.inOrder {
		t.Errorf("out of order: %s", tl.firstOutOfOrder)
	}
}

func TestRunEndsPromptlyWhileBackingOff(t *testing.T) {
	dead := testpeer.FreePort(t)
	cfg := config.Uplink{URL: "mqtt://" + dead, MaxBackoff: config.Duration{Duration: time.Hour}}
	br, _, _, _ := newBridge(t, cfg, buffer.Options{})
	br.minBackoff = 2 * time.Minute // the wait after the first failed round is 1-2 min
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	testpeer.Eventually(t, 15*time.Second, "a failed round", func() bool { return br.Stats().ConnectFailures >= 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v, want nil after cancel", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run still waiting out its backoff (1-2 min) 20 s after cancel")
	}
}

func TestBatchConn(t *testing.T) {
	t.Run("writes arrive whole and in order, and Close sends what is pending", func(t *testing.T) {
		a, b := net.Pipe()
		bc := newBatchConn(a, 5*time.Second)
		got := make(chan []byte, 1)
		go func() {
			all, _ := io.ReadAll(b)
			got <- all
		}()
		var want []byte
		for i := range 1000 {
			p := fmt.Appendf(nil, "packet %d;", i)
			want = append(want, p...)
			if n, err := bc.Write(p); err != nil || n != len(p) {
				t.Fatalf("Write: %d, %v", n, err)
			}
		}
		if err := bc.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case all := <-got:
			if string(all) != string(want) {
				t.Errorf("peer read %d bytes, want %d in order", len(all), len(want))
			}
		case <-time.After(20 * time.Second):
			t.Fatal("peer did not see the connection close")
		}
		if _, err := bc.Write([]byte("late")); err == nil {
			t.Error("Write after Close succeeded")
		}
	})

	t.Run("a failed write is reported to the next writer", func(t *testing.T) {
		a, b := net.Pipe()
		b.Close()
		bc := newBatchConn(a, 5*time.Second)
		defer bc.Close()
		_, _ = bc.Write([]byte("x"))
		testpeer.Eventually(t, 30*time.Second, "a write error", func() bool {
			_, err := bc.Write([]byte("y"))
			return err != nil
		})
	})
}

package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// TestASilentLinkIsFoundFast blackholes the link (nothing closed, nothing
// answered) with a publish in flight. Keepalive is two minutes, so only the
// overdue PUBACK can tell the bridge the link is dead within the deadlines.
func TestASilentLinkIsFoundFast(t *testing.T) {
	u := startUpstream(t, false)
	proxy := testpeer.StartProxy(t, u.tlsAddr)
	col := collect(t, u.plain, "sites/a/gw/#")
	cfg := uplinkCfg(u, proxy.Addr)
	cfg.Keepalive = config.Duration{Duration: 2 * time.Minute}
	cfg.AckTimeout = config.Duration{Duration: 2 * time.Second}
	br, local, _, lb := newBridge(t, cfg, buffer.Options{})
	runBridge(t, br)
	testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
	if err := local.Publish("gw/m/p", []byte("1"), 1, false); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, 10*time.Second, "the first message", func(ms []mqttMessage) bool { return len(ms) == 1 })

	proxy.Blackhole()
	if err := local.Publish("gw/m/p", []byte("2"), 1, false); err != nil {
		t.Fatal(err)
	}
	testpeer.Eventually(t, 30*time.Second, "the status topic saying disconnected (keepalive is 2 minutes)", func() bool {
		var st struct{ Connected bool }
		raw := local.Retained("gw/edged/uplink")
		return raw != nil && json.Unmarshal(raw, &st) == nil && !st.Connected && !br.Stats().Connected
	})
	if s := br.Stats(); !strings.Contains(s.LastError, "acknowledg") {
		t.Errorf("last error %q does not say the acknowledgement was overdue", s.LastError)
	}
	proxy.Restore()
	col.waitFor(t, 30*time.Second, "the message sent into the blackhole, after the link returned", func(ms []mqttMessage) bool {
		return count(ms, "").unique == 2
	})
	testpeer.Eventually(t, 15*time.Second, "the bridge connected again", connected(br))
	t.Logf("connections %d, log:\n%s", br.Stats().Connects, lb)
}

// TestShutdownDoesNotWaitForTheNetwork stops the bridge while the link is
// blackholed and paho is stuck handing a publish to its writer (the socket
// buffers are full). Run must return within the daemon's stop limit (4.5 s),
// not after paho's 10 s write timeout.
func TestShutdownDoesNotWaitForTheNetwork(t *testing.T) {
	u := startUpstream(t, false)
	proxy := testpeer.StartProxy(t, u.tlsAddr)
	cfg := uplinkCfg(u, proxy.Addr)
	cfg.Keepalive = config.Duration{Duration: 2 * time.Minute}
	cfg.AckTimeout = config.Duration{Duration: time.Minute} // the shutdown comes first
	br, local, _, _ := newBridge(t, cfg, buffer.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done, ended := make(chan error, 1), make(chan struct{})
	go func() { done <- br.Run(ctx); close(ended) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ended:
		case <-time.After(30 * time.Second):
		}
	})
	testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
	proxy.Blackhole()
	payload := bytes.Repeat([]byte("x"), 256<<10)
	for i := range 100 { // 25 MB: more than the socket buffers hold
		if err := local.Publish(fmt.Sprintf("gw/big/%d", i), payload, 1, false); err != nil {
			t.Fatal(err)
		}
	}
	testpeer.Eventually(t, 30*time.Second, "paho stuck handing a publish over", func() bool {
		buf := make([]byte, 4<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "golang.(*client).Publish(") // paho%2emqtt%2egolang
	})
	began := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		t.Logf("Run returned %v after cancel", time.Since(began).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		// Waiting for the network would take the ack timeout (1 min) or
		// the keepalive (2 min); the daemon's own stop limit is 5 s.
		t.Fatalf("Run did not return within 20 s of cancel: it waits for the network")
	}
}

// TestAConnectionThatDeliveredIsFollowedByAQuickRetry: after a long outage
// the backoff has grown; a short window of connectivity that delivered
// something must reset it, so that the next drop is followed by a retry at
// once, not by an even longer wait that misses the next window.
func TestAConnectionThatDeliveredIsFollowedByAQuickRetry(t *testing.T) {
	u := startUpstream(t, false)
	proxy := testpeer.StartProxy(t, u.tlsAddr)
	proxy.Cut()
	col := collect(t, u.plain, "sites/a/gw/#")
	cfg := uplinkCfg(u, proxy.Addr)
	cfg.MaxBackoff = config.Duration{Duration: time.Minute}
	br, local, _, _ := newBridge(t, cfg, buffer.Options{})
	runBridge(t, br)
	// Four failed rounds: the next wait is 4-8 s, the one after 8-16 s.
	testpeer.Eventually(t, 30*time.Second, "four failed attempts", func() bool { return br.Stats().ConnectFailures >= 4 })
	proxy.Restore()
	testpeer.Eventually(t, 30*time.Second, "the bridge connected", connected(br))
	if err := local.Publish("gw/m/p", []byte("1"), 1, false); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, 10*time.Second, "the message", func(ms []mqttMessage) bool { return len(ms) == 1 })
	testpeer.Eventually(t, 10*time.Second, "its PUBACK", func() bool { return br.Stats().Delivered == 1 })
	if br.Stats().LastDelivery.IsZero() {
		t.Error("Stats.LastDelivery is not set after a PUBACK")
	}

	proxy.Cut()
	testpeer.Eventually(t, 10*time.Second, "the bridge noticed the cut", func() bool { return !br.Stats().Connected })
	proxy.Restore()
	testpeer.Eventually(t, 30*time.Second, "the bridge reconnected", connected(br))
	// The grown backoff would have waited 4-8 s; a reset one 0.25-0.5 s
	// (twice that per attempt made before the proxy was restored).
	if wait := br.Stats().RetryWait; wait >= 4*time.Second {
		t.Fatalf("waited %v before reconnecting: the backoff was not reset by a connection that delivered", wait)
	}
}

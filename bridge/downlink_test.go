package bridge

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/broker"
	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// startLocalBroker runs edged's real broker with one loopback listener.
func startLocalBroker(t testing.TB) (*broker.Broker, string) {
	t.Helper()
	log, _ := testLogger(t)
	b, err := broker.New(config.DefaultBroker(config.Broker{Listeners: []config.Listener{{Type: "tcp", Address: "127.0.0.1:0"}}}),
		t.TempDir(), log.With("component", "broker"))
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("broker did not stop")
		}
	})
	select {
	case <-b.Ready():
	case err := <-done:
		t.Fatalf("broker Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("broker not ready after 10s")
	}
	return b, b.Addrs()[0].String()
}

// TestDownlinkReachesALocalSubscriberAndIsNotForwardedBack runs the real
// local broker: a command from the cloud on sites/a/gw/meter1/relay/set
// becomes gw/meter1/relay/set locally, which the forward rule gw/# also
// matches; it must reach the local subscriber and never go back up (where
// it would come down again, for ever).
func TestDownlinkReachesALocalSubscriberAndIsNotForwardedBack(t *testing.T) {
	u := startUpstream(t, false)
	col := collect(t, u.plain, "sites/#")
	brk, localAddr := startLocalBroker(t)
	host, port, _ := net.SplitHostPort(localAddr)
	sub := testpeer.StartMosquittoSub(t, "-h", host, "-p", port, "-t", "gw/+/+/set", "-q", "1", "-V", "311")

	log, _ := testLogger(t)
	buf := openBuffer(t, buffer.Options{Log: log})
	br, err := testNew(uplinkCfg(u, u.tlsAddr), buf, "gw", brk, log.With("component", "bridge"))
	if err != nil {
		t.Fatal(err)
	}
	brk.SetInterceptor(br.Intercept)
	runBridge(t, br)
	testpeer.Eventually(t, 15*time.Second, "the downlink subscription", func() bool { return br.Stats().Subscribed })

	if out, err := testpeer.MosquittoPub(t, "-h", "127.0.0.1", "-p", strconv.Itoa(testpeer.Port(t, u.plain)),
		"-t", "sites/a/gw/meter1/relay/set", "-m", "1", "-q", "1"); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	if got := sub.Next(t, 10*time.Second); got != "gw/meter1/relay/set 1" {
		t.Fatalf("local subscriber got %q, want the command on gw/meter1/relay/set", got)
	}

	// A local reading published after the command is forwarded; since the
	// buffer keeps order, a looped command would have arrived before it.
	if err := brk.Publish("gw/meter1/voltage", []byte("230"), 1, false); err != nil {
		t.Fatal(err)
	}
	ms := col.waitFor(t, 10*time.Second, "the reading after the command", func(ms []mqttMessage) bool {
		for _, m := range ms {
			if m.Topic() == "sites/a/gw/meter1/voltage" {
				return true
			}
		}
		return false
	})
	commands := 0
	for _, m := range ms {
		if m.Topic() == "sites/a/gw/meter1/relay/set" {
			commands++
		}
	}
	if commands != 1 {
		t.Errorf("the command was seen %d times upstream, want once (the cloud's own publish)", commands)
	}
	if s := br.Stats(); s.Downlinked != 1 || s.NotForwarded == 0 {
		t.Errorf("downlinked %d, not forwarded %d; want 1 and at least 1", s.Downlinked, s.NotForwarded)
	}
}

func TestLoopGuard(t *testing.T) {
	cfg := config.Uplink{URL: "mqtt://127.0.0.1:1", Forward: []config.Forward{{Local: "gw/#"}}}

	t.Run("a local client publishing on a downlink topic is forwarded like any other", func(t *testing.T) {
		br, local, buf, _ := newBridge(t, cfg, buffer.Options{})
		if err := local.PublishFrom("node-red", "gw/meter1/relay/set", []byte("1"), 1); err != nil {
			t.Fatal(err)
		}
		if buf.Stats().Messages != 1 || br.Stats().NotForwarded != 0 {
			t.Errorf("buffered %d, not forwarded %d: want it forwarded", buf.Stats().Messages, br.Stats().NotForwarded)
		}
	})

	t.Run("an adapter publishing the same bytes on the same topic while the bridge does is still forwarded", func(t *testing.T) {
		br, local, buf, _ := newBridge(t, cfg, buffer.Options{})
		const n = 200
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range n {
				if err := br.publishLocal("gw/meter1/relay/set", []byte("1"), 1, false); err != nil {
					t.Error(err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range n {
				if err := local.Publish("gw/meter1/relay/set", []byte("1"), 1, false); err != nil {
					t.Error(err)
				}
			}
		}()
		wg.Wait()
		settle(br)
		if buf.Stats().Messages != n || br.Stats().NotForwarded != n {
			t.Errorf("buffered %d, not forwarded %d; want the adapter's %d forwarded and the bridge's %d not",
				buf.Stats().Messages, br.Stats().NotForwarded, n, n)
		}
	})

	t.Run("an empty payload from the bridge is recognised too", func(t *testing.T) {
		br, local, buf, _ := newBridge(t, cfg, buffer.Options{})
		if err := br.publishLocal("gw/x/y/set", nil, 1, false); err != nil {
			t.Fatal(err)
		}
		if err := local.Publish("gw/x/y/set", nil, 1, false); err != nil {
			t.Fatal(err)
		}
		settle(br)
		if buf.Stats().Messages != 1 || br.Stats().NotForwarded != 1 {
			t.Errorf("buffered %d, not forwarded %d", buf.Stats().Messages, br.Stats().NotForwarded)
		}
	})
}

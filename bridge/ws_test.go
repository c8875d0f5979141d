package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/edged/edged/broker"
	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// TestWebSocketUplink uses edged's own broker, on a ws listener, as the
// upstream (the Mosquitto here has no working WebSocket listener).
func TestWebSocketUplink(t *testing.T) {
	log, _ := testLogger(t)
	up, err := broker.New(config.DefaultBroker(config.Broker{Listeners: []config.Listener{{Type: "ws", Address: "127.0.0.1:0"}}}),
		t.TempDir(), log.With("component", "upstream"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- up.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-up.Ready():
	case err := <-done:
		t.Fatalf("upstream broker: %v", err)
	}
	got := make(chan string, 10)
	unsub, err := up.Subscribe("sites/#", func(topic string, payload []byte, _ bool) { got <- topic + " " + string(payload) })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()

	cfg := config.Uplink{
		URL:     "ws://" + up.Addrs()[0].String() + "/",
		Forward: []config.Forward{{Local: "gw/#", RemotePrefix: "sites/a/"}},
	}
	br, local, _, _ := newBridge(t, cfg, buffer.Options{})
	runBridge(t, br)
	testpeer.Eventually(t, 15*time.Second, "the bridge connected over WebSocket", connected(br))
	if err := local.Publish("gw/m/p", []byte("1"), 1, false); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "sites/a/gw/m/p 1" {
			t.Errorf("upstream got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived upstream over WebSocket")
	}
}

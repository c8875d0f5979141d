package bridge

import (
	"testing"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
)

// TestADownlinkMessageIsNeverForwardedBack: the bridge's own local
// publishes are known by their origin, whatever the broker does with the
// payload (testLocal hands the interceptor a copy; the bridge used to
// know them by the payload slice's address, and sent such a copy back up).
func TestADownlinkMessageIsNeverForwardedBack(t *testing.T) {
	cfg := config.Uplink{URL: "mqtt://127.0.0.1:1", Forward: []config.Forward{{Local: "gw/#"}}}
	br, _, buf, _ := newBridge(t, cfg, buffer.Options{})
	if err := br.publishLocal("gw/meter1/relay/set", []byte("1"), 1, false); err != nil {
		t.Fatal(err)
	}
	settle(br)
	if n := buf.Stats().Messages; n != 0 {
		t.Fatalf("%d messages buffered for the upstream: the downlink message would go back up", n)
	}
	if n := br.Stats().NotForwarded; n != 1 {
		t.Fatalf("NotForwarded = %d, want 1", n)
	}
}

package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/telemetry"
)

// TestAMessageTheUpstreamRefusesDoesNotStallTheQueue puts messages whose
// topics Mosquitto answers by dropping the connection straight into the
// buffer (as an older edged, or one whose forward check missed them, would
// have left them), between ordinary ones. They must be moved to the
// dead-letter table and everything else delivered in order.
func TestAMessageTheUpstreamRefusesDoesNotStallTheQueue(t *testing.T) {
	u := startUpstream(t, false)
	col := collect(t, u.plain, "sites/a/gw/#")
	br, local, buf, lb := newBridge(t, uplinkCfg(u, u.tlsAddr), buffer.Options{})
	poisons := []string{"sites/a/gw/bad\x01control", "sites/a/gw/bad\uffffnoncharacter"}
	put := func(topic string, payload string) {
		t.Helper()
		if err := buf.Append(context.Background(), telemetry.Message{Topic: topic, Payload: []byte(payload), QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, p := range poisons {
		for range 3 {
			put("sites/a/gw/ok", fmt.Sprint(n))
			n++
		}
		put(p, "poison")
	}
	for range 3 {
		put("sites/a/gw/ok", fmt.Sprint(n))
		n++
	}
	runBridge(t, br)
	ms := col.waitFor(t, 60*time.Second, "every ordinary message", func(ms []mqttMessage) bool {
		return count(ms, "sites/a/gw/ok").unique == n
	})
	if tl := count(ms, "sites/a/gw/ok"); !tl.inOrder {
		t.Errorf("out of order: %s", tl.firstOutOfOrder)
	}
	testpeer.Eventually(t, 10*time.Second, "both refused messages set aside", func() bool {
		return br.Stats().DeadLetters == 2
	})
	if got, err := buf.DeadLetters(); err != nil || got != 2 {
		t.Errorf("the dead-letter table holds %d, %v; want 2", got, err)
	}
	for _, p := range poisons {
		if c := lb.Count(fmt.Sprintf("topic=%q", p)); c != 1 {
			t.Errorf("%d log lines name %q, want 1:\n%s", c, p, lb)
		}
	}
	testpeer.Eventually(t, statusEvery+20*time.Second, "an empty queue and dead_letters 2 on the status topic", func() bool {
		var st struct {
			Buffered    int64 `json:"buffered"`
			DeadLetters int64 `json:"dead_letters"`
		}
		return json.Unmarshal(local.Retained("gw/edged/uplink"), &st) == nil && st.DeadLetters == 2 && st.Buffered == 0
	})
	t.Logf("%d connections for %d refused messages", br.Stats().Connects, len(poisons))
}

// TestTopicsNoUpstreamTakesAreNotForwarded: the forward step refuses, counts
// and logs topics the upstream would drop the connection over or could not
// carry; the message is still delivered locally.
func TestTopicsNoUpstreamTakesAreNotForwarded(t *testing.T) {
	const prefix = "sites/a/"
	long := "gw/" + strings.Repeat("x", maxTopicLen-len(prefix)-len("gw/")) // exactly 65535 bytes upstream
	cases := []struct {
		name, topic string
		refused     bool
	}{
		{"a control character", "gw/m\x01p", true},
		{"DEL", "gw/m\x7fp", true},
		{"a C1 control character", "gw/m\u0085p", true},
		{"U+FFFF", "gw/m\uffffp", true},
		{"a non-character", "gw/m\ufdd0p", true},
		{"invalid UTF-8", "gw/m\xffp", true},
		{"a topic one byte longer than 65535 after the prefix", long + "y", true},
		{"a topic of exactly 65535 bytes after the prefix", long, false},
		{"an ordinary topic", "gw/meter1/voltage", false},
		{"non-ASCII letters", "gw/zähler/℃", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := remoteTopicProblem(prefix+c.topic) != ""
			if got != c.refused {
				t.Errorf("refused = %v, want %v (%q)", got, c.refused, remoteTopicProblem(prefix+c.topic))
			}
		})
	}

	t.Run("refused topics are counted and logged, not buffered, and never arrive under another topic", func(t *testing.T) {
		u := startUpstream(t, false)
		col := collect(t, u.plain, "#")
		br, local, buf, lb := newBridge(t, uplinkCfg(u, u.tlsAddr), buffer.Options{})
		runBridge(t, br)
		testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
		var seen []string
		local.Subscribe("gw/#", func(topic string, _ []byte) { seen = append(seen, topic) })
		for _, topic := range []string{long + "y", "gw/m\x01p", "gw/last"} {
			if err := local.Publish(topic, []byte("1"), 1, false); err != nil {
				t.Fatalf("publish %.20q: %v", topic, err)
			}
		}
		col.waitFor(t, 10*time.Second, "the ordinary message", func(ms []mqttMessage) bool {
			for _, m := range ms {
				if m.Topic() == prefix+"gw/last" {
					return true
				}
			}
			return false
		})
		for _, m := range col.all() {
			if m.Topic() != prefix+"gw/last" && !strings.HasPrefix(m.Topic(), "gw/") {
				t.Errorf("arrived upstream on %.60q (%d bytes)", m.Topic(), len(m.Topic()))
			}
		}
		if s := br.Stats(); s.Unforwardable != 2 || buf.Stats().Appended != 1 {
			t.Errorf("unforwardable %d, buffered %d; want 2 refused, 1 buffered", s.Unforwardable, buf.Stats().Appended)
		}
		if len(seen) != 3 {
			t.Errorf("%d local deliveries, want 3: a refused forward still reaches local subscribers", len(seen))
		}
		if n := lb.Count("not forwarding a message"); n != 1 {
			t.Errorf("%d log lines for two refusals within a minute, want 1", n)
		}
		// The status topic shows counts at its next publish, at most
		// statusEvery later; the wait only bounds a hung test.
		testpeer.Eventually(t, statusEvery+20*time.Second, "unforwardable 2 on the status topic", func() bool {
			return strings.Contains(string(local.Retained("gw/edged/uplink")), `"unforwardable":2`)
		})
	})
}

// TestAStoredMessageNoMQTTServerCouldTakeIsSetAsideBeforeItIsSent: a row
// whose topic breaks MQTT itself (empty, a wildcard, invalid UTF-8, U+0000),
// as a damaged file salvaged at start can hold, goes to the dead-letter
// table when the drain reads it, without costing a connection.
func TestAStoredMessageNoMQTTServerCouldTakeIsSetAsideBeforeItIsSent(t *testing.T) {
	u := startUpstream(t, false)
	col := collect(t, u.plain, "sites/a/gw/#")
	br, _, buf, _ := newBridge(t, uplinkCfg(u, u.tlsAddr), buffer.Options{})
	broken := []string{"", "sites/a/gw/+/x", "sites/a/gw/#", "sites/a/gw/\xff\xfe", "sites/a/gw/nul\x00"}
	n := 0
	for _, topic := range broken {
		if err := buf.Append(context.Background(), telemetry.Message{Topic: "sites/a/gw/ok", Payload: []byte(fmt.Sprint(n)), QoS: 1}); err != nil {
			t.Fatal(err)
		}
		n++
		if err := buf.Append(context.Background(), telemetry.Message{Topic: topic, Payload: []byte("broken"), QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	runBridge(t, br)
	ms := col.waitFor(t, 60*time.Second, "every ordinary message", func(ms []mqttMessage) bool {
		return count(ms, "sites/a/gw/ok").unique == n
	})
	if tl := count(ms, "sites/a/gw/ok"); !tl.inOrder {
		t.Errorf("out of order: %s", tl.firstOutOfOrder)
	}
	testpeer.Eventually(t, 10*time.Second, "every broken message set aside", func() bool {
		return br.Stats().DeadLetters == int64(len(broken))
	})
	if c := br.Stats().Connects; c != 1 {
		t.Errorf("%d connections; a message that cannot be sent must be set aside before it costs one", c)
	}
}

package bridge

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// TestOutagesLoseNothingAndKeepOrder cuts the upstream twice while four
// local publishers keep sending QoS 1 messages, once while the buffer
// fills and once in the middle of a drain, and counts at the upstream.
func TestOutagesLoseNothingAndKeepOrder(t *testing.T) {
	u := startUpstream(t, true)
	proxy := testpeer.StartProxy(t, u.tlsAddr)
	col := collect(t, u.plain, "sites/a/gw/#")
	cfg := uplinkCfg(u, proxy.Addr)
	cfg.Inflight = 16
	br, local, _, _ := newBridge(t, cfg, buffer.Options{})
	runBridge(t, br)
	testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))

	const publishers, each = 4, 1000
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("gw/dev%d/value", p)
			for i := range each {
				if err := local.Publish(topic, []byte(fmt.Sprint(i)), 1, false); err != nil {
					errs <- fmt.Errorf("%s #%d: %w", topic, i, err)
					return
				}
			}
		}()
	}
	pubDone := make(chan struct{})
	go func() { wg.Wait(); close(pubDone) }()
	finished := func() bool {
		select {
		case <-pubDone:
			return true
		default:
			return false
		}
	}

	col.waitFor(t, 30*time.Second, "the first 200 messages", func(ms []mqttMessage) bool { return len(ms) >= 200 })
	t.Logf("200 arrived; buffer %+v", br.Stats().Buffer)
	proxy.Cut()
	testpeer.Eventually(t, 10*time.Second, "the bridge noticed the first cut", func() bool { return !br.Stats().Connected })
	testpeer.Eventually(t, 30*time.Second, "messages waiting in the buffer", func() bool {
		return br.Stats().Buffer.Messages >= 300 || finished()
	})
	proxy.Restore()
	testpeer.Eventually(t, 15*time.Second, "the bridge reconnected", connected(br))
	col.waitFor(t, 30*time.Second, "more messages after the reconnect", func(ms []mqttMessage) bool {
		return len(ms) >= 200+publishers*each/3
	})
	proxy.Cut() // in the middle of the drain, with publishes in flight
	testpeer.Eventually(t, 10*time.Second, "the bridge noticed the second cut", func() bool { return !br.Stats().Connected })
	proxy.Restore()

	select {
	case <-pubDone:
	case <-time.After(60 * time.Second):
		t.Fatal("publishers did not finish within 60s")
	}
	close(errs)
	for err := range errs {
		t.Fatalf("a local publish was refused: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	arrived := func() int {
		msgs, n := col.all(), 0
		for p := range publishers {
			n += count(msgs, fmt.Sprintf("sites/a/gw/dev%d/value", p)).unique
		}
		return n
	}
	for arrived() < publishers*each {
		if time.Now().After(deadline) {
			msgs := col.all()
			for p := range publishers {
				t.Logf("dev%d: %+v", p, count(msgs, fmt.Sprintf("sites/a/gw/dev%d/value", p)))
			}
			t.Fatalf("not every message arrived within 60s; bridge: %+v", br.Stats())
		}
		select {
		case <-col.kick:
		case <-time.After(time.Second):
		}
	}
	testpeer.Eventually(t, 10*time.Second, "an empty buffer", func() bool { return br.Stats().Buffer.Messages == 0 })

	msgs := col.all()
	dups := 0
	for p := range publishers {
		topic := fmt.Sprintf("sites/a/gw/dev%d/value", p)
		tl := count(msgs, topic)
		if tl.unique != each {
			t.Errorf("%s: %d of %d messages arrived", topic, tl.unique, each)
		}
		if !tl.inOrder {
			t.Errorf("%s: out of order: %s", topic, tl.firstOutOfOrder)
		}
		dups += tl.dups
	}
	s := br.Stats()
	t.Logf("%d messages, %d duplicates seen upstream, %d reported possible, %d connections", publishers*each, dups, s.DuplicatesPossible, s.Connects)
	if uint64(dups) > s.DuplicatesPossible {
		t.Errorf("%d duplicates arrived but only %d were reported possible", dups, s.DuplicatesPossible)
	}
	if s.Connects < 3 {
		t.Errorf("%d connections, want 3 (two outages)", s.Connects)
	}
}

func TestBufferBoundsWhileTheUpstreamIsAway(t *testing.T) {
	// Every entry costs the same: remote topic + 4-byte payload + overhead,
	// so max_bytes holds exactly keep of them.
	const keep, sent = 20, 30
	entry := int64(len("sites/a/gw/m/p") + 4 + 32)

	t.Run("reject refuses new messages and delivers the ones it kept", func(t *testing.T) {
		u := startUpstream(t, false)
		proxy := testpeer.StartProxy(t, u.tlsAddr)
		proxy.Cut()
		col := collect(t, u.plain, "sites/a/gw/#")
		br, local, _, _ := newBridge(t, uplinkCfg(u, proxy.Addr), buffer.Options{MaxBytes: keep * entry, WhenFull: buffer.Reject})
		runBridge(t, br)
		var accepted []int
		for i := range sent {
			// A network publisher: it learns of the refusal (in-process
			// publishers do not wait for the buffer).
			err := local.PublishFrom("sensor", "gw/m/p", fmt.Appendf(nil, "%04d", i), 1)
			switch {
			case err == nil:
				accepted = append(accepted, i)
			case errors.Is(err, ErrRefused):
			default:
				t.Fatalf("publish %d: %v, want nil or ErrRefused", i, err)
			}
		}
		if len(accepted) != keep {
			t.Fatalf("%d accepted, want %d", len(accepted), keep)
		}
		proxy.Restore()
		ms := col.waitFor(t, 20*time.Second, "the kept messages", func(ms []mqttMessage) bool { return len(ms) >= keep })
		for i, m := range ms[:keep] {
			if want := fmt.Sprintf("%04d", accepted[i]); string(m.Payload()) != want {
				t.Fatalf("message %d upstream is %s, want %s", i, m.Payload(), want)
			}
		}
		s := br.Stats()
		if s.Refused != sent-keep || s.Buffer.Rejected != sent-keep {
			t.Errorf("refused %d / buffer rejected %d, want %d", s.Refused, s.Buffer.Rejected, sent-keep)
		}
		testpeer.Eventually(t, statusEvery+20*time.Second, "the status topic counting the rejections", func() bool {
			return strings.Contains(string(local.Retained("gw/edged/uplink")), fmt.Sprintf(`"rejected":%d`, sent-keep))
		})
	})

	t.Run("drop-oldest keeps the newest messages and counts the dropped", func(t *testing.T) {
		u := startUpstream(t, false)
		proxy := testpeer.StartProxy(t, u.tlsAddr)
		proxy.Cut()
		col := collect(t, u.plain, "sites/a/gw/#")
		br, local, _, _ := newBridge(t, uplinkCfg(u, proxy.Addr), buffer.Options{MaxBytes: keep * entry, WhenFull: buffer.DropOldest})
		runBridge(t, br)
		for i := range sent {
			if err := local.Publish("gw/m/p", fmt.Appendf(nil, "%04d", i), 1, false); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		settle(br)
		proxy.Restore()
		ms := col.waitFor(t, 20*time.Second, "the kept messages", func(ms []mqttMessage) bool { return len(ms) >= keep })
		for i, m := range ms[:keep] {
			if want := fmt.Sprintf("%04d", sent-keep+i); string(m.Payload()) != want {
				t.Fatalf("message %d upstream is %s, want %s", i, m.Payload(), want)
			}
		}
		if d := br.Stats().Buffer.DroppedFull; d != sent-keep {
			t.Errorf("%d dropped, want %d", d, sent-keep)
		}
		testpeer.Eventually(t, statusEvery+20*time.Second, "the status topic counting the drops", func() bool {
			return strings.Contains(string(local.Retained("gw/edged/uplink")), fmt.Sprintf(`"dropped":%d`, sent-keep))
		})
	})
}

func TestQoS0(t *testing.T) {
	zero := 0
	rules := []config.Forward{{Local: "gw/#", RemotePrefix: "sites/a/", QoS: &zero}}

	t.Run("QoS 0 is sent straight away while connected and dropped while not", func(t *testing.T) {
		u := startUpstream(t, false)
		proxy := testpeer.StartProxy(t, u.tlsAddr)
		col := collect(t, u.plain, "sites/a/gw/#")
		cfg := uplinkCfg(u, proxy.Addr)
		cfg.Forward = rules
		br, local, buf, _ := newBridge(t, cfg, buffer.Options{})
		runBridge(t, br)
		testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
		if err := local.Publish("gw/m/p", []byte("1"), 0, false); err != nil {
			t.Fatal(err)
		}
		ms := col.waitFor(t, 10*time.Second, "the QoS 0 message", func(ms []mqttMessage) bool { return len(ms) == 1 })
		if ms[0].Qos() != 0 {
			t.Errorf("arrived with QoS %d, want 0", ms[0].Qos())
		}
		proxy.Cut()
		testpeer.Eventually(t, 10*time.Second, "the bridge noticed the cut", func() bool { return !br.Stats().Connected })
		if err := local.Publish("gw/m/p", []byte("2"), 0, false); err != nil {
			t.Fatal(err)
		}
		if s := br.Stats(); s.DroppedQoS0 != 1 || buf.Stats().Appended != 0 {
			t.Errorf("dropped %d, buffered %d; want the QoS 0 message dropped and counted, not buffered", s.DroppedQoS0, buf.Stats().Appended)
		}
	})

	t.Run("a QoS 1 publish on a QoS 0 rule is still buffered", func(t *testing.T) {
		cfg := config.Uplink{URL: "mqtt://127.0.0.1:1", Forward: rules}
		br, local, buf, _ := newBridge(t, cfg, buffer.Options{})
		if err := local.Publish("gw/m/p", []byte("1"), 1, false); err != nil {
			t.Fatal(err)
		}
		settle(br)
		if buf.Stats().Messages != 1 || br.Stats().DroppedQoS0 != 0 {
			t.Errorf("buffered %d, dropped %d: want it buffered", buf.Stats().Messages, br.Stats().DroppedQoS0)
		}
	})

	t.Run("buffer_qos0 keeps QoS 0 messages through an outage", func(t *testing.T) {
		u := startUpstream(t, false)
		proxy := testpeer.StartProxy(t, u.tlsAddr)
		proxy.Cut()
		col := collect(t, u.plain, "sites/a/gw/#")
		cfg := uplinkCfg(u, proxy.Addr)
		cfg.Forward = rules
		cfg.BufferQoS0 = true
		br, local, _, _ := newBridge(t, cfg, buffer.Options{})
		runBridge(t, br)
		for i := range 5 {
			if err := local.Publish("gw/m/p", []byte(fmt.Sprint(i)), 0, true); err != nil {
				t.Fatal(err)
			}
		}
		proxy.Restore()
		ms := col.waitFor(t, 15*time.Second, "the buffered QoS 0 messages", func(ms []mqttMessage) bool { return len(ms) == 5 })
		if tl := count(ms, ""); !tl.inOrder || tl.unique != 5 {
			t.Errorf("%+v, want 5 in order", tl)
		}
		if br.Stats().DroppedQoS0 != 0 {
			t.Errorf("QoS 0 messages dropped with buffer_qos0")
		}
	})
}

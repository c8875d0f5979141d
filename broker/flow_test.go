package broker

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/internal/testpeer"
)

// TestAHealthySubscriberGetsEveryMessageOfABurst is issue 14's burst: ten
// publishers as fast as they can to one mosquitto_sub writing to a file.
// Mosquitto on its defaults delivers every QoS 0 message of it; edged
// delivered 34-55 %, dropping what did not fit its queue for the subscriber
// instead of reading the publishers more slowly.
func TestAHealthySubscriberGetsEveryMessageOfABurst(t *testing.T) {
	const publishers, each = 10, 5000
	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			// A healthy subscriber on a loaded machine (CI runs packages in
			// parallel) can lag for seconds; what is tested here is that
			// publishers are held rather than messages dropped, not how
			// soon a subscriber counts as stuck.
			b, addr := startBroker(t, loopbackCfg(), "", holdFor(30*time.Second))
			host, port, _ := net.SplitHostPort(addr)
			sub := testpeer.StartMosquittoSubFile(t, filepath.Join(t.TempDir(), "sub.out"),
				"-h", host, "-p", port, "-q", fmt.Sprint(qos), "-t", "burst/#")
			pubs := make([]paho.Client, publishers)
			for i := range pubs {
				pubs[i] = pahoClient(t, "tcp://"+addr, fmt.Sprintf("pub%d", i), func(o *paho.ClientOptions) {
					o.SetOrderMatters(false).SetWriteTimeout(0)
				})
			}
			// Until mosquitto_sub has subscribed, a probe is all it would get.
			testpeer.Eventually(t, 10*time.Second, "mosquitto_sub to subscribe", func() bool {
				waitToken(t, pubs[0].Publish("burst/probe", 1, false, "probe"), "probe")
				return sub.Lines(t) > 0
			})
			// Probes still arriving are not counted: only the burst's payload is.
			payload := strings.Repeat("x", 64)
			var wg sync.WaitGroup
			for i, p := range pubs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var last paho.Token
					for range each {
						last = p.Publish(fmt.Sprintf("burst/%d", i), qos, false, payload)
					}
					if !last.WaitTimeout(60 * time.Second) {
						t.Errorf("publisher %d: not done within 60s", i)
					}
				}()
			}
			wg.Wait()
			want := publishers * each
			// Wait for all, or until nothing more arrives (the rest was dropped).
			got, progress := sub.Count(t, payload), time.Now()
			for deadline := time.Now().Add(30 * time.Second); got < want && time.Since(progress) < 2*time.Second && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond) // polling a file: there is no event to wait on
				if n := sub.Count(t, payload); n != got {
					got, progress = n, time.Now()
				}
			}
			if s := b.Stats(); s.Dropped != 0 || got != want {
				t.Fatalf("mosquitto_sub got %d of %d messages; broker stats %+v", got, want, s)
			}
		})
	}
}

// TestOutboundQueueIsFound guards flowControl's view of mochi's outbound
// queue, which mochi does not export: a new mochi version that moves it
// fails here, not silently in production (flow control would stop holding
// publishers and mochi would drop again).
func TestOutboundQueueIsFound(t *testing.T) {
	b, _ := startBroker(t, loopbackCfg(), "")
	cl := b.srv.NewClient(nil, "test", "probe", false)
	q := outboundQueue(cl)
	if q == nil {
		t.Fatal("mochi's outbound queue (Client.State.outbound) not found")
	}
	if cap(q) != int(b.srv.Options.Capabilities.MaximumClientWritesPending) {
		t.Fatalf("queue capacity %d, want MaximumClientWritesPending %d", cap(q), b.srv.Options.Capabilities.MaximumClientWritesPending)
	}
}

// TestAStoppedSubscriberHoldsAtMostMaxQueuedBytes: a subscriber that stops
// reading is sent in-process publishes (which never wait) of 4 KiB each.
// Past max_queued_bytes (and a quarter) messages for it are dropped and
// counted instead of filling mochi's queue of max_inflight + max_queued
// (1064 x 4 KiB here).
func TestAStoppedSubscriberHoldsAtMostMaxQueuedBytes(t *testing.T) {
	cfg := loopbackCfg()
	cfg.MaxPacketSize = 64 << 10
	cfg.MaxQueuedBytes = 64 << 10
	b, addr := startBroker(t, cfg, "")
	sub := dialRaw(t, addr)
	sub.connect(4, "stopped", true, nil)
	sub.subscribe("big/#", 0)
	var cl *mqtt.Client
	testpeer.Eventually(t, 30*time.Second, "the subscriber to be known", func() bool {
		var ok bool
		cl, ok = b.srv.Clients.Get("stopped")
		return ok
	})
	bc := cl.Net.Conn.(*batchConn)

	payload := make([]byte, 4<<10)
	const n = 4000 // 16 MiB, far more than the socket buffers take
	for range n {
		if err := b.Publish("big/x", payload, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	s := b.Stats()
	if s.DroppedQueueFull == 0 {
		t.Fatalf("nothing dropped for a subscriber that does not read; stats %+v", s)
	}
	if q := len(bc.flow.out); q > 64 {
		t.Fatalf("mochi's queue for it holds %d messages of 4 KiB; want the bytes bound to keep it near 64 KiB", q)
	}
	// What the estimate cannot see: mochi's own write buffer (16 KiB, it
	// writes to the connection when full) and the message being written.
	unseen := int64(b.srv.Options.ClientNetWriteBufferSize) + 2*int64(len(payload)+16)
	if got, limit := b.hook.flow.queuedBytes(bc), int64(cfg.MaxQueuedBytes)*5/4+unseen; got > limit {
		t.Fatalf("%d bytes queued for it, want at most %d", got, limit)
	}
}

// TestTwoClientsFeedingEachOtherDoNotHoldEachOtherUp: a and b each
// subscribe to what the other publishes, at QoS 1, and both burst. A
// subscriber's QoS 1 window opens only when its own reader handles its
// PUBACKs; were that reader held waiting for the other (whose reader waits
// for it), both would stall until the hold limit and be declared stuck
// (failing before the fix: 2 stuck). Such a flood is beyond what a queue
// can take in either broker (Mosquitto drops past max_queued_messages too):
// messages may be dropped, but every one is counted.
func TestTwoClientsFeedingEachOtherDoNotHoldEachOtherUp(t *testing.T) {
	b, addr := startBroker(t, loopbackCfg(), "", holdFor(2*time.Second))
	const each = 10000
	var got [2]atomic.Int64
	clients := make([]paho.Client, 2)
	for i := range clients {
		clients[i] = pahoClient(t, "tcp://"+addr, fmt.Sprintf("peer%d", i), func(o *paho.ClientOptions) {
			o.SetOrderMatters(false).SetWriteTimeout(0)
		})
		waitToken(t, clients[i].Subscribe(fmt.Sprintf("to/%d", i), 1, func(paho.Client, paho.Message) { got[i].Add(1) }), "subscribe")
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last paho.Token
			for range each {
				last = c.Publish(fmt.Sprintf("to/%d", 1-i), 1, false, "x")
			}
			if !last.WaitTimeout(60 * time.Second) {
				t.Errorf("peer%d: publishes not acknowledged within 60s", i)
			}
		}()
	}
	wg.Wait()
	accounted := func() bool { return got[0].Load()+got[1].Load()+b.Stats().Dropped >= 2*each }
	testpeer.Eventually(t, 30*time.Second, "every message delivered or counted as dropped", accounted)
	if s := b.Stats(); s.StuckSubscribers != 0 {
		t.Fatalf("got %d and %d of %d; stats %+v: the two held each other up", got[0].Load(), got[1].Load(), each, s)
	}
}

// TestQueuedBytesCountMessagesBeforeTheFirstIsSent: the bytes estimate of a
// subscriber's queue priced its messages at the average of those already
// written to it, which is nothing before its writer first runs. On a loaded
// machine a burst of in-process publishes then filled mochi's queue with
// hundreds of 4 KiB messages the bound never saw (CI: 398 282 bytes queued
// against a bound of 106 528).
func TestQueuedBytesCountMessagesBeforeTheFirstIsSent(t *testing.T) {
	b, _ := startBroker(t, loopbackCfg(), "")
	if err := b.Publish("nobody/listens", make([]byte, 4<<10), 0, false); err != nil {
		t.Fatal(err)
	}
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	bc := newBatchConn(server)
	bc.flow.out = make(chan *packets.Packet, 10)
	for range 5 {
		bc.flow.out <- &packets.Packet{}
	}
	if got := b.hook.flow.queuedBytes(bc); got < 5*4<<10 {
		t.Fatalf("5 queued messages of 4 KiB, none sent yet, estimated at %d bytes", got)
	}
}

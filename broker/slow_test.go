package broker

import (
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/internal/testpeer"
)

// drain reads n PUBLISH packets, acknowledging each, and returns their payloads.
func drain(t *testing.T, rc *rawClient, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		pk, err := rc.read(20 * time.Second)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(got), n, err)
		}
		if pk.FixedHeader.Type != packets.Publish {
			continue
		}
		got = append(got, string(pk.Payload))
		if pk.FixedHeader.Qos > 0 {
			rc.puback(pk.PacketID)
		}
	}
	return got
}

func seq(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(from + i)
	}
	return out
}

func TestSlowSubscriberKeepsItsQueueAndCountsDrops(t *testing.T) {
	const inflight, queued = 4, 20
	const limit = inflight + queued
	cases := []struct {
		name    string
		version byte
		recvMax uint16 // MQTT 5 Receive Maximum the subscriber announces; 0 = none
		ordered bool
	}{
		{"an MQTT 3.1.1 subscriber", 4, 0, true},
		{"an MQTT 5 subscriber", 5, 0, true},
		// edged keeps the window on the connection, in order (outWindow).
		{"an MQTT 5 subscriber with Receive Maximum 2", 5, 2, true},
	}
	for _, c := range cases {
		t.Run(c.name+" that stops reading loses nothing within max_inflight + max_queued", func(t *testing.T) {
			cfg := loopbackCfg()
			cfg.MaxInflight, cfg.MaxQueued = inflight, queued
			// The publisher is held while the queue is full, then the
			// subscriber counts as stuck (flowControl).
			b, addr := startBroker(t, cfg, "", holdFor(200*time.Millisecond))

			sub := dialRaw(t, addr)
			sub.connect(c.version, "slow", true, func(pk *packets.Packet) {
				if c.recvMax > 0 {
					pk.Properties.ReceiveMaximum = c.recvMax
				}
			})
			sub.subscribe("slow/#", 1)

			// A network publisher bursts exactly the queue limit at QoS 1.
			pub := pahoClient(t, "tcp://"+addr, "burst", nil)
			var toks []paho.Token
			for i := range limit {
				toks = append(toks, pub.Publish("slow/x", 1, false, strconv.Itoa(i)))
			}
			for i, tok := range toks {
				waitToken(t, tok, fmt.Sprintf("publish %d", i))
			}
			if s := b.Stats(); s.Dropped != 0 || s.StuckSubscribers != 1 {
				t.Fatalf("dropped %d within the limit, %d stuck subscribers (want 1)", s.Dropped, s.StuckSubscribers)
			}
			check(t, drain(t, sub, limit), seq(0, limit), c.ordered)
			testpeer.Eventually(t, 30*time.Second, "the acknowledgements processed", func() bool { return b.Stats().Inflight == 0 })

			// Beyond the limit, the first limit messages are kept and every
			// other one is dropped and counted.
			const burst = 50
			for i := range burst {
				if err := b.Publish("slow/y", []byte(strconv.Itoa(100+i)), 1, false); err != nil {
					t.Fatal(err)
				}
			}
			if s := b.Stats(); s.DroppedQueueFull != burst-limit || s.Dropped != burst-limit {
				t.Fatalf("Stats = %+v, want %d dropped for a full queue", s, burst-limit)
			}
			check(t, drain(t, sub, limit), seq(100, limit), c.ordered)
			if pk, err := sub.read(200 * time.Millisecond); err == nil {
				t.Fatalf("got a message beyond the limit: %q", pk.Payload)
			}
			testpeer.Eventually(t, 30*time.Second, "nothing left in flight", func() bool { return b.Stats().Inflight == 0 })
		})
	}
}

func check(t *testing.T, got, want []string, ordered bool) {
	t.Helper()
	if !ordered {
		got = append([]string(nil), got...)
		sort.Strings(got)
		want = append([]string(nil), want...)
		sort.Strings(want)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

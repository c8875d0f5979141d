package broker

import (
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

func TestMaxClientsRefusesTheOneTooMany(t *testing.T) {
	cfg := loopbackCfg()
	cfg.MaxClients = 1
	_, addr := startBroker(t, cfg, "")
	first := dialRaw(t, addr)
	first.connect(4, "first", true, nil)
	second := dialRaw(t, addr)
	second.version = 4
	second.send(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect:     packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "second", Clean: true, Keepalive: 30},
	})
	ack := second.expect(packets.Connack)
	if ack.ReasonCode != 0x03 { // MQTT 3.1.1: server unavailable
		t.Fatalf("CONNACK return code %#x, want 0x03 (server unavailable)", ack.ReasonCode)
	}
}

func TestQueuedMessagesExpireAndAreCounted(t *testing.T) {
	cfg := loopbackCfg()
	cfg.MessageExpiry = config.Duration{Duration: time.Second}
	b, addr := startBroker(t, cfg, "")
	sub := dialRaw(t, addr)
	sub.connect(4, "away", false, nil)
	sub.subscribe("exp/#", 1)
	sub.c.Close()
	testpeer.Eventually(t, 30*time.Second, "the subscriber gone", func() bool { return b.Stats().ClientsConnected == 0 })
	for range 3 {
		if err := b.Publish("exp/x", []byte("stale"), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	testpeer.Eventually(t, 3*sweepEvery, "three messages expired", func() bool { return b.Stats().DroppedExpired == 3 })
	if s := b.Stats(); s.Dropped != 3 || s.Inflight != 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

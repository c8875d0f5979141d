package broker

import (
	"bytes"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

func TestOutWindowHoldsPublishesInOrderBeyondReceiveMaximum(t *testing.T) {
	pub := func(id uint16, qos byte, payload string) []byte {
		return encode(t, 5, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: "w", PacketID: id, Payload: []byte(payload)})
	}
	ping := encode(t, 5, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
	w := outWindow{max: 2}
	var out []byte
	// mochi may write several packets at once.
	out = w.admit(out, bytes.Join([][]byte{pub(1, 1, "a"), pub(2, 1, "b"), pub(3, 1, "c")}, nil))
	out = w.admit(out, pub(0, 0, "d")) // QoS 0 behind held QoS 1 waits too, to keep order
	out = w.admit(out, ping)           // other packets pass
	want := bytes.Join([][]byte{pub(1, 1, "a"), pub(2, 1, "b"), ping}, nil)
	if !bytes.Equal(out, want) {
		t.Fatalf("sent before any ack:\n%x\nwant\n%x", out, want)
	}
	out = w.ack(nil, 2)
	if want := bytes.Join([][]byte{pub(3, 1, "c"), pub(0, 0, "d")}, nil); !bytes.Equal(out, want) {
		t.Fatalf("after PUBACK 2:\n%x\nwant\n%x", out, want)
	}
	if len(w.held) != 0 || w.heldQoS0 != 0 {
		t.Fatalf("still held: %d packets, %d QoS 0 bytes", len(w.held), w.heldQoS0)
	}
	// A resend of an id still unacknowledged (after a reconnect) passes.
	if out := w.admit(nil, pub(1, 1, "a")); !bytes.Equal(out, pub(1, 1, "a")) {
		t.Fatalf("resend of id 1 held")
	}

	t.Run("QoS 0 held behind a full window is capped and counted", func(t *testing.T) {
		dropped := 0
		w := outWindow{max: 1, onDrop: func() { dropped++ }}
		w.admit(nil, pub(1, 1, "first"))
		w.admit(nil, pub(2, 1, "held"))
		big := pub(0, 0, string(make([]byte, 60<<10)))
		for range 5 {
			w.admit(nil, big)
		}
		if kept := maxHeldQoS0 / len(big); dropped != 5-kept || w.heldQoS0 > maxHeldQoS0 {
			t.Fatalf("dropped %d, holding %d bytes of QoS 0; want %d dropped, at most %d bytes", dropped, w.heldQoS0, 5-kept, maxHeldQoS0)
		}
	})
}

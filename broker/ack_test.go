package broker

import (
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// TestAcknowledgementsCarryNoInheritedProperties: mochi copied a
// publisher's user properties into its PUBACK/PUBREC, and such a PUBACK
// carried reason code 0x01, which is not a PUBACK reason code (issue 13.9).
func TestAcknowledgementsCarryNoInheritedProperties(t *testing.T) {
	_, addr := startBroker(t, loopbackCfg(), "")
	props := packets.Properties{User: []packets.UserProperty{{Key: "trace", Val: "abc"}}}
	wantPlain := func(t *testing.T, pk packets.Packet, what string) {
		t.Helper()
		if pk.ReasonCode != 0 || len(pk.Properties.User) != 0 || pk.Properties.ReasonString != "" {
			t.Fatalf("%s: reason %#x, user properties %v, reason string %q; want 0x00 and none",
				what, pk.ReasonCode, pk.Properties.User, pk.Properties.ReasonString)
		}
	}

	t.Run("a QoS 1 publish with user properties gets a PUBACK with reason 0 and none of them", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.connect(5, "props-1", true, nil)
		rc.send(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName:   "ack/props", Payload: []byte("x"), PacketID: 7, Properties: props,
		})
		ack := rc.expect(packets.Puback)
		if ack.PacketID != 7 {
			t.Fatalf("PUBACK for id %d, want 7", ack.PacketID)
		}
		wantPlain(t, ack, "PUBACK")
	})

	t.Run("a QoS 2 publish with user properties gets a PUBREC and PUBCOMP with none of them", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.connect(5, "props-2", true, nil)
		rc.send(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2},
			TopicName:   "ack/props", Payload: []byte("x"), PacketID: 8, Properties: props,
		})
		wantPlain(t, rc.expect(packets.Pubrec), "PUBREC")
		rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: 8, Properties: props})
		wantPlain(t, rc.expect(packets.Pubcomp), "PUBCOMP")
	})
}

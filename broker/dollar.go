package broker

import (
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ackDollarTopic acknowledges a client's QoS 1 or 2 PUBLISH to a topic
// starting with $, which mochi drops without an acknowledgement (no MQTT
// version allows that: the client waits for ever, its in-flight slot
// taken). The message is not routed, as mochi routes no client publish to
// such a topic; the acknowledgement is Mosquitto's for $SYS/...: a plain
// one for MQTT 3.1.1, 0x87 (Not authorized) for MQTT 5, which ends a QoS 2
// exchange there. A 3.1.1 client's PUBREL is answered by mochi with a
// PUBCOMP like any other.
func ackDollarTopic(cl *mqtt.Client, pk *packets.Packet) error {
	if pk.FixedHeader.Qos == 0 || !strings.HasPrefix(pk.TopicName, "$") {
		return nil
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}
	if pk.FixedHeader.Qos == 2 {
		ack.FixedHeader.Type = packets.Pubrec
	}
	if cl.Properties.ProtocolVersion >= 5 {
		ack.ReasonCode = packets.ErrNotAuthorized.Code
	}
	return cl.WritePacket(ack)
}

package broker

import (
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// dollarTopicHook acknowledges a client's QoS 1 or 2 PUBLISH to a topic
// starting with $, which mochi drops without an acknowledgement (no MQTT
// version allows that: the client waits for ever, its in-flight slot
// taken). The message is not routed, as mochi routes no client publish to
// such a topic; the acknowledgement is Mosquitto's for $SYS/...: a plain
// one for MQTT 3.1.1, 0x87 (Not authorized) for MQTT 5, which ends a QoS 2
// exchange there. A 3.1.1 client's PUBREL is answered by mochi with a
// PUBCOMP like any other.
type dollarTopicHook struct {
	mqtt.HookBase
}

func (h *dollarTopicHook) ID() string { return "dollar-topics" }

func (h *dollarTopicHook) Provides(b byte) bool { return b == mqtt.OnPacketRead }

func (h *dollarTopicHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos == 0 || cl.Net.Inline ||
		!strings.HasPrefix(pk.TopicName, "$") {
		return pk, nil
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}
	if pk.FixedHeader.Qos == 2 {
		ack.FixedHeader.Type = packets.Pubrec
	}
	if cl.Properties.ProtocolVersion >= 5 {
		ack.ReasonCode = packets.ErrNotAuthorized.Code
	}
	return pk, cl.WritePacket(ack)
}

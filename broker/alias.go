package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// aliasHook refuses a PUBLISH whose topic name is empty and whose topic
// alias the connection has not set: MQTT 5 (3.3.4) makes it a Protocol
// Error, answered with DISCONNECT 0x82. mochi resolves such an alias to the
// empty topic and acknowledges the publish, so the message goes nowhere
// without a word. Aliases mochi checks itself (0, or above the maximum:
// DISCONNECT 0x94) are left to it.
type aliasHook struct {
	mqtt.HookBase
	srv *mqtt.Server
	max uint16 // broker.topic_alias_maximum
}

func (h *aliasHook) ID() string { return "topic-alias" }

func (h *aliasHook) Provides(b byte) bool { return b == mqtt.OnPacketRead }

// OnPacketRead sees each packet before mochi handles it, with the client's
// aliases as the connection's earlier packets left them (mochi keeps them
// per connection, never across a reconnect).
func (h *aliasHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Publish || pk.TopicName != "" || !pk.Properties.TopicAliasFlag ||
		pk.Properties.TopicAlias == 0 || pk.Properties.TopicAlias > h.max || cl.Net.Inline {
		return pk, nil
	}
	// An alias the connection set maps to a non-empty topic; Set with an
	// empty topic name returns that mapping and changes nothing.
	if cl.State.TopicAliases.Inbound.Set(pk.Properties.TopicAlias, "") != "" {
		return pk, nil
	}
	_ = h.srv.DisconnectClient(cl, packets.ErrProtocolViolation)
	return pk, packets.ErrRejectPacket
}

package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// refuseUnknownAlias refuses a PUBLISH whose topic name is empty and whose
// topic alias the connection has not set: MQTT 5 (3.3.4) makes it a
// Protocol Error, answered with DISCONNECT 0x82. mochi resolves such an
// alias to the empty topic and acknowledges the publish, so the message
// goes nowhere without a word. Aliases mochi checks itself (0, or above
// the maximum max: DISCONNECT 0x94) are left to it. It runs on each packet
// before mochi handles it (edgeHook.OnPacketRead), with the client's aliases
// as the connection's earlier packets left them (mochi keeps them per
// connection, never across a reconnect).
func refuseUnknownAlias(srv *mqtt.Server, max uint16, cl *mqtt.Client, pk *packets.Packet) error {
	if pk.TopicName != "" || !pk.Properties.TopicAliasFlag || pk.Properties.TopicAlias == 0 || pk.Properties.TopicAlias > max {
		return nil
	}
	// An alias the connection set maps to a non-empty topic; Set with an
	// empty topic name returns that mapping and changes nothing.
	if cl.State.TopicAliases.Inbound.Set(pk.Properties.TopicAlias, "") != "" {
		return nil
	}
	_ = srv.DisconnectClient(cl, packets.ErrProtocolViolation)
	return packets.ErrRejectPacket
}

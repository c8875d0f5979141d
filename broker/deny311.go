package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// refuseDenied311 closes the connection of an MQTT 3.1.1 (or 3.1) client
// whose QoS 1 or 2 PUBLISH the ACL denies, sending nothing. mochi answers
// such a publish with a DISCONNECT packet before closing, but MQTT 3.1.1
// has no DISCONNECT from the server: a server that does not authorize a
// PUBLISH acknowledges it or closes the connection (MQTT-3.3.5-2), and a
// strict client treats the packet as a protocol error. It runs the ACL check
// mochi would run next and, where mochi would write a DISCONNECT, rejects
// the packet instead: mochi then closes the connection (and publishes the
// will) without writing anything. MQTT 5 clients, and QoS 0 publishes
// (dropped without a word), are left to mochi.
func refuseDenied311(acl *AuthHook, cl *mqtt.Client, pk *packets.Packet) error {
	if pk.FixedHeader.Qos == 0 || cl.Properties.ProtocolVersion >= 5 || acl.OnACLCheck(cl, pk.TopicName, true) {
		return nil
	}
	return packets.ErrRejectPacket
}

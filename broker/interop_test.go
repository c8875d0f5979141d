package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/internal/testpeer"
)

// unknownAliasAnswer connects an MQTT 5 client to addr, publishes with an
// empty topic name and a topic alias the connection never set, and
// describes how the broker answered.
func unknownAliasAnswer(t *testing.T, addr string, qos byte) string {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.connect(5, "unknown-alias", true, nil)
	rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, PacketID: 1,
		Payload: []byte("where to?"), Properties: packets.Properties{TopicAlias: 1, TopicAliasFlag: true}})
	pk, err := rc.read(10 * time.Second)
	if err != nil {
		return fmt.Sprintf("no packet (%v)", err)
	}
	if pk.FixedHeader.Type != packets.Disconnect {
		return fmt.Sprintf("packet type %d reason %#x", pk.FixedHeader.Type, pk.ReasonCode)
	}
	after, err := rc.read(10 * time.Second)
	if err == nil {
		return fmt.Sprintf("DISCONNECT %#x, then packet type %d", pk.ReasonCode, after.FixedHeader.Type)
	}
	return fmt.Sprintf("DISCONNECT %#x, connection closed", pk.ReasonCode)
}

// A topic alias maps to a topic only within the connection that set it
// (MQTT 5 3.3.2.3.4): a PUBLISH with an empty topic name and an alias this
// connection has not set is a Protocol Error, answered with DISCONNECT 0x82
// as Mosquitto does. mochi took it for a publish on the empty topic and
// acknowledged it (the Paho interoperability suite's client topic alias
// test, which reconnects and reuses an alias of the previous connection).
func TestAnUnknownTopicAliasIsAProtocolErrorAsInMosquitto(t *testing.T) {
	m := testpeer.StartMosquitto(t, "max_topic_alias 10")
	_, addr := startBroker(t, loopbackCfg(), "") // defaults: topic_alias_maximum 10
	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			want := unknownAliasAnswer(t, m.Addr, qos)
			if want != "DISCONNECT 0x82, connection closed" {
				t.Fatalf("mosquitto answered %s; the test expects what MQTT 5 asks", want)
			}
			if got := unknownAliasAnswer(t, addr, qos); got != want {
				t.Fatalf("edged: %s\nmosquitto: %s", got, want)
			}
		})
	}
}

// MQTT 3.1.1 has no DISCONNECT from server to client: a server that does not
// authorize a client's PUBLISH acknowledges it as usual or closes the
// connection (MQTT-3.3.5-2). mochi sent a DISCONNECT packet to a 3.1.1 client
// whose QoS 1 publish the ACL denied, which a strict client takes for a
// protocol error (the Paho interoperability suite's 3.1.1 client raised
// "Unexpected packet"). The connection is now closed with nothing sent.
func TestADeniedMQTT311PublishGetsNoDisconnectPacket(t *testing.T) {
	aclPath := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(aclPath, []byte("topic readwrite allowed/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yes := true
	cfg := loopbackCfg()
	cfg.Listeners[0].AllowAnonymous = &yes
	cfg.Listeners[0].ACLFile = aclPath
	cfg.Listeners[0] = loadFiles(t, cfg.Listeners[0])
	_, addr := startBroker(t, cfg, "")

	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.connect(4, "denied", true, nil)
			rc.publish("denied/topic", []byte("no"), qos, 7)
			pk, err := rc.read(10 * time.Second)
			if err == nil && pk.FixedHeader.Type == packets.Disconnect {
				t.Fatalf("got a DISCONNECT packet (reason %#x): MQTT 3.1.1 has none from the server", pk.ReasonCode)
			}
			if err == nil && pk.FixedHeader.Type != packets.Puback && pk.FixedHeader.Type != packets.Pubrec {
				t.Fatalf("got packet type %d, want an acknowledgement or the connection closed", pk.FixedHeader.Type)
			}
		})
	}
}

// dollarTopicAnswer publishes at qos to topic and returns the type and
// reason of the broker's answer; for QoS 2 it completes the exchange.
func dollarTopicAnswer(t *testing.T, addr string, version byte, topic string, qos byte) string {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.connect(version, "dollar", true, nil)
	rc.publish(topic, []byte("x"), qos, 9)
	pk, err := rc.read(10 * time.Second)
	if err != nil {
		return fmt.Sprintf("no answer (%v)", err)
	}
	got := fmt.Sprintf("type %d id %d reason %#x", pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
	if pk.FixedHeader.Type == packets.Pubrec && pk.ReasonCode < packets.ErrUnspecifiedError.Code { // an error code ends the exchange
		rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: pk.PacketID})
		comp, err := rc.read(10 * time.Second)
		if err != nil {
			return got + fmt.Sprintf(", then no PUBCOMP (%v)", err)
		}
		got += fmt.Sprintf(", then type %d id %d reason %#x", comp.FixedHeader.Type, comp.PacketID, comp.ReasonCode)
	}
	return got
}

// A client's QoS 1 or 2 publish to a topic starting with $ is acknowledged,
// as Mosquitto does (which keeps $SYS/... to itself). mochi dropped it
// without an acknowledgement, which no MQTT version allows: the client
// waited for ever and its in-flight slot stayed taken.
func TestAPublishToADollarTopicIsAcknowledgedAsInMosquitto(t *testing.T) {
	m := testpeer.StartMosquitto(t, "")
	_, addr := startBroker(t, loopbackCfg(), "")
	for _, version := range []byte{4, 5} {
		for _, qos := range []byte{1, 2} {
			t.Run(fmt.Sprintf("MQTT v%d QoS %d", version, qos), func(t *testing.T) {
				want := dollarTopicAnswer(t, m.Addr, version, "$SYS/edged/test", qos)
				if got := dollarTopicAnswer(t, addr, version, "$SYS/edged/test", qos); got != want {
					t.Fatalf("edged: %s\nmosquitto: %s", got, want)
				}
			})
		}
	}
}

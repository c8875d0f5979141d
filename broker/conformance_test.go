package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// connackFor connects with the given version and keep alive and describes
// the CONNACK: its reason and the Server Keep Alive and Topic Alias Maximum
// it announced.
func connackFor(t *testing.T, addr string, version byte, keepalive uint16) string {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.version = version
	rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "ka", Clean: true, Keepalive: keepalive}})
	pk := rc.expect(packets.Connack)
	ska := "none"
	if pk.Properties.ServerKeepAliveFlag {
		ska = fmt.Sprint(pk.Properties.ServerKeepAlive)
	}
	return fmt.Sprintf("reason %#x, server keep alive %s, topic alias maximum %d", pk.ReasonCode, ska, pk.Properties.TopicAliasMaximum)
}

func TestCONNACKAdvertisesKeepaliveAndTopicAliasLimitsAsMosquittoDoes(t *testing.T) {
	m := testpeer.StartMosquitto(t, "max_keepalive 60\nmax_topic_alias 10")
	cfg := loopbackCfg()
	cfg.MaxKeepalive = config.Duration{Duration: time.Minute}
	tam := 10
	cfg.TopicAliasMaximum = &tam
	_, addr := startBroker(t, cfg, "")
	for _, v := range []byte{4, 5} {
		for _, ka := range []uint16{0, 30, 60, 120} {
			t.Run(fmt.Sprintf("MQTT %d with keep alive %d", v, ka), func(t *testing.T) {
				want := connackFor(t, m.Addr, v, ka)
				if got := connackFor(t, addr, v, ka); got != want {
					t.Fatalf("edged: %s\nmosquitto: %s", got, want)
				}
			})
		}
	}
}

func TestTopicAliasesWithinTheAdvertisedMaximum(t *testing.T) {
	_, addr := startBroker(t, loopbackCfg(), "") // defaults: topic_alias_maximum 10
	h, p := hostPort(t, addr)
	sub := testpeer.StartMosquittoSub(t, "-h", h, "-p", p, "-V", "mqttv5", "-t", "alias/#")

	rc := dialRaw(t, addr)
	ack := rc.connect(5, "aliaser", true, nil)
	if ack.Properties.TopicAliasMaximum != config.DefaultTopicAliasMaximum {
		t.Fatalf("CONNACK Topic Alias Maximum %d, want %d", ack.Properties.TopicAliasMaximum, config.DefaultTopicAliasMaximum)
	}
	withAlias := func(topic string, alias uint16, payload string) packets.Packet {
		return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: []byte(payload),
			Properties: packets.Properties{TopicAlias: alias, TopicAliasFlag: true}}
	}
	rc.send(withAlias("alias/one", 10, "set"))
	rc.send(withAlias("", 10, "used"))
	for _, want := range []string{"alias/one set", "alias/one used"} {
		if got := sub.Next(t, 5*time.Second); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	rc.send(withAlias("alias/two", 11, "beyond"))
	pk, err := rc.read(20 * time.Second)
	if err != nil || pk.FixedHeader.Type != packets.Disconnect || pk.ReasonCode != packets.ErrTopicAliasInvalid.Code {
		t.Fatalf("alias 11: got packet type %d reason %#x (err %v), want DISCONNECT 0x94", pk.FixedHeader.Type, pk.ReasonCode, err)
	}
}

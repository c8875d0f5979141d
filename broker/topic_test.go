package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/internal/testpeer"
)

// badTopics are topic names Mosquitto 2.0.11 refuses at publish.
var badTopics = []struct{ name, topic string }{
	{"U+0000", "a\x00b"},
	{"U+0001", "a\x01b"},
	{"U+001F", "a\x1fb"},
	{"U+007F", "a\x7fb"},
	{"U+0080", "a\u0080b"},
	{"U+009F", "a\u009fb"},
	{"U+FDD0", "a\ufdd0b"},
	{"U+FFFE", "a\ufffeb"},
	{"U+FFFF", "a\uffffb"},
	{"U+1FFFE", "a\U0001fffeb"},
	{"a byte that is not UTF-8", "a\xffb"},
	{"a UTF-16 surrogate", "a\xed\xa0\x80b"},
}

// publishOutcome connects a raw client, publishes on topic and reports what
// the broker answered (see outcome).
func publishOutcome(t *testing.T, addr, id string, version, qos byte, topic string) string {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.connect(version, id, true, nil)
	rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, Payload: []byte("x"), PacketID: 1})
	rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
	return outcome(rc)
}

// willOutcome connects with a will on topic and reports what the broker
// answered (see outcome).
func willOutcome(t *testing.T, addr string, version byte, topic string) string {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.version = version
	rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, Connect: packets.ConnectParams{
		ProtocolName: []byte("MQTT"), ClientIdentifier: "will", Clean: true, Keepalive: 30,
		WillFlag: true, WillTopic: topic, WillPayload: []byte("gone"),
	}})
	return outcome(rc)
}

// outcome reads the broker's answer: an acknowledgement with its reason, a
// DISCONNECT with its reason, a closed connection, or "accepted" (the
// PINGRESP to a PINGREQ).
func outcome(rc *rawClient) string {
	pk, err := rc.read(20 * time.Second)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer"
	case err != nil:
		return "closed"
	}
	switch pk.FixedHeader.Type {
	case packets.Disconnect:
		// Then the connection must close.
		if _, err := rc.read(20 * time.Second); !errors.Is(err, io.EOF) && (err == nil || errors.As(err, &ne) && ne.Timeout()) {
			return fmt.Sprintf("DISCONNECT %#02x, connection left open", pk.ReasonCode)
		}
		return fmt.Sprintf("DISCONNECT %#02x", pk.ReasonCode)
	case packets.Pingresp:
		return "accepted"
	}
	return fmt.Sprintf("packet type %d reason %#02x", pk.FixedHeader.Type, pk.ReasonCode)
}

func TestInvalidTopicNamesAreRefusedAsMosquittoRefusesThem(t *testing.T) {
	m := testpeer.StartMosquitto(t, "")
	b, addr := startBroker(t, loopbackCfg(), "")
	h, p := hostPort(t, addr)
	sub := testpeer.StartMosquittoSub(t, "-h", h, "-p", p, "-V", "mqttv5", "-t", "#")

	refused := int64(0)
	for _, c := range badTopics {
		for _, v := range []byte{4, 5} {
			for _, q := range []byte{0, 1} {
				t.Run(fmt.Sprintf("a topic with %s, MQTT %d, QoS %d", c.name, v, q), func(t *testing.T) {
					id := fmt.Sprintf("bad-%d-%d", v, q)
					want := publishOutcome(t, m.Addr, id, v, q, c.topic)
					got := publishOutcome(t, addr, id, v, q, c.topic)
					if got != want {
						t.Fatalf("edged: %s; mosquitto: %s", got, want)
					}
					if want == "accepted" || strings.HasPrefix(want, "packet type 4 reason 0x0") {
						t.Fatalf("mosquitto accepted it (%s): the case is wrong", want)
					}
					refused++
					if s := b.Stats(); s.InvalidTopics != refused || s.Malformed != 0 {
						t.Fatalf("Stats: %d invalid topics, %d malformed; want %d, 0", s.InvalidTopics, s.Malformed, refused)
					}
				})
			}
		}
	}

	for _, c := range badTopics[1:] { // U+0000 is refused by the decoder, as malformed
		for _, v := range []byte{4, 5} {
			t.Run(fmt.Sprintf("a will topic with %s, MQTT %d", c.name, v), func(t *testing.T) {
				want := willOutcome(t, m.Addr, v, c.topic)
				if got := willOutcome(t, addr, v, c.topic); got != want {
					t.Fatalf("edged: %s; mosquitto: %s", got, want)
				}
				// mochi's decoder refuses a CONNECT that is not UTF-8 before
				// the topic is looked at: it counts as malformed.
				refused++
				if s := b.Stats(); s.InvalidTopics+s.Malformed != refused {
					t.Fatalf("Stats: %d invalid topics + %d malformed, want %d", s.InvalidTopics, s.Malformed, refused)
				}
			})
		}
	}

	t.Run("no subscriber got any of them", func(t *testing.T) {
		if out, err := testpeer.MosquittoPub(t, "-h", h, "-p", p, "-t", "fine", "-m", "last"); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
		if got := sub.Next(t, 5*time.Second); got != "fine last" {
			t.Fatalf("subscriber got %q first", got)
		}
	})

	t.Run("an in-process publish on such a topic is refused", func(t *testing.T) {
		for _, c := range badTopics {
			if err := b.Publish(c.topic, []byte("x"), 1, false); err == nil {
				t.Errorf("Publish on a topic with %s: no error", c.name)
			}
		}
	})
}

func TestCheckTopicNameAcceptsOrdinaryUnicode(t *testing.T) {
	for _, topic := range []string{"a/b", "Zürich/温度/°C", "emoji/🌡", "sp ace/+x", "\u00a0/\ufdcf/\ufdf0/\ufffd"} {
		if err := checkTopicName([]byte(topic)); err != nil {
			t.Errorf("%q: %v", topic, err)
		}
	}
}

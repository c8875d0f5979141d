package broker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/config"
	"github.com/edged/edged/mqttauth"
	"github.com/edged/edged/tlsfiles"
)

// testLog logs at Debug to stderr when EDGED_TEST_LOG=1, and nowhere
// otherwise (it writes to stderr, not through t, whether or not -v is given).
func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("EDGED_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// loopbackCfg is a broker config with one tcp listener on a free port and
// config's defaults.
func loopbackCfg() config.Broker {
	return config.DefaultBroker(config.Broker{Listeners: []config.Listener{{Type: "tcp", Address: "127.0.0.1:0"}}})
}

// loadFiles loads the files a listener names, as config.Load does.
func loadFiles(t testing.TB, l config.Listener) config.Listener {
	t.Helper()
	var err error
	if l.CertFile != "" {
		var pair tls.Certificate
		if pair, err = tlsfiles.LoadKeyPair(l.CertFile, l.KeyFile); err != nil {
			t.Fatal(err)
		}
		l.Certificate = &pair
	}
	if l.ClientCAFile != "" {
		if l.ClientCAs, err = tlsfiles.LoadCAPool(l.ClientCAFile); err != nil {
			t.Fatal(err)
		}
	}
	if l.UsersFile != "" {
		if l.Users, err = mqttauth.LoadUsers(l.UsersFile); err != nil {
			t.Fatal(err)
		}
	}
	if l.ACLFile != "" {
		if l.ACL, err = mqttauth.LoadACL(l.ACLFile); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// startBroker runs a broker until the test ends and returns it and the
// address of its first listener.
//
// setup runs on the broker before it serves: a test that changes a field
// after would race, for the race detector, with the connections it then
// makes (a socket is no synchronisation it can see).
func startBroker(t testing.TB, cfg config.Broker, stateDir string, setup ...func(*Broker)) (*Broker, string) {
	t.Helper()
	if stateDir == "" {
		stateDir = t.TempDir()
	}
	b, err := New(config.DefaultBroker(cfg), stateDir, testLog(t)) // for keys the test left out
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, f := range setup {
		f(b)
	}
	stop := runBroker(t, b)
	t.Cleanup(stop)
	return b, b.Addrs()[0].String()
}

// holdFor sets how long flow control holds a publisher (see startBroker).
func holdFor(d time.Duration) func(*Broker) {
	return func(b *Broker) { b.hook.flow.hold = d }
}

// runBroker runs b and returns a function that stops it and waits for Run.
func runBroker(t testing.TB, b *Broker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	select {
	case <-b.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("broker not ready within 10s")
	}
	stopped := false
	return func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of cancel")
		}
	}
}

// rawClient speaks MQTT over a plain TCP connection, packet by packet, for
// the tests that need what no well-behaved client does: stop reading, send
// broken packets, or see exactly which acknowledgement came back.
type rawClient struct {
	t       testing.TB
	c       net.Conn
	r       *bufio.Reader
	version byte
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, r: bufio.NewReader(c), version: 4}
}

func (rc *rawClient) send(pk packets.Packet) {
	rc.t.Helper()
	rc.write(encode(rc.t, rc.version, pk))
}

// encode builds packets with mochi's encoder for the given protocol version.
func encode(t testing.TB, version byte, pks ...packets.Packet) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, pk := range pks {
		pk.ProtocolVersion = version
		var err error
		switch pk.FixedHeader.Type {
		case packets.Connect:
			err = pk.ConnectEncode(&buf)
		case packets.Publish:
			err = pk.PublishEncode(&buf)
		case packets.Subscribe:
			err = pk.SubscribeEncode(&buf)
		case packets.Pingreq:
			err = pk.PingreqEncode(&buf)
		case packets.Puback:
			err = pk.PubackEncode(&buf)
		case packets.Pubrel:
			err = pk.PubrelEncode(&buf)
		case packets.Pubrec:
			err = pk.PubrecEncode(&buf)
		case packets.Pubcomp:
			err = pk.PubcompEncode(&buf)
		case packets.Disconnect:
			err = pk.DisconnectEncode(&buf)
		default:
			t.Fatalf("encode: cannot encode packet type %d", pk.FixedHeader.Type)
		}
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
	}
	return buf.Bytes()
}

func (rc *rawClient) write(b []byte) {
	rc.t.Helper()
	_ = rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// read returns the next packet from the broker, or an error (io.EOF when
// the broker closed the connection) within limit.
func (rc *rawClient) read(limit time.Duration) (packets.Packet, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(limit))
	var pk packets.Packet
	b, err := rc.r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(rc.r)
	if err != nil {
		return pk, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rc.r, body); err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	pk.ProtocolVersion = rc.version
	if err := decodeBody(&pk, body); err != nil {
		return pk, err
	}
	// mochi's decoder reads a DISCONNECT's reason code only when properties
	// follow it.
	if pk.FixedHeader.Type == packets.Disconnect && n == 1 {
		pk.ReasonCode = body[0]
	}
	return pk, nil
}

// expect reads the next packet and fails unless it has the given type.
func (rc *rawClient) expect(typ byte) packets.Packet {
	rc.t.Helper()
	pk, err := rc.read(20 * time.Second)
	if err != nil {
		rc.t.Fatalf("waiting for packet type %d: %v", typ, err)
	}
	if pk.FixedHeader.Type != typ {
		rc.t.Fatalf("got packet type %d (reason %#x), want %d", pk.FixedHeader.Type, pk.ReasonCode, typ)
	}
	return pk
}

// connect sends CONNECT and waits for a successful CONNACK.
func (rc *rawClient) connect(version byte, id string, clean bool, extra func(*packets.Packet)) packets.Packet {
	rc.t.Helper()
	rc.version = version
	name := "MQTT"
	if version == 3 {
		name = "MQIsdp"
	}
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{
			ProtocolName: []byte(name), ClientIdentifier: id, Clean: clean, Keepalive: 30,
		},
	}
	if extra != nil {
		extra(&pk)
	}
	rc.send(pk)
	ack := rc.expect(packets.Connack)
	if ack.ReasonCode != 0 {
		rc.t.Fatalf("CONNACK reason %#x", ack.ReasonCode)
	}
	return ack
}

func (rc *rawClient) subscribe(filter string, qos byte) {
	rc.t.Helper()
	rc.send(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1},
		PacketID:    1,
		Filters:     packets.Subscriptions{{Filter: filter, Qos: qos}},
	})
	ack := rc.expect(packets.Suback)
	if len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] > 2 {
		rc.t.Fatalf("SUBACK %v", ack.ReasonCodes)
	}
}

func (rc *rawClient) publish(topic string, payload []byte, qos byte, id uint16) {
	rc.t.Helper()
	rc.send(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
		TopicName:   topic, Payload: payload, PacketID: id,
	})
}

func (rc *rawClient) puback(id uint16) {
	rc.t.Helper()
	rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id})
}

package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/telemetry"
)

func hostPort(t testing.TB, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func TestMosquittoClientsRoundTripEveryVersionAndQoS(t *testing.T) {
	_, addr := startBroker(t, loopbackCfg(), "")
	h, p := hostPort(t, addr)
	for _, v := range []string{"mqttv31", "mqttv311", "mqttv5"} {
		for _, q := range []string{"0", "1", "2"} {
			t.Run(fmt.Sprintf("%s publishes and subscribes at qos %s", v, q), func(t *testing.T) {
				topic := "rt/" + v + "/" + q
				sub := testpeer.StartMosquittoSub(t, "-h", h, "-p", p, "-V", v, "-q", q, "-t", topic)
				if out, err := testpeer.MosquittoPub(t, "-h", h, "-p", p, "-V", v, "-q", q, "-t", topic, "-m", "hello "+v); err != nil {
					t.Fatalf("mosquitto_pub: %v: %s", err, out)
				}
				if got, want := sub.Next(t, 5*time.Second), topic+" hello "+v; got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			})
		}
	}
}

func pahoClient(t testing.TB, url, id string, opt func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second)
	if opt != nil {
		opt(o)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func waitToken(t testing.TB, tok paho.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(20 * time.Second) {
		t.Fatalf("%s: no answer within 5s", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestPahoRoundTripsAtEveryQoS(t *testing.T) {
	_, addr := startBroker(t, loopbackCfg(), "")
	for _, pv := range []uint{3, 4} {
		for q := byte(0); q <= 2; q++ {
			t.Run(fmt.Sprintf("protocol %d at qos %d", pv, q), func(t *testing.T) {
				set := func(o *paho.ClientOptions) { o.SetProtocolVersion(pv) }
				sub := pahoClient(t, "tcp://"+addr, fmt.Sprintf("sub-%d-%d", pv, q), set)
				pub := pahoClient(t, "tcp://"+addr, fmt.Sprintf("pub-%d-%d", pv, q), set)
				got := make(chan string, 1)
				topic := fmt.Sprintf("paho/%d/%d", pv, q)
				waitToken(t, sub.Subscribe(topic, q, func(_ paho.Client, m paho.Message) {
					got <- fmt.Sprintf("%s %s q%d", m.Topic(), m.Payload(), m.Qos())
				}), "subscribe")
				waitToken(t, pub.Publish(topic, q, false, "x"), "publish")
				select {
				case m := <-got:
					if want := fmt.Sprintf("%s x q%d", topic, q); m != want {
						t.Fatalf("got %q, want %q", m, want)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("no message within 20s")
				}
			})
		}
	}
}

func TestRetainedMessageReachesLaterSubscribers(t *testing.T) {
	_, addr := startBroker(t, loopbackCfg(), "")
	h, p := hostPort(t, addr)
	if out, err := testpeer.MosquittoPub(t, "-h", h, "-p", p, "-q", "1", "-r", "-t", "site/status", "-m", "online"); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	for _, v := range []string{"mqttv311", "mqttv5"} {
		sub := testpeer.StartMosquittoSub(t, "-h", h, "-p", p, "-V", v, "-t", "site/#")
		if got := sub.Next(t, 5*time.Second); got != "site/status online" {
			t.Fatalf("%s got %q", v, got)
		}
	}
}

func TestWillIsPublishedWhenAClientVanishes(t *testing.T) {
	_, addr := startBroker(t, loopbackCfg(), "")
	h, p := hostPort(t, addr)
	for _, v := range []byte{4, 5} {
		t.Run(fmt.Sprintf("protocol %d", v), func(t *testing.T) {
			topic := fmt.Sprintf("will/%d", v)
			sub := testpeer.StartMosquittoSub(t, "-h", h, "-p", p, "-t", topic)
			rc := dialRaw(t, addr)
			rc.connect(v, "dying", true, func(pk *packets.Packet) {
				pk.Connect.WillFlag = true
				pk.Connect.WillTopic = topic
				pk.Connect.WillPayload = []byte("gone")
				pk.Connect.WillQos = 1
			})
			rc.c.Close() // no DISCONNECT: an abrupt end
			if got := sub.Next(t, 5*time.Second); got != topic+" gone" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestAnInProcessSubscriberLearnsWhichMessagesAreRetained(t *testing.T) {
	b, _ := startBroker(t, loopbackCfg(), "")
	if err := b.Publish("rt/old", []byte("stored"), 1, true); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	unsub, err := b.Subscribe("rt/#", func(topic string, payload []byte, retained bool) {
		got <- fmt.Sprintf("%s %s retained=%v", topic, payload, retained)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	for _, p := range []struct {
		topic  string
		retain bool
	}{{"rt/live", true}, {"rt/plain", false}} {
		if err := b.Publish(p.topic, []byte("now"), 1, p.retain); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"rt/old stored retained=true", "rt/live now retained=false", "rt/plain now retained=false"}
	for _, w := range want {
		select {
		case m := <-got:
			if m != w {
				t.Errorf("got %q, want %q", m, w)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no message; want %q", w)
		}
	}
}

func TestInProcessPublishAndSubscribeMeetNetworkClients(t *testing.T) {
	b, addr := startBroker(t, loopbackCfg(), "")
	h, p := hostPort(t, addr)

	got := make(chan string, 10)
	unsub, err := b.Subscribe("in/#", func(topic string, payload []byte, _ bool) { got <- topic + " " + string(payload) })
	if err != nil {
		t.Fatal(err)
	}
	if out, err := testpeer.MosquittoPub(t, "-h", h, "-p", p, "-q", "1", "-t", "in/a", "-m", "from network"); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	select {
	case m := <-got:
		if m != "in/a from network" {
			t.Fatalf("inline subscriber got %q", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("inline subscriber got nothing")
	}

	sub := testpeer.StartMosquittoSub(t, "-h", h, "-p", p, "-q", "1", "-t", "out/#")
	if err := b.Publish("out/b", []byte("from process"), 1, false); err != nil {
		t.Fatal(err)
	}
	if m := sub.Next(t, 5*time.Second); m != "out/b from process" {
		t.Fatalf("network subscriber got %q", m)
	}

	unsub()
	if err := b.Publish("in/a", []byte("after unsubscribe"), 0, false); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		t.Fatalf("unsubscribed handler still got %q", m)
	default:
	}

	for _, bad := range []string{"", "a/+", "a/#"} {
		if err := b.Publish(bad, nil, 0, false); err == nil {
			t.Errorf("Publish(%q) succeeded", bad)
		}
	}
}

func TestNewRefusesListenersWhoseFilesWereNotLoaded(t *testing.T) {
	cfg := config.DefaultBroker(config.Broker{Listeners: []config.Listener{{Type: "tls", Address: "127.0.0.1:0", CertFile: "x.pem", KeyFile: "x.key", UsersFile: "users"}}})
	_, err := New(cfg, t.TempDir(), testLog(t))
	if want := "broker.listener[0]: cert_file, users_file not loaded (a config from config.Load has them)"; err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// TestNewRefusesUnsetLimits: a config built in code without config's
// defaults is refused, not run with zero limits.
func TestNewRefusesUnsetLimits(t *testing.T) {
	if _, err := New(config.Broker{}, t.TempDir(), testLog(t)); err == nil || !strings.Contains(err.Error(), "limits not set") {
		t.Fatalf("err = %v", err)
	}
}

func TestNoListenersOpensNoSocketAndAppliesDefaults(t *testing.T) {
	b, err := New(config.DefaultBroker(config.Broker{}), t.TempDir(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.lns) != 0 {
		t.Fatalf("%d listeners, want none", len(b.lns))
	}
	if b.cfg.MaxPacketSize != 1<<20 || b.cfg.MaxClients != 1000 || b.cfg.MaxInflight != 64 || b.cfg.MaxQueued != 1000 ||
		b.cfg.SessionExpiry.Duration != 168*time.Hour || b.cfg.MessageExpiry.Duration != 168*time.Hour {
		t.Fatalf("defaults not applied: %+v", b.cfg)
	}
	stop := runBroker(t, b)
	defer stop()
	if got := b.Addrs(); len(got) != 0 {
		t.Fatalf("Addrs = %v, want none", got)
	}
	got := make(chan string, 1)
	unsub, err := b.Subscribe("in/#", func(topic string, _ []byte, _ bool) { got <- topic })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := b.Publish("in/process", []byte("x"), 0, false); err != nil {
		t.Fatal(err)
	}
	select {
	case topic := <-got:
		if topic != "in/process" {
			t.Fatalf("got %q", topic)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("an in-process publish did not arrive")
	}
}

func TestRunFailsWhenTheAddressIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := config.DefaultBroker(config.Broker{Listeners: []config.Listener{{Address: ln.Addr().String()}}})
	b, err := New(cfg, t.TempDir(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = b.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "broker.listener[0]: tcp "+ln.Addr().String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunStopsPromptlyWithClientsConnected(t *testing.T) {
	b, err := New(loopbackCfg(), t.TempDir(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	<-b.Ready()
	addr := b.Addrs()[0].String()
	rc := dialRaw(t, addr)
	rc.connect(4, "stuck", true, nil)
	rc.subscribe("#", 1)
	// This client never reads again while the broker publishes at it.
	for i := range 200 {
		_ = b.Publish("flood", make([]byte, 4096), 1, false)
		_ = i
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepting after Run returned")
	}
}

// refuse is an interceptor that refuses every message with err and records
// what it saw.
type refuse struct {
	mu   sync.Mutex
	seen []string
	err  error
}

func (r *refuse) fn(m telemetry.Message, from telemetry.Origin) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, from.Client+"/"+from.Part+" "+m.Topic)
	return r.err
}

func TestInterceptorRefusals(t *testing.T) {
	b, addr := startBroker(t, loopbackCfg(), "")
	delivered := make(chan string, 100)
	if _, err := b.Subscribe("ic/#", func(topic string, _ []byte, _ bool) { delivered <- topic }); err != nil {
		t.Fatal(err)
	}
	r := &refuse{err: ErrQuotaExceeded}
	b.SetInterceptor(r.fn)

	t.Run("an MQTT 5 publisher gets PUBACK 0x97 for quota", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.connect(5, "v5pub", true, nil)
		rc.publish("ic/a", []byte("x"), 1, 7)
		ack := rc.expect(packets.Puback)
		if ack.PacketID != 7 || ack.ReasonCode != 0x97 {
			t.Fatalf("PUBACK id %d reason %#x, want id 7 reason 0x97", ack.PacketID, ack.ReasonCode)
		}
	})
	t.Run("an MQTT 5 publisher gets PUBACK 0x80 for other errors", func(t *testing.T) {
		r.mu.Lock()
		r.err = errors.New("disk on fire")
		r.mu.Unlock()
		defer func() { r.mu.Lock(); r.err = ErrQuotaExceeded; r.mu.Unlock() }()
		rc := dialRaw(t, addr)
		rc.connect(5, "v5pub2", true, nil)
		rc.publish("ic/b", []byte("x"), 1, 9)
		if ack := rc.expect(packets.Puback); ack.ReasonCode != 0x80 {
			t.Fatalf("reason %#x, want 0x80", ack.ReasonCode)
		}
	})
	t.Run("an MQTT 5 QoS 2 publisher gets PUBREC 0x97", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.connect(5, "v5pub3", true, nil)
		rc.publish("ic/c", []byte("x"), 2, 11)
		if ack := rc.expect(packets.Pubrec); ack.ReasonCode != 0x97 {
			t.Fatalf("reason %#x, want 0x97", ack.ReasonCode)
		}
	})
	t.Run("an MQTT 3.1.1 publisher is disconnected without an ack", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.connect(4, "v3pub", true, nil)
		rc.publish("ic/d", []byte("x"), 1, 5)
		pk, err := rc.read(20 * time.Second)
		if err == nil {
			t.Fatalf("got packet type %d (reason %#x), want the connection closed", pk.FixedHeader.Type, pk.ReasonCode)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection still open after a refused publish")
		}
	})
	t.Run("an in-process publish returns the error", func(t *testing.T) {
		if err := b.Publish("ic/e", []byte("x"), 1, false); !errors.Is(err, ErrQuotaExceeded) {
			t.Fatalf("Publish: %v", err)
		}
	})
	t.Run("an in-process publish by a named part is seen with its name", func(t *testing.T) {
		if err := b.PublishAs("uplink", "ic/f", []byte("x"), 1, false); !errors.Is(err, ErrQuotaExceeded) {
			t.Fatalf("PublishAs: %v", err)
		}
	})

	select {
	case topic := <-delivered:
		t.Fatalf("refused message on %s was delivered", topic)
	default:
	}
	if got := b.Stats().Refused; got != 6 {
		t.Errorf("Stats.Refused = %d, want 6", got)
	}
	r.mu.Lock()
	want := []string{"v5pub/ ic/a", "v5pub2/ ic/b", "v5pub3/ ic/c", "v3pub/ ic/d", "/ ic/e", "/uplink ic/f"}
	if fmt.Sprint(r.seen) != fmt.Sprint(want) {
		t.Errorf("interceptor saw %q, want %q", r.seen, want)
	}
	r.mu.Unlock()

	t.Run("accepted messages are delivered once the interceptor allows them", func(t *testing.T) {
		b.SetInterceptor(func(telemetry.Message, telemetry.Origin) error { return nil })
		rc := dialRaw(t, addr)
		rc.connect(5, "v5ok", true, nil)
		rc.publish("ic/ok", []byte("x"), 1, 3)
		if ack := rc.expect(packets.Puback); ack.ReasonCode != 0 {
			t.Fatalf("reason %#x", ack.ReasonCode)
		}
		select {
		case topic := <-delivered:
			if topic != "ic/ok" {
				t.Fatalf("delivered %s", topic)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("accepted message not delivered")
		}
	})
}

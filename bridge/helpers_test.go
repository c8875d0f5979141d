package bridge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/telemetry"
)

// nopBuffer and nopLocal satisfy New in tests that never run the bridge.
type nopBuffer struct{}

func (nopBuffer) Append(context.Context, telemetry.Message) error { return nil }
func (nopBuffer) AppendAll(_ context.Context, ms []telemetry.Message) []error {
	return make([]error, len(ms))
}
func (nopBuffer) Read(int64, int) ([]buffer.Entry, error) { return nil, nil }
func (nopBuffer) Ack(...int64) error                      { return nil }
func (nopBuffer) Notify() <-chan struct{}                 { return nil }
func (nopBuffer) Stats() buffer.Stats                     { return buffer.Stats{} }
func (nopBuffer) DeadLetter(int64, string) error          { return nil }
func (nopBuffer) DeadLetters() (int64, error)             { return 0, nil }

type nopLocal struct{}

func (nopLocal) PublishAs(string, string, []byte, byte, bool) error { return nil }

// testLocal is a tiny in-process local broker with the contract of
// broker.Broker: Publish (an adapter's) and PublishAs (a named part's) run
// the interceptor synchronously, with the publisher's origin, before
// delivering to subscribers. The interceptor gets a copy of the payload:
// nothing may depend on the publisher's slice.
type testLocal struct {
	mu        sync.Mutex
	intercept func(m telemetry.Message, from telemetry.Origin) error
	subs      []localSub
	retained  map[string][]byte
}

type localSub struct {
	filter telemetry.Filter
	fn     func(topic string, payload []byte)
}

func (l *testLocal) Publish(topic string, payload []byte, qos byte, retain bool) error {
	return l.PublishAs("", topic, payload, qos, retain)
}

func (l *testLocal) PublishAs(part, topic string, payload []byte, qos byte, retain bool) error {
	l.mu.Lock()
	fn := l.intercept
	l.mu.Unlock()
	if fn != nil {
		m := telemetry.Message{Topic: topic, Payload: append([]byte(nil), payload...), QoS: qos, Retain: retain}
		if err := fn(m, telemetry.Origin{Part: part}); err != nil {
			return err
		}
	}
	l.mu.Lock()
	subs := append([]localSub(nil), l.subs...)
	if retain {
		if l.retained == nil {
			l.retained = map[string][]byte{}
		}
		l.retained[topic] = append([]byte(nil), payload...)
	}
	l.mu.Unlock()
	for _, s := range subs {
		if s.filter.Match(topic) {
			s.fn(topic, payload)
		}
	}
	return nil
}

// PublishFrom is a publish by a network client of the local broker.
func (l *testLocal) PublishFrom(client, topic string, payload []byte, qos byte) error {
	l.mu.Lock()
	fn := l.intercept
	l.mu.Unlock()
	return fn(telemetry.Message{Topic: topic, Payload: payload, QoS: qos}, telemetry.Origin{Client: client})
}

func (l *testLocal) Subscribe(filter string, fn func(topic string, payload []byte)) {
	f, err := telemetry.ParseFilter(filter)
	if err != nil {
		panic(err) // a broken test
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs = append(l.subs, localSub{f, fn})
}

func (l *testLocal) Retained(topic string) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.retained[topic]
}

// logBuf collects log lines for assertions and copies them to the test output.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.out.Write(p)
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuf) Count(s string) int { return strings.Count(b.String(), s) }

func testLogger(t testing.TB) (*slog.Logger, *logBuf) {
	lb := &logBuf{out: t.Output()}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func openBuffer(t testing.TB, o buffer.Options) *buffer.Buffer {
	t.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "buffer.db")
	}
	b, err := buffer.Open(o)
	if err != nil {
		t.Fatalf("buffer.Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// upstream is a mosquitto playing the cloud broker: a TLS listener for the
// bridge and a plain one for the test's own subscriber and publisher.
type upstream struct {
	m        *testpeer.Mosquitto
	ca       *testpeer.CA
	tlsAddr  string
	plain    string
	mutual   bool
	clientCP testpeer.CertPair
}

// startUpstream starts mosquitto with a TLS listener (client certificates
// required when mutual) and a plain listener.
func startUpstream(t testing.TB, mutual bool) *upstream {
	t.Helper()
	ca := testpeer.NewCA(t, "upstream")
	srv := ca.Server(t, "upstream-server")
	u := &upstream{ca: ca, mutual: mutual}
	conf := fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\n", ca.File, srv.CertFile, srv.KeyFile)
	if mutual {
		conf += "require_certificate true\n"
		u.clientCP = ca.Client(t, "edged-client")
	}
	// Nothing may be dropped or held back at the upstream: what the test
	// counts is what the bridge delivered.
	conf += "max_queued_messages 0\nmax_inflight_messages 0\n" + asRoot()
	u.m = testpeer.StartMosquittoPorts(t, 1, func(plain []string) string {
		u.plain = plain[0]
		return conf + fmt.Sprintf("listener %d 127.0.0.1\n", testpeer.Port(t, u.plain))
	})
	u.tlsAddr = u.m.Addr
	return u
}

// asRoot keeps mosquitto from dropping to the mosquitto user when the
// tests run as root: it could not read the certificates in the test's
// private temporary directory.
func asRoot() string {
	if os.Geteuid() == 0 {
		return "user root\n"
	}
	return ""
}

// collector is a paho subscriber on the upstream counting what arrives.
type collector struct {
	mu   sync.Mutex
	msgs []mqttMessage
	at   []time.Time                    // arrival of each message
	uniq map[string]map[string]struct{} // topic -> distinct payloads
	c    mqtt.Client
	kick chan struct{}
}

func collect(t testing.TB, addr, filter string) *collector {
	t.Helper()
	return collectQoS(t, addr, filter, 1)
}

// collectQoS subscribes at the given QoS. Its reads are buffered (through
// batchConn), so that with QoS 0 the collector costs the benchmark little.
func collectQoS(t testing.TB, addr, filter string, qos byte) *collector {
	t.Helper()
	col := &collector{kick: make(chan struct{}, 1), uniq: map[string]map[string]struct{}{}}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("collector-%d", time.Now().UnixNano())).
		SetAutoReconnect(false).SetOrderMatters(true).SetCleanSession(true).
		SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return newBatchConn(c, 10*time.Second), nil
		})
	col.c = mqtt.NewClient(o)
	if tok := col.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector connect: %v", tok.Error())
	}
	tok := col.c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) {
		col.mu.Lock()
		col.msgs = append(col.msgs, m)
		col.at = append(col.at, time.Now())
		if col.uniq[m.Topic()] == nil {
			col.uniq[m.Topic()] = map[string]struct{}{}
		}
		col.uniq[m.Topic()][string(m.Payload())] = struct{}{}
		col.mu.Unlock()
		select {
		case col.kick <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { col.c.Disconnect(0) })
	return col
}

// arrivals returns the arrival times of the messages matching topic prefix.
func (c *collector) arrivals(prefix string) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for i, m := range c.msgs {
		if strings.HasPrefix(m.Topic(), prefix) {
			out = append(out, c.at[i])
		}
	}
	return out
}

// distinct is the number of different payloads that arrived on topic.
func (c *collector) distinct(topic string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.uniq[topic])
}

func (c *collector) all() []mqttMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]mqttMessage(nil), c.msgs...)
}

// waitFor waits until cond holds for what has arrived, or fails after limit.
func (c *collector) waitFor(t testing.TB, limit time.Duration, what string, cond func([]mqttMessage) bool) []mqttMessage {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		got := c.all()
		if cond(got) {
			return got
		}
		select {
		case <-c.kick:
		case <-deadline.C:
			t.Fatalf("upstream: %s not seen within %v (%d messages arrived)", what, limit, len(got))
		}
	}
}

// tally reads sequence-numbered payloads: the distinct numbers seen, the
// duplicates, and whether first arrivals came in increasing order.
type tally struct {
	unique, dups    int
	inOrder         bool
	firstOutOfOrder string
}

func count(msgs []mqttMessage, topic string) tally {
	seen := map[int]bool{}
	tl := tally{inOrder: true}
	last := -1
	for _, m := range msgs {
		if topic != "" && m.Topic() != topic {
			continue
		}
		n, err := strconv.Atoi(string(m.Payload()))
		if err != nil {
			continue
		}
		if seen[n] {
			tl.dups++
			continue
		}
		seen[n] = true
		tl.unique++
		if n < last && tl.inOrder {
			tl.inOrder = false
			tl.firstOutOfOrder = fmt.Sprintf("%d after %d", n, last)
		}
		last = max(last, n)
	}
	return tl
}

// runBridge runs br until the test ends (or the returned stop is called).
func runBridge(t testing.TB, br *Bridge) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("Run did not return within 20s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// uplinkCfg is an uplink config to u over TLS that forwards gw/# under
// sites/a/ and brings sites/a/gw/+/+/set down.
func uplinkCfg(u *upstream, addr string) config.Uplink {
	c := config.Uplink{
		URL:        "mqtts://" + addr,
		ClientID:   "edged-gw",
		CAFile:     u.ca.File,
		MaxBackoff: config.Duration{Duration: time.Second},
		Forward:    []config.Forward{{Local: "gw/#", RemotePrefix: "sites/a/"}},
		Downlink:   []config.Downlink{{Remote: "sites/a/gw/+/+/set", StripPrefix: "sites/a/"}},
	}
	if u.mutual {
		c.CertFile, c.KeyFile = u.clientCP.CertFile, u.clientCP.KeyFile
	}
	return c
}

// newBridge builds a bridge on a fresh real buffer and test local side,
// with the interceptor installed.
func newBridge(t testing.TB, cfg config.Uplink, bo buffer.Options) (*Bridge, *testLocal, *buffer.Buffer, *logBuf) {
	t.Helper()
	log, lb := testLogger(t)
	bo.Log = log.With("component", "buffer")
	buf := openBuffer(t, bo)
	local := &testLocal{}
	br, err := testNew(cfg, buf, "gw", local, log.With("component", "bridge"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	local.intercept = br.Intercept
	return br, local, buf, lb
}

// settle waits until in-process messages published so far have reached the
// buffer (they do not wait for it themselves). No publish may run meanwhile.
func settle(br *Bridge) { br.inproc.wg.Wait() }

func connected(br *Bridge) func() bool { return func() bool { return br.Stats().Connected } }

// mqttMessage is paho's received message.
type mqttMessage = mqtt.Message

// testNew is New for a config built in the test: config's defaults fill
// the keys it leaves out, as config.Load does for a file.
func testNew(cfg config.Uplink, buf Buffer, gateway string, local Local, log *slog.Logger) (*Bridge, error) {
	return New(config.DefaultUplink(cfg, gateway), buf, gateway, local, log)
}

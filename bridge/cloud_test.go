package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// clock is the bridge's clock in these tests: the real time shifted by an
// offset the test changes.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time      { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) set(d time.Duration) { c.off.Store(int64(d)) }

func writeKey(t *testing.T, key string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "device.key")
	if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type cloudCase struct {
	name    string
	cfg     config.Uplink
	verify  testpeer.CloudVerifier
	expires bool // the token has an expiry the cloud checks
	post    string
	set     string
}

func cloudCases(t *testing.T) []cloudCase {
	const b64 = "c2VjcmV0LWRldmljZS1rZXktZm9yLXRlc3RzLW9ubHk="
	return []cloudCase{
		{
			name: "onenet",
			cfg: config.Uplink{Cloud: "onenet", ProductID: "Pq1x", DeviceName: "gw1", DeviceKeyFile: writeKey(t, b64),
				Forward: []config.Forward{{Local: "gw/#", Format: "onenet"}}, Downlink: []config.Downlink{{Format: "onenet", LocalPrefix: "gw/meter1/"}}},
			verify:  testpeer.VerifyOneNET("Pq1x", "gw1", b64, time.Now),
			expires: true,
			post:    "$sys/Pq1x/gw1/thing/property/post",
			set:     "$sys/Pq1x/gw1/thing/property/set",
		},
		{
			name: "aliyun",
			cfg: config.Uplink{Cloud: "aliyun", ProductKey: "a1Bc", DeviceName: "gw1", DeviceKeyFile: writeKey(t, "d3v1ceS3cret"),
				Forward: []config.Forward{{Local: "gw/#", Format: "aliyun"}}, Downlink: []config.Downlink{{Format: "aliyun", LocalPrefix: "gw/meter1/"}}},
			verify: testpeer.VerifyAliyun("a1Bc", "gw1", "d3v1ceS3cret"),
			post:   "/sys/a1Bc/gw1/thing/event/property/post",
			set:    "/sys/a1Bc/gw1/thing/service/property/set",
		},
		{
			name: "azure",
			cfg: config.Uplink{Cloud: "azure", Hub: "myhub", DeviceName: "gw1", DeviceKeyFile: writeKey(t, b64),
				Forward: []config.Forward{{Local: "gw/#", Format: "azure"}}},
			verify:  testpeer.VerifyAzure("myhub.azure-devices.net", "gw1", b64, time.Now),
			expires: true,
		},
	}
}

// TestEachCloudAcceptsEdgedsLogin runs the bridge against a broker that
// checks each cloud's published login rule. The bridge's clock starts two
// hours behind, so its first token has expired and is refused; the clock is
// then put right and the next attempt logs in with a fresh token. A token
// that expires is renewed by reconnecting before it does. A reading arrives
// as the cloud's property post; a property-set message becomes a local /set
// and is answered on the reply topic with code 200.
func TestEachCloudAcceptsEdgedsLogin(t *testing.T) {
	for _, c := range cloudCases(t) {
		t.Run(c.name, func(t *testing.T) {
			cloud := testpeer.StartCloudBroker(t, c.verify, nil)
			cfg := c.cfg
			cfg.URL = "mqtt://" + cloud.Addr
			cfg.MaxBackoff = config.Duration{Duration: 600 * time.Millisecond}
			cfg.TokenLifetime = config.Duration{Duration: 4 * time.Second}
			br, local, _, lb := newBridge(t, cfg, buffer.Options{})
			var clk clock
			br.cloud.now = clk.now
			if c.expires {
				clk.set(-2 * time.Hour)
			}
			var mu sync.Mutex
			var writes []string
			local.Subscribe("gw/#", func(topic string, payload []byte) {
				if strings.HasSuffix(topic, "/set") {
					mu.Lock()
					writes = append(writes, topic+" "+string(payload))
					mu.Unlock()
				}
			})
			runBridge(t, br)

			accepted := func(cs []testpeer.CloudConnect) int {
				n := 0
				for _, x := range cs {
					if x.Refused == "" {
						n++
					}
				}
				return n
			}
			if c.expires {
				cloud.WaitFor(t, 15*time.Second, "an expired token refused", func(cs []testpeer.CloudConnect, _ []testpeer.CloudMessage) bool {
					return len(cs) > 0 && cs[0].Refused == "token expired"
				})
				clk.set(0)
			}
			cloud.WaitFor(t, 15*time.Second, "a login accepted", func(cs []testpeer.CloudConnect, _ []testpeer.CloudMessage) bool { return accepted(cs) > 0 })
			testpeer.Eventually(t, 10*time.Second, "the bridge connected", connected(br))
			if c.expires {
				// Lifetime 4 s: renewed about 0.4 s before expiry, with a new token.
				cloud.WaitFor(t, 15*time.Second, "a renewed login", func(cs []testpeer.CloudConnect, _ []testpeer.CloudMessage) bool { return accepted(cs) >= 2 })
				var pw []string
				for _, x := range cloud.Connects() {
					if x.Refused == "" {
						pw = append(pw, x.Password)
					}
				}
				if pw[0] == pw[1] {
					t.Errorf("the renewed login used the same token")
				}
				if n := len(cloud.Connects()) - accepted(cloud.Connects()); n != 1 {
					t.Errorf("%d refused logins, want only the expired one: %+v", n, cloud.Connects())
				}
			}
			status := string(local.Retained("gw/edged/uplink"))
			if status == "" {
				t.Errorf("no uplink status published")
			}
			key, _ := os.ReadFile(cfg.DeviceKeyFile)
			for _, secret := range append([]string{strings.TrimSpace(string(key))}, passwords(cloud)...) {
				if strings.Contains(lb.String(), secret) || strings.Contains(status, secret) {
					t.Errorf("a key or token was logged or put in the status topic")
				}
			}
			if br.Stats().DeadLetters != 0 {
				t.Errorf("renewal set messages aside")
			}
			if c.name == "azure" {
				if err := local.Publish("gw/meter1/voltage", []byte(`{"value":230.5}`), 1, false); err != nil {
					t.Fatal(err)
				}
				m := cloud.Message(t, 15*time.Second, "devices/gw1/messages/events/topic=gw%2Fmeter1%2Fvoltage")
				if string(m.Payload) != `{"value":230.5}` {
					t.Errorf("payload %s", m.Payload)
				}
				return
			}

			if err := local.Publish("gw/meter1/voltage", []byte(`{"value":230.5,"unit":"V","ts":"2026-11-30T10:00:00.123Z"}`), 1, false); err != nil {
				t.Fatal(err)
			}
			m := cloud.Message(t, 15*time.Second, c.post)
			var post struct {
				ID      string `json:"id"`
				Version string `json:"version"`
				Method  string `json:"method"`
				Params  map[string]struct {
					Value float64 `json:"value"`
					Time  int64   `json:"time"`
				} `json:"params"`
			}
			if err := json.Unmarshal(m.Payload, &post); err != nil {
				t.Fatalf("post %s: %v", m.Payload, err)
			}
			p, ok := post.Params["voltage"]
			if post.ID == "" || post.Version != "1.0" || !ok || p.Value != 230.5 || p.Time != 1796032800123 {
				t.Errorf("post = %s", m.Payload)
			}
			if c.name == "aliyun" && post.Method != "thing.event.property.post" {
				t.Errorf("aliyun post without its method: %s", m.Payload)
			}

			if err := cloud.Publish(c.set, []byte(`{"id":"7","version":"1.0","params":{"relay":true,"setpoint":21.5}}`)); err != nil {
				t.Fatal(err)
			}
			r := cloud.Message(t, 15*time.Second, c.set+"_reply")
			var reply struct {
				ID   string `json:"id"`
				Code int    `json:"code"`
			}
			if err := json.Unmarshal(r.Payload, &reply); err != nil || reply.ID != "7" || reply.Code != 200 {
				t.Errorf("reply %s", r.Payload)
			}
			mu.Lock()
			got := strings.Join(writes, ", ")
			mu.Unlock()
			if !strings.Contains(got, "gw/meter1/relay/set true") || !strings.Contains(got, "gw/meter1/setpoint/set 21.5") {
				t.Errorf("local writes: %s", got)
			}
		})
	}
}

func serverTLS(t *testing.T, ca *testpeer.CA) *tls.Config {
	t.Helper()
	sp := ca.Server(t, "cloud")
	pair, err := tls.LoadX509KeyPair(sp.CertFile, sp.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
}

// TestAWSLogsInWithItsCertificateAndTheThingName: AWS IoT Core takes mutual
// TLS, and the client id is the thing name.
func TestAWSLogsInWithItsCertificateAndTheThingName(t *testing.T) {
	ca := testpeer.NewCA(t, "aws")
	cloud := testpeer.StartCloudBroker(t, func(id, user, pass string) error {
		if id != "thing-1" {
			return fmt.Errorf("client id %q is not the thing name", id)
		}
		return nil
	}, serverTLS(t, ca))
	cp := ca.Client(t, "thing-1")
	cfg := config.Uplink{Cloud: "aws", DeviceName: "thing-1", URL: "mqtts://" + cloud.Addr, CAFile: ca.File,
		CertFile: cp.CertFile, KeyFile: cp.KeyFile, MaxBackoff: config.Duration{Duration: 600 * time.Millisecond},
		Forward: []config.Forward{{Local: "gw/#", RemotePrefix: "dt/"}}}
	br, local, _, _ := newBridge(t, cfg, buffer.Options{})
	runBridge(t, br)
	testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
	if err := local.Publish("gw/meter1/voltage", []byte("230.5"), 1, false); err != nil {
		t.Fatal(err)
	}
	if m := cloud.Message(t, 15*time.Second, "dt/gw/meter1/voltage"); string(m.Payload) != "230.5" {
		t.Errorf("payload %q", m.Payload)
	}
	if cs := cloud.Connects(); cs[0].Refused != "" {
		t.Errorf("first connect refused: %s", cs[0].Refused)
	}
}

// TestAWSOnPort443NegotiatesALPN: on port 443, AWS IoT Core serves MQTT
// with a client certificate only to a client that offers ALPN
// x-amzn-mqtt-ca. The TLS configuration the bridge builds for such a url
// completes a handshake with a listener that insists on it (port 443 itself
// needs privileges, so the listener is on a random port); for port 8883 it
// offers no ALPN.
func TestAWSOnPort443NegotiatesALPN(t *testing.T) {
	ca := testpeer.NewCA(t, "aws")
	sc := serverTLS(t, ca)
	sc.NextProtos = []string{"x-amzn-mqtt-ca"}
	sc.VerifyConnection = func(cs tls.ConnectionState) error {
		if cs.NegotiatedProtocol != "x-amzn-mqtt-ca" {
			return fmt.Errorf("ALPN %q, want x-amzn-mqtt-ca", cs.NegotiatedProtocol)
		}
		return nil
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	handshakes := make(chan error, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handshakes <- c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	cp := ca.Client(t, "thing-1")
	for _, c := range []struct {
		url  string
		alpn bool
	}{{"mqtts://abc-ats.iot.eu-west-1.amazonaws.com:443", true}, {"mqtts://abc-ats.iot.eu-west-1.amazonaws.com:8883", false}} {
		cfg := config.Uplink{Cloud: "aws", DeviceName: "thing-1", URL: c.url, CAFile: ca.File, CertFile: cp.CertFile, KeyFile: cp.KeyFile}
		br, _, _, _ := newBridge(t, cfg, buffer.Options{})
		tc, err := tlsConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		br.tuneTLS(tc, br.servers[0])
		tc.ServerName = "127.0.0.1"
		conn, err := tls.Dial("tcp", ln.Addr().String(), tc)
		if err == nil {
			err = conn.Handshake()
			conn.Close()
		}
		serr := <-handshakes
		if c.alpn && (err != nil || serr != nil) {
			t.Errorf("%s: handshake: client %v, server %v", c.url, err, serr)
		}
		if !c.alpn && serr == nil {
			t.Errorf("%s: the listener that insists on ALPN accepted a client without it", c.url)
		}
	}
}

// TestThePointsOfAPollArePostedTogether: an adapter's readings of one
// device published together arrive as one property post; another device's
// as another; a second value of a point already gathered sends the first
// post at once, so no value is overwritten and each property keeps its order.
func TestThePointsOfAPollArePostedTogether(t *testing.T) {
	c := cloudCases(t)[0] // onenet
	cloud := testpeer.StartCloudBroker(t, c.verify, nil)
	cfg := c.cfg
	cfg.URL = "mqtt://" + cloud.Addr
	br, local, _, _ := newBridge(t, cfg, buffer.Options{})
	runBridge(t, br)
	testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
	for _, r := range []struct{ topic, payload string }{
		{"gw/meter1/voltage", `{"value":230.5,"ts":"2026-11-30T10:00:00Z"}`},
		{"gw/meter1/current", `{"value":1.25,"ts":"2026-11-30T10:00:00Z"}`},
		{"gw/meter2/voltage", `{"value":231,"ts":"2026-11-30T10:00:00Z"}`},
		{"gw/meter1/status", `online`},
		{"gw/meter1/energy", `{"value":12345,"ts":"2026-11-30T10:00:00Z"}`},
		{"gw/meter1/voltage", `{"value":229,"ts":"2026-11-30T10:00:01Z"}`},
	} {
		if err := local.Publish(r.topic, []byte(r.payload), 0, false); err != nil {
			t.Fatal(err)
		}
	}
	var posts []string
	cloud.WaitFor(t, 15*time.Second, "three posts", func(_ []testpeer.CloudConnect, ms []testpeer.CloudMessage) bool {
		posts = posts[:0]
		for _, m := range ms {
			if m.Topic == c.post {
				var p struct {
					Params map[string]struct{ Value float64 } `json:"params"`
				}
				if err := json.Unmarshal(m.Payload, &p); err != nil {
					t.Fatalf("%s: %v", m.Payload, err)
				}
				posts = append(posts, fmt.Sprint(p.Params))
			}
		}
		return len(posts) >= 3
	})
	// Devices' posts may interleave; a device's own keep their order.
	first, second := slices.Index(posts, "map[current:{1.25} energy:{12345} voltage:{230.5}]"), slices.Index(posts, "map[voltage:{229}]")
	if len(posts) != 3 || first < 0 || second < first || !slices.Contains(posts, "map[voltage:{231}]") {
		t.Errorf("posts %v", posts)
	}
}

func passwords(b *testpeer.CloudBroker) []string {
	var out []string
	for _, c := range b.Connects() {
		out = append(out, c.Password)
	}
	return out
}

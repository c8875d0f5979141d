package broker

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/mqttauth"
)

// authServer starts a mochi server with the given hooks and one TCP
// listener per id on a free loopback port; it returns the addresses by id.
// The server is closed when the test ends or by authClose.
func authServer(t *testing.T, hooks []mqtt.Hook, ids ...string) (*mqtt.Server, map[string]string) {
	t.Helper()
	s := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	for _, h := range hooks {
		if err := s.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	addrs := map[string]string{}
	for _, id := range ids {
		addrs[id] = testpeer.FreePort(t)
		if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: id, Address: addrs[id]})); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	// mochi's TCP listener listens in AddListener already, so no probe
	// connection is needed (and a probe that never sends CONNECT trips the
	// race detector on mochi's ClientsWg at Close).
	t.Cleanup(func() { authClose(s) })
	return s, addrs
}

var authClosed sync.Map // *mqtt.Server -> struct{}; mochi's Close is not idempotent

// authClose closes s once.
func authClose(s *mqtt.Server) {
	if _, done := authClosed.LoadOrStore(s, struct{}{}); !done {
		_ = s.Close()
	}
}

// authPaho connects a paho client; user "" connects without credentials.
func authPaho(t *testing.T, addr, id, user, password string, clean bool) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(clean).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).SetProtocolVersion(4)
	if user != "" {
		o.SetUsername(user).SetPassword(password)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("paho connect to %s timed out", addr)
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func TestAuthHookLogins(t *testing.T) {
	pubBin := testpeer.Need(t, "mosquitto_pub", "mosquitto-clients")
	pwPath := filepath.Join(t.TempDir(), "users")
	testpeer.MosquittoPasswd(t, pwPath, "alice", "right-pass")
	users, err := mqttauth.LoadUsers(pwPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testpeer.Output{}
	hook := NewAuthHook(map[string]ListenerAuth{
		"locked": {Users: users},
		"mixed":  {Users: users, AllowAnonymous: true},
		"open":   {AllowAnonymous: true},
		"closed": {},
	}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	_, addrs := authServer(t, []mqtt.Hook{hook}, "locked", "mixed", "open", "closed", "unconfigured")

	cases := []struct {
		name, listener string
		args           []string
		ok             bool
	}{
		{"the right password is accepted", "locked", []string{"-u", "alice", "-P", "right-pass"}, true},
		{"a wrong password is refused", "locked", []string{"-u", "alice", "-P", "wrong-pass-1"}, false},
		{"a missing password is refused", "locked", []string{"-u", "alice"}, false},
		{"an unknown user is refused", "locked", []string{"-u", "mallory", "-P", "wrong-pass-2"}, false},
		{"an anonymous client is refused without allow_anonymous", "locked", nil, false},
		{"an anonymous client is accepted with allow_anonymous", "mixed", nil, true},
		{"a wrong password is refused even with allow_anonymous", "mixed", []string{"-u", "alice", "-P", "wrong-pass-3"}, false},
		{"the right password is accepted with allow_anonymous", "mixed", []string{"-u", "alice", "-P", "right-pass"}, true},
		{"anyone is accepted without a users file and with allow_anonymous", "open", []string{"-u", "whoever", "-P", "x"}, true},
		{"an anonymous client is accepted without a users file and with allow_anonymous", "open", nil, true},
		{"everyone is refused without a users file or allow_anonymous", "closed", nil, false},
		{"a listener missing from the map refuses everyone", "unconfigured", nil, false},
	}
	refusals := 0
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(testpeer.Port(t, addrs[c.listener])),
				"-V", "mqttv311", "-i", "login" + strconv.Itoa(i), "-t", "t", "-m", "x"}, c.args...)
			out, err := exec.Command(pubBin, args...).CombinedOutput()
			if (err == nil) != c.ok {
				t.Fatalf("mosquitto_pub %v: err %v (%s), want ok=%v", c.args, err, out, c.ok)
			}
		})
		if !c.ok {
			refusals++
		}
	}
	logins, _ := hook.Refused()
	if logins != uint64(refusals) {
		t.Errorf("Refused() logins = %d, want %d", logins, refusals)
	}
	text := logs.String()
	if n := strings.Count(text, "login refused"); n != refusals {
		t.Errorf("%d 'login refused' log lines, want one per refusal (%d):\n%s", n, refusals, text)
	}
	if !strings.Contains(text, "username=alice") || !strings.Contains(text, "username=mallory") {
		t.Errorf("refusals do not name the user:\n%s", text)
	}
	for _, secret := range []string{"right-pass", "wrong-pass"} {
		if strings.Contains(text, secret) {
			t.Errorf("the log contains a password %q:\n%s", secret, text)
		}
	}
}

// authInbox collects messages received by a paho subscription.
type authInbox struct {
	mu  sync.Mutex
	got []string
}

func (b *authInbox) handler(_ paho.Client, m paho.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, m.Topic()+" "+string(m.Payload()))
}

func (b *authInbox) has(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, g := range b.got {
		if g == s {
			return true
		}
	}
	return false
}

func TestAuthHookACL(t *testing.T) {
	dir := t.TempDir()
	pwPath, aclPath := filepath.Join(dir, "users"), filepath.Join(dir, "acl")
	testpeer.MosquittoPasswd(t, pwPath, "alice", "pw")
	users, err := mqttauth.LoadUsers(pwPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(aclPath, []byte("user alice\ntopic readwrite alice/#\ntopic read shared/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	acl, err := mqttauth.LoadACL(aclPath)
	if err != nil {
		t.Fatal(err)
	}
	hook := NewAuthHook(map[string]ListenerAuth{
		"acl":    {Users: users, ACL: acl},
		"no-acl": {Users: users},
	}, nil)
	srv, addrs := authServer(t, []mqtt.Hook{hook}, "acl", "no-acl")

	inline := &authInbox{}
	if err := srv.Subscribe("#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		inline.handler(nil, authMsg{pk.TopicName, pk.Payload})
	}); err != nil {
		t.Fatal(err)
	}

	c, err := authPaho(t, addrs["acl"], "alice-1", "alice", "pw", true)
	if err != nil {
		t.Fatal(err)
	}
	subscribe := func(c paho.Client, filter string, in *authInbox) byte {
		t.Helper()
		tok := c.Subscribe(filter, 1, in.handler)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
		return tok.(*paho.SubscribeToken).Result()[filter]
	}
	publish := func(c paho.Client, topic, payload string) {
		t.Helper()
		tok := c.Publish(topic, 1, false, payload)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}

	t.Run("a subscription outside the ACL is refused", func(t *testing.T) {
		if code := subscribe(c, "secret/#", &authInbox{}); code != 0x80 {
			t.Fatalf("SUBACK code %#x, want 0x80", code)
		}
	})
	t.Run("a publish outside the ACL does not reach subscribers", func(t *testing.T) {
		// QoS 0: mochi disconnects an MQTT 3 client whose QoS 1 publish is denied.
		if tok := c.Publish("shared/x", 0, false, "denied"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		publish(c, "alice/x", "allowed") // same connection: handled after the first
		testpeer.Eventually(t, 10*time.Second, "the allowed publish", func() bool { return inline.has("alice/x allowed") })
		if inline.has("shared/x denied") {
			t.Fatal("a denied publish was delivered")
		}
	})
	t.Run("a wide subscription receives only what the ACL lets it read", func(t *testing.T) {
		in := &authInbox{}
		if code := subscribe(c, "#", in); code > 2 {
			t.Fatalf("SUBACK code %#x, want a granted QoS", code)
		}
		// The inline client may publish anywhere.
		if err := srv.Publish("secret/x", []byte("hidden"), false, 1); err != nil {
			t.Fatal(err)
		}
		if err := srv.Publish("shared/news", []byte("visible"), false, 1); err != nil {
			t.Fatal(err)
		}
		testpeer.Eventually(t, 10*time.Second, "the readable message", func() bool { return in.has("shared/news visible") })
		if in.has("secret/x hidden") {
			t.Fatal("a message outside the read rules was delivered")
		}
		if !inline.has("secret/x hidden") {
			t.Fatal("the inline client's own subscription missed its message")
		}
	})
	t.Run("a listener without an ACL allows everything after login", func(t *testing.T) {
		c2, err := authPaho(t, addrs["no-acl"], "alice-2", "alice", "pw", true)
		if err != nil {
			t.Fatal(err)
		}
		if code := subscribe(c2, "secret/#", &authInbox{}); code > 2 {
			t.Fatalf("SUBACK code %#x, want a granted QoS", code)
		}
	})
	if _, aclRefused := hook.Refused(); aclRefused < 3 {
		t.Fatalf("Refused() acl = %d, want at least 3", aclRefused)
	}
}

// authMsg adapts an inline delivery to paho.Message for authInbox.
type authMsg struct {
	topic   string
	payload []byte
}

func (m authMsg) Duplicate() bool   { return false }
func (m authMsg) Qos() byte         { return 0 }
func (m authMsg) Retained() bool    { return false }
func (m authMsg) Topic() string     { return m.topic }
func (m authMsg) MessageID() uint16 { return 0 }
func (m authMsg) Payload() []byte   { return m.payload }
func (m authMsg) Ack()              {}

package broker

import (
	"bytes"
	"database/sql"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/internal/testpeer"
)

// storeServer opens the store at path and starts a mochi server on it with
// one listener "tcp". stop closes the server, then the store, as the broker
// does at shutdown.
func storeServer(t *testing.T, path string) (srv *mqtt.Server, st *Store, addr string, stop func()) {
	t.Helper()
	st, err := NewStore(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	open := NewAuthHook(map[string]ListenerAuth{"tcp": {AllowAnonymous: true}}, nil)
	srv, addrs := authServer(t, []mqtt.Hook{open, st}, "tcp")
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		authClose(srv)
		if err := st.Close(); err != nil {
			t.Errorf("store close: %v", err)
		}
	}
	t.Cleanup(stop)
	return srv, st, addrs["tcp"], stop
}

// storeClient connects a paho MQTT 3.1.1 client whose every incoming
// message, subscribed now or restored from its session, goes to in.
func storeClient(t *testing.T, addr, id string, clean bool, in *authInbox) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(clean).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).SetProtocolVersion(4).
		SetDefaultPublishHandler(in.handler)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() {
		if c.IsConnected() {
			c.Disconnect(100)
		}
	})
	return c
}

func storeWait(t *testing.T, tok paho.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: %v", what, tok.Error())
	}
}

func TestStoreKeepsRetainedAndSessionsAcrossARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")

	srv, _, addr, stop := storeServer(t, path)
	sub := storeClient(t, addr, "sub", false, &authInbox{})
	storeWait(t, sub.Subscribe("q/#", 1, nil), "subscribe")
	sub.Disconnect(100)
	testpeer.Eventually(t, 10*time.Second, "the subscriber to go offline", func() bool {
		cl, ok := srv.Clients.Get("sub")
		return ok && cl.Closed()
	})
	pub := storeClient(t, addr, "pub", true, &authInbox{})
	storeWait(t, pub.Publish("r/status", 1, true, "online"), "publish retained")
	storeWait(t, pub.Publish("r/gone", 1, true, "soon deleted"), "publish retained")
	storeWait(t, pub.Publish("r/gone", 1, true, ""), "delete retained")
	storeWait(t, pub.Publish("q/1", 1, false, "queued"), "publish for the offline session")
	// mochi acknowledges a QoS 1 publish before it fans it out: wait for the
	// message to sit in the offline session before stopping.
	testpeer.Eventually(t, 10*time.Second, "the message queued for the offline session", func() bool {
		cl, ok := srv.Clients.Get("sub")
		return ok && cl.State.Inflight.Len() == 1
	})
	if err := srv.Publish("r/inline", []byte("from inside"), true, 0); err != nil {
		t.Fatal(err)
	}
	testpeer.Eventually(t, 10*time.Second, "three retained topics", func() bool { return srv.Topics.Retained.Len() >= 3 })
	stop()

	_, _, addr, _ = storeServer(t, path)
	t.Run("retained messages are delivered after the restart", func(t *testing.T) {
		in := &authInbox{}
		c := storeClient(t, addr, "late", true, in)
		storeWait(t, c.Subscribe("r/#", 1, in.handler), "subscribe")
		testpeer.Eventually(t, 10*time.Second, "the retained messages", func() bool {
			return in.has("r/status online") && in.has("r/inline from inside")
		})
		if in.has("r/gone soon deleted") {
			t.Fatal("a deleted retained message came back")
		}
	})
	in := &authInbox{}
	storeClient(t, addr, "sub", false, in)
	t.Run("a persistent session gets the message queued before the restart", func(t *testing.T) {
		testpeer.Eventually(t, 10*time.Second, "the queued message", func() bool { return in.has("q/1 queued") })
	})
	t.Run("a persistent session's subscription survives the restart", func(t *testing.T) {
		pub := storeClient(t, addr, "pub2", true, &authInbox{})
		storeWait(t, pub.Publish("q/2", 1, false, "after restart"), "publish")
		testpeer.Eventually(t, 10*time.Second, "a new message on the old subscription", func() bool { return in.has("q/2 after restart") })
	})
}

func TestStoreKeepsOnlyWhatOutlivesAConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	srv, st, addr, stop := storeServer(t, path)
	clean := storeClient(t, addr, "clean", true, &authInbox{})
	storeWait(t, clean.Subscribe("a/#", 1, nil), "subscribe")
	keep := storeClient(t, addr, "keep", false, &authInbox{})
	storeWait(t, keep.Subscribe("b/#", 1, nil), "subscribe")
	again := storeClient(t, addr, "again", false, &authInbox{})
	storeWait(t, again.Subscribe("c/#", 1, nil), "subscribe")
	again.Disconnect(100)
	testpeer.Eventually(t, 10*time.Second, "client 'again' to go offline", func() bool {
		cl, ok := srv.Clients.Get("again")
		return ok && cl.Closed()
	})
	// Coming back with a clean session discards the stored one.
	again = storeClient(t, addr, "again", true, &authInbox{})
	// mochi announces a session only after CONNACK; a SUBACK comes after.
	storeWait(t, again.Subscribe("d/#", 1, nil), "subscribe")
	if err := srv.Subscribe("inline/#", 7, func(*mqtt.Client, packets.Subscription, packets.Packet) {}); err != nil {
		t.Fatal(err)
	}
	clients, err := st.StoredClients()
	if err != nil {
		t.Fatal(err)
	}
	subs, err := st.StoredSubscriptions()
	if err != nil {
		t.Fatal(err)
	}
	var ids, filters []string
	for _, c := range clients {
		ids = append(ids, c.ID)
	}
	for _, s := range subs {
		filters = append(filters, s.Client+" "+s.Filter)
	}
	if strings.Join(ids, ",") != "keep" {
		t.Errorf("stored clients %v, want only the persistent one [keep]", ids)
	}
	if strings.Join(filters, ",") != "keep b/#" {
		t.Errorf("stored subscriptions %v, want only [keep b/#]", filters)
	}
	stop()
}

func TestStoreMovesACorruptFileAside(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"a file that is not a database", func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"a database with damaged pages", func(t *testing.T, path string) {
			_, _, addr, stop := storeServer(t, path)
			pub := storeClient(t, addr, "pub", true, &authInbox{})
			for i := 0; i < 200; i++ {
				storeWait(t, pub.Publish("r/"+strings.Repeat("x", i), 1, true, strings.Repeat("payload ", 50)), "publish")
			}
			stop()
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			if st.Size() < 3*4096 {
				t.Fatalf("database only %d bytes", st.Size())
			}
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, int(st.Size())-4096), 4096); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name+" is moved aside and the store starts empty", func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "broker.db")
			c.spoil(t, path)
			var logs testpeer.Output
			st, err := NewStore(path, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) == 0 {
				t.Fatalf("nothing moved aside; files: %v", storeLs(dir))
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "corrupt") {
				t.Fatalf("no loud log line: %s", logs.String())
			}
			ret, err := st.StoredRetainedMessages()
			if err != nil || len(ret) != 0 {
				t.Fatalf("a fresh store holds %d retained messages (err %v)", len(ret), err)
			}
		})
	}
	t.Run("a missing directory is an error, not corruption", func(t *testing.T) {
		dir := t.TempDir()
		_, err := NewStore(filepath.Join(dir, "no", "such", "broker.db"), nil)
		if err == nil {
			t.Fatal("no error")
		}
		if names := storeLs(dir); len(names) != 0 {
			t.Fatalf("files appeared: %v", names)
		}
	})
}

func storeLs(dir string) []string {
	es, _ := os.ReadDir(dir)
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestStoreCloseIsIdempotentAndLaterEventsAreIgnored(t *testing.T) {
	st, err := NewStore(filepath.Join(t.TempDir(), "broker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	st.OnRetainedExpired("a/b") // must not panic or block
	if _, err := st.StoredClients(); err == nil {
		t.Fatal("loading from a closed store did not fail")
	}
}

// BenchmarkStoreRetainedWrites measures the hook's cost per retained
// message, including its commit to disk.
func BenchmarkStoreRetainedWrites(b *testing.B) {
	st, err := NewStore(filepath.Join(b.TempDir(), "broker.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	cl := srv.NewClient(nil, "tcp", "bench", false)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true, Qos: 1},
		Payload: []byte(`{"value": 230.5, "unit": "V", "ts": "2026-11-22T10:00:00.123Z"}`)}
	topics := make([]string, 100)
	for i := range topics {
		topics[i] = "pi-01/meter1/point" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pk.TopicName = topics[i%len(topics)]
		st.OnRetainMessage(cl, pk, 1)
	}
	st.flush()
}

// TestStoreKeepsMQTT5SessionsWithAnExpiry uses mosquitto_sub as an MQTT 5
// client: a session expiry above zero makes the session persistent, zero
// does not.
func TestStoreKeepsMQTT5SessionsWithAnExpiry(t *testing.T) {
	subBin := testpeer.Need(t, "mosquitto_sub", "mosquitto-clients")
	path := filepath.Join(t.TempDir(), "broker.db")
	srv, st, addr, stop := storeServer(t, path)
	port := strconv.Itoa(testpeer.Port(t, addr))
	subscribe := func(id, expiry string, extra ...string) *exec.Cmd {
		args := append([]string{"-h", "127.0.0.1", "-p", port, "-V", "5", "-c", "-x", expiry, "-i", id, "-q", "1", "-t", "q/#"}, extra...)
		return exec.Command(subBin, args...)
	}
	for _, c := range []struct{ id, expiry string }{{"v5-keep", "3600"}, {"v5-drop", "0"}} {
		if out, err := subscribe(c.id, c.expiry, "-E").CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_sub %s: %v: %s", c.id, err, out)
		}
	}
	testpeer.Eventually(t, 10*time.Second, "v5-keep to go offline", func() bool {
		cl, ok := srv.Clients.Get("v5-keep")
		return ok && cl.Closed()
	})
	pub := storeClient(t, addr, "pub", true, &authInbox{})
	storeWait(t, pub.Publish("q/5", 1, false, "for v5"), "publish")
	testpeer.Eventually(t, 10*time.Second, "the message queued for v5-keep", func() bool {
		cl, ok := srv.Clients.Get("v5-keep")
		return ok && cl.State.Inflight.Len() == 1
	})
	clients, err := st.StoredClients()
	if err != nil {
		t.Fatal(err)
	}
	if len(clients) != 1 || clients[0].ID != "v5-keep" {
		t.Fatalf("stored clients %+v, want only v5-keep", clients)
	}
	stop()

	_, _, addr, _ = storeServer(t, path)
	port = strconv.Itoa(testpeer.Port(t, addr))
	cmd := subscribe("v5-keep", "3600", "-C", "1", "-W", "10", "-v")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "q/5 for v5" {
		t.Fatalf("after restart mosquitto_sub got %q (err %v), want the queued message", out, err)
	}
}

// What the broker acknowledges is on disk before the acknowledgement: a
// retained QoS 1 message before its PUBACK, a persistent session's
// subscription before its SUBACK. The test holds the store's only database
// connection so the writer cannot commit, and lets go of it a moment later;
// an acknowledgement that comes while it is held came before the commit.
func TestStoreCommitsWhatItAcknowledgesBeforeTheAck(t *testing.T) {
	cases := []struct {
		name  string
		act   func(c paho.Client) paho.Token
		query string
	}{
		{"a retained QoS 1 message is committed before its PUBACK", func(c paho.Client) paho.Token {
			return c.Publish("r/1", 1, true, "kept")
		}, `SELECT count(*) FROM retained WHERE topic = 'r/1'`},
		{"a persistent session's subscription is committed before its SUBACK", func(c paho.Client) paho.Token {
			return c.Subscribe("s/#", 1, nil)
		}, `SELECT count(*) FROM subscriptions WHERE client = 'durable' AND filter = 's/#'`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "broker.db")
			_, st, addr, _ := storeServer(t, path)
			c := storeClient(t, addr, "durable", false, &authInbox{})
			st.flush() // the session record is in

			var sync int
			if err := st.db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
				t.Errorf("synchronous = %d (%v), want 2 (FULL: every commit fsynced)", sync, err)
			}

			held, err := st.db.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			time.AfterFunc(300*time.Millisecond, func() { held.Close() })
			defer held.Close() // a second Close is harmless
			storeWait(t, tc.act(c), tc.name)

			other, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			var n int
			if err := other.QueryRow(tc.query).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Fatalf("acknowledged, but not committed (%d rows)", n)
			}
		})
	}
}

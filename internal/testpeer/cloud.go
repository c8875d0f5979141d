package testpeer

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// CloudBroker is an MQTT broker standing in for an IoT cloud: it accepts a
// CONNECT only when its verifier does (each cloud's published rule,
// implemented here independently of edged's cloudauth), and records every
// connect and publish.
type CloudBroker struct {
	Addr string
	srv  *mqtt.Server

	mu       sync.Mutex
	connects []CloudConnect
	msgs     []CloudMessage
	changed  chan struct{}
}

// CloudConnect is one CONNECT the broker saw, and why it refused it ("" if
// it accepted).
type CloudConnect struct {
	ClientID, Username, Password string
	Refused                      string
}

// CloudMessage is one publish a client made.
type CloudMessage struct {
	Topic   string
	Payload []byte
}

// CloudVerifier decides a CONNECT: nil accepts it.
type CloudVerifier func(clientID, username, password string) error

type cloudHook struct {
	mqtt.HookBase
	b      *CloudBroker
	verify CloudVerifier
}

func (h *cloudHook) ID() string { return "cloud" }
func (h *cloudHook) Provides(b byte) bool {
	return bytes.IndexByte([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublished, mqtt.OnPacketRead, mqtt.OnPacketEncode}, b) >= 0
}

// The broker library refuses publishes on topics starting with "$sys"
// (it takes them for "$SYS"), where OneNET puts its whole thing model:
// such topics are renamed on the way in and back on the way out.
const sysIn, sysHere = "$sys/", "~sys/"

func hide(topic string) string {
	if strings.HasPrefix(topic, sysIn) {
		return sysHere + topic[len(sysIn):]
	}
	return topic
}

func unhide(topic string) string {
	if strings.HasPrefix(topic, sysHere) {
		return sysIn + topic[len(sysHere):]
	}
	return topic
}

func (h *cloudHook) OnPacketRead(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	pk.TopicName = hide(pk.TopicName)
	for i := range pk.Filters {
		pk.Filters[i].Filter = hide(pk.Filters[i].Filter)
	}
	return pk, nil
}

func (h *cloudHook) OnPacketEncode(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	pk.TopicName = unhide(pk.TopicName)
	return pk
}

func (h *cloudHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	c := CloudConnect{ClientID: pk.Connect.ClientIdentifier, Username: string(pk.Connect.Username), Password: string(pk.Connect.Password)}
	if err := h.verify(c.ClientID, c.Username, c.Password); err != nil {
		c.Refused = err.Error()
	}
	h.b.record(func() { h.b.connects = append(h.b.connects, c) })
	return c.Refused == ""
}

func (h *cloudHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func (h *cloudHook) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	if cl.Net.Inline {
		return
	}
	m := CloudMessage{Topic: unhide(pk.TopicName), Payload: append([]byte(nil), pk.Payload...)}
	h.b.record(func() { h.b.msgs = append(h.b.msgs, m) })
}

func (b *CloudBroker) record(f func()) {
	b.mu.Lock()
	f()
	old := b.changed
	b.changed = make(chan struct{})
	b.mu.Unlock()
	close(old)
}

// StartCloudBroker starts the broker on a random loopback port, with TLS
// when tc is not nil.
func StartCloudBroker(t testing.TB, verify CloudVerifier, tc *tls.Config) *CloudBroker {
	t.Helper()
	b := &CloudBroker{changed: make(chan struct{})}
	b.srv = mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := b.srv.AddHook(&cloudHook{b: b, verify: verify}, nil); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.Addr = ln.Addr().String()
	ln.Close()
	if err := b.srv.AddListener(listeners.NewTCP(listeners.Config{ID: "cloud", Address: b.Addr, TLSConfig: tc})); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.srv.Serve() }()
	t.Cleanup(func() { _ = b.srv.Close() })
	WaitListening(t, b.Addr, 5*time.Second)
	return b
}

// Connects returns the CONNECTs seen so far.
func (b *CloudBroker) Connects() []CloudConnect {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]CloudConnect(nil), b.connects...)
}

// Publish sends a message to the clients subscribed to topic, as the
// cloud's console would.
func (b *CloudBroker) Publish(topic string, payload []byte) error {
	return b.srv.Publish(hide(topic), payload, false, 1)
}

// WaitFor waits until cond holds for the connects and messages so far.
func (b *CloudBroker) WaitFor(t testing.TB, limit time.Duration, what string, cond func([]CloudConnect, []CloudMessage) bool) {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok := cond(b.connects, b.msgs)
		ch := b.changed
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("cloud broker: %s: not within %v; connects: %+v", what, limit, b.Connects())
		}
	}
}

// Message waits for a publish on topic and returns the first one.
func (b *CloudBroker) Message(t testing.TB, limit time.Duration, topic string) CloudMessage {
	t.Helper()
	var got CloudMessage
	b.WaitFor(t, limit, "a message on "+topic, func(_ []CloudConnect, ms []CloudMessage) bool {
		for _, m := range ms {
			if m.Topic == topic {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// The verifiers below implement each cloud's published login rule from its
// documentation, separately from edged's own code, so that a mistake in
// one is not repeated in the other.

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// VerifyOneNET checks OneNET's device login (client id = device name,
// user name = product id, password = token for products/{pid}/devices/{name}
// with method sha256) and refuses a token whose et is past now().
func VerifyOneNET(product, device, key string, now func() time.Time) CloudVerifier {
	return func(id, user, pass string) error {
		if id != device || user != product {
			return fmt.Errorf("client id %q / user %q are not device %q / product %q", id, user, device, product)
		}
		q, err := url.ParseQuery(pass)
		if err != nil {
			return err
		}
		et, err := strconv.ParseInt(q.Get("et"), 10, 64)
		if err != nil {
			return errors.New("no et")
		}
		if et < now().Unix() {
			return errors.New("token expired")
		}
		res := "products/" + product + "/devices/" + device
		if q.Get("res") != res || q.Get("version") != "2018-10-31" || q.Get("method") != "sha256" {
			return fmt.Errorf("token fields %v", q)
		}
		k, _ := base64.StdEncoding.DecodeString(key)
		want := base64.StdEncoding.EncodeToString(hmacSHA256(k, q.Get("et")+"\nsha256\n"+res+"\n2018-10-31"))
		if q.Get("sign") != want {
			return errors.New("bad signature")
		}
		return nil
	}
}

// VerifyAliyun checks Aliyun IoT Platform's login with signmethod
// hmacsha256: client id "{id}|securemode=N,signmethod=hmacsha256,timestamp=T|",
// user name "{device}&{product}", password the hex HMAC of
// clientId{id}deviceName{device}productKey{product}timestamp{T}.
func VerifyAliyun(product, device, secret string) CloudVerifier {
	return func(id, user, pass string) error {
		if user != device+"&"+product {
			return fmt.Errorf("user %q", user)
		}
		base, ext, ok := strings.Cut(id, "|")
		if !ok || !strings.HasSuffix(ext, "|") {
			return fmt.Errorf("client id %q has no |...| parameters", id)
		}
		params := map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(ext, "|"), ",") {
			k, v, _ := strings.Cut(kv, "=")
			params[k] = v
		}
		if params["signmethod"] != "hmacsha256" || params["timestamp"] == "" {
			return fmt.Errorf("client id parameters %v", params)
		}
		content := "clientId" + base + "deviceName" + device + "productKey" + product + "timestamp" + params["timestamp"]
		if pass != hex.EncodeToString(hmacSHA256([]byte(secret), content)) {
			return errors.New("bad signature")
		}
		return nil
	}
}

// VerifyAzure checks IoT Hub's device login: client id = device id, user
// name "{host}/{device}/?api-version=…", password a SAS token for
// {host}/devices/{device} whose se is not past now().
func VerifyAzure(host, device, key string, now func() time.Time) CloudVerifier {
	return func(id, user, pass string) error {
		if id != device || !strings.HasPrefix(user, host+"/"+device+"/?api-version=") {
			return fmt.Errorf("client id %q / user %q", id, user)
		}
		tok, ok := strings.CutPrefix(pass, "SharedAccessSignature ")
		if !ok {
			return errors.New("not a SharedAccessSignature")
		}
		q, err := url.ParseQuery(tok)
		if err != nil {
			return err
		}
		se, err := strconv.ParseInt(q.Get("se"), 10, 64)
		if err != nil {
			return errors.New("no se")
		}
		if se < now().Unix() {
			return errors.New("token expired")
		}
		sr := host + "/devices/" + device
		if !strings.EqualFold(q.Get("sr"), sr) {
			return fmt.Errorf("sr %q", q.Get("sr"))
		}
		k, _ := base64.StdEncoding.DecodeString(key)
		want := base64.StdEncoding.EncodeToString(hmacSHA256(k, url.QueryEscape(sr)+"\n"+q.Get("se")))
		if q.Get("sig") != want {
			return errors.New("bad signature")
		}
		return nil
	}
}

package broker

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	ca := testpeer.NewCA(t, "edged test CA")
	srv := ca.Server(t, "server")
	cli := ca.Client(t, "client")
	p := testPKI{caFile: ca.File, certFile: srv.CertFile, keyFile: srv.KeyFile}
	var err error
	if p.client, err = tls.LoadX509KeyPair(cli.CertFile, cli.KeyFile); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	p.pool = x509.NewCertPool()
	if !p.pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the test CA's PEM holds no certificate")
	}
	return p
}

func TestTLSAndWebsocketListeners(t *testing.T) {
	pki := newTestPKI(t)
	cfg := config.Broker{Listeners: []config.Listener{
		{Type: "tcp", Address: "127.0.0.1:0"},
		loadFiles(t, config.Listener{Type: "tls", Address: "127.0.0.1:0", CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile}),
		{Type: "ws", Address: "127.0.0.1:0"},
	}}
	b, tcpAddr := startBroker(t, cfg, "")
	addrs := b.Addrs()
	if len(addrs) != 3 {
		t.Fatalf("Addrs = %v", addrs)
	}
	tlsURL, wsURL := "ssl://"+addrs[1].String(), "ws://"+addrs[2].String()+"/mqtt"

	roundTrip := func(t *testing.T, url string, opt func(*paho.ClientOptions)) {
		t.Helper()
		got := make(chan string, 1)
		sub := pahoClient(t, url, "sub-"+t.Name(), opt)
		waitToken(t, sub.Subscribe("lst/#", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }), "subscribe")
		pub := pahoClient(t, "tcp://"+tcpAddr, "pub-"+t.Name(), nil)
		waitToken(t, pub.Publish("lst/x", 1, false, "via "+url), "publish")
		select {
		case m := <-got:
			if m != "via "+url {
				t.Fatalf("got %q", m)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("nothing received")
		}
	}

	t.Run("a client with a certificate from the CA gets through mutual TLS", func(t *testing.T) {
		roundTrip(t, tlsURL, func(o *paho.ClientOptions) {
			o.SetTLSConfig(&tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}})
		})
	})
	t.Run("a client without a certificate is refused", func(t *testing.T) {
		o := paho.NewClientOptions().AddBroker(tlsURL).SetClientID("nocert").SetAutoReconnect(false).
			SetConnectTimeout(5 * time.Second).SetTLSConfig(&tls.Config{RootCAs: pki.pool})
		c := paho.NewClient(o)
		tok := c.Connect()
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			c.Disconnect(0)
			t.Fatal("connected without a client certificate")
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		c, err := tls.Dial("tcp", addrs[1].String(), &tls.Config{RootCAs: pki.pool, MaxVersion: tls.VersionTLS11, Certificates: []tls.Certificate{pki.client}})
		if err == nil {
			c.Close()
			t.Fatal("TLS 1.1 handshake succeeded")
		}
	})
	t.Run("a websocket client round-trips", func(t *testing.T) {
		roundTrip(t, wsURL, nil)
	})
}

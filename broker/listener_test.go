package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/config"
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
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edged test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(name string, usage x509.ExtKeyUsage, ip net.IP) ([]byte, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		}
		if ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalECPrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
	}
	p := testPKI{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server.key")}
	write := func(path string, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	sc, sk := issue("server", x509.ExtKeyUsageServerAuth, net.IPv4(127, 0, 0, 1))
	write(p.certFile, sc)
	write(p.keyFile, sk)
	cc, ck := issue("client", x509.ExtKeyUsageClientAuth, nil)
	if p.client, err = tls.X509KeyPair(cc, ck); err != nil {
		t.Fatal(err)
	}
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)
	return p
}

func TestTLSAndWebsocketListeners(t *testing.T) {
	pki := newTestPKI(t)
	cfg := config.Broker{Listeners: []config.Listener{
		{Type: "tcp", Address: "127.0.0.1:0"},
		{Type: "tls", Address: "127.0.0.1:0", CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile},
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
		case <-time.After(5 * time.Second):
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

func TestUnusableClientCAIsAnError(t *testing.T) {
	pki := newTestPKI(t)
	bad := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Broker{Listeners: []config.Listener{{Type: "tls", Address: "127.0.0.1:0", CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: bad}}}
	_, err := New(cfg, t.TempDir(), testLog(t))
	if want := "broker.listener[0]: client_ca_file " + bad + ": no PEM certificate in it"; err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

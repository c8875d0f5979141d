package bridge

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/internal/testpeer"
)

func TestTLSUplinkForwardsAQoS1Message(t *testing.T) {
	for _, mutual := range []bool{false, true} {
		name := "over TLS the upstream receives a forwarded message"
		if mutual {
			name = "over mutual TLS the upstream receives a forwarded message"
		}
		t.Run(name, func(t *testing.T) {
			u := startUpstream(t, mutual)
			col := collect(t, u.plain, "sites/#")
			status := collect(t, u.plain, "gw/status")
			br, local, _, _ := newBridge(t, uplinkCfg(u, u.tlsAddr), buffer.Options{})
			runBridge(t, br)
			testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
			if err := local.Publish("gw/meter1/voltage", []byte("230.5"), 1, false); err != nil {
				t.Fatal(err)
			}
			col.waitFor(t, 10*time.Second, "the forwarded message", func(ms []mqttMessage) bool {
				return len(ms) == 1 && ms[0].Topic() == "sites/a/gw/meter1/voltage" && string(ms[0].Payload()) == "230.5"
			})
			status.waitFor(t, 10*time.Second, "online on gw/status", func(ms []mqttMessage) bool {
				return len(ms) > 0 && string(ms[len(ms)-1].Payload()) == "online"
			})
			testpeer.Eventually(t, 10*time.Second, "the buffer emptied by the PUBACK", func() bool {
				return br.Stats().Buffer.Messages == 0
			})
		})
	}
}

func TestTLSRefusals(t *testing.T) {
	t.Run("a server certificate from another CA is refused and the error says so", func(t *testing.T) {
		u := startUpstream(t, false)
		cfg := uplinkCfg(u, u.tlsAddr)
		cfg.CAFile = testpeer.NewCA(t, "someone-else").File
		br, _, _, lb := newBridge(t, cfg, buffer.Options{})
		runBridge(t, br)
		testpeer.Eventually(t, 15*time.Second, "a failed attempt", func() bool { return br.Stats().ConnectFailures > 0 })
		s := br.Stats()
		if s.Connects != 0 {
			t.Fatalf("connected %d times to a server it must not trust", s.Connects)
		}
		if !strings.Contains(s.LastError, "not signed by a trusted CA") {
			t.Errorf("last error %q does not say the CA is wrong", s.LastError)
		}
		if !strings.Contains(lb.String(), "not signed by a trusted CA") {
			t.Errorf("log does not say the CA is wrong:\n%s", lb)
		}
	})

	t.Run("a client without a certificate is refused by the upstream and the bridge says why", func(t *testing.T) {
		u := startUpstream(t, true)
		cfg := uplinkCfg(u, u.tlsAddr)
		cfg.CertFile, cfg.KeyFile = "", ""
		br, _, _, lb := newBridge(t, cfg, buffer.Options{})
		runBridge(t, br)
		testpeer.Eventually(t, 15*time.Second, "a failed attempt", func() bool { return br.Stats().ConnectFailures > 0 })
		s := br.Stats()
		if s.Connects != 0 {
			t.Fatalf("connected without a client certificate")
		}
		if !strings.Contains(s.LastError, "client certificate") {
			t.Errorf("last error %q does not point at the client certificate", s.LastError)
		}
		if !strings.Contains(lb.String(), "client certificate") {
			t.Errorf("log does not point at the client certificate:\n%s", lb)
		}
	})

	t.Run("a CA file that turns invalid after start stops reconnection instead of skipping verification", func(t *testing.T) {
		u := startUpstream(t, false)
		proxy := testpeer.StartProxy(t, u.tlsAddr)
		cfg := uplinkCfg(u, proxy.Addr)
		ca, err := os.ReadFile(u.ca.File)
		if err != nil {
			t.Fatal(err)
		}
		caCopy := t.TempDir() + "/ca.pem"
		if err := os.WriteFile(caCopy, ca, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.CAFile = caCopy
		br, _, _, _ := newBridge(t, cfg, buffer.Options{})
		runBridge(t, br)
		testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
		if err := os.WriteFile(caCopy, []byte("garbage\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		proxy.Cut()
		testpeer.Eventually(t, 10*time.Second, "the bridge noticed the cut", func() bool { return !br.Stats().Connected })
		proxy.Restore()
		testpeer.Eventually(t, 15*time.Second, "a refused reconnect naming ca_file", func() bool {
			return strings.Contains(br.Stats().LastError, "ca_file")
		})
		if n := br.Stats().Connects; n != 1 {
			t.Errorf("%d connections; the reconnect with an invalid CA file must not happen", n)
		}
	})

	t.Run("insecure_skip_verify connects to an untrusted server and warns at every connect", func(t *testing.T) {
		u := startUpstream(t, false)
		proxy := testpeer.StartProxy(t, u.tlsAddr)
		cfg := uplinkCfg(u, proxy.Addr)
		cfg.CAFile = testpeer.NewCA(t, "someone-else").File
		cfg.InsecureSkipVerify = true
		br, _, _, lb := newBridge(t, cfg, buffer.Options{})
		runBridge(t, br)
		testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
		proxy.Cut()
		testpeer.Eventually(t, 10*time.Second, "the bridge noticed the cut", func() bool { return !br.Stats().Connected })
		proxy.Restore()
		testpeer.Eventually(t, 15*time.Second, "a second connection", func() bool { return br.Stats().Connects == 2 })
		if n := lb.Count("verification is OFF"); n < 2 {
			t.Errorf("%d warnings about skipped verification for 2 connections", n)
		}
	})
}

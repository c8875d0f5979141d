package bridge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edged/edged/config"
)

func TestParseServer(t *testing.T) {
	cases := []struct {
		name, raw, url string
		tls            bool
		err            string
	}{
		{"mqtt gets port 1883", "mqtt://broker.example", "mqtt://broker.example:1883", false, ""},
		{"mqtts gets port 8883 and TLS", "mqtts://broker.example", "mqtts://broker.example:8883", true, ""},
		{"an explicit port is kept", "mqtts://10.0.0.1:9999", "mqtts://10.0.0.1:9999", true, ""},
		{"ws keeps its path", "ws://h/mqtt", "ws://h:80/mqtt", false, ""},
		{"wss is TLS on 443", "wss://h:8443/mqtt", "wss://h:8443/mqtt", true, ""},
		{"an IPv6 address gets brackets", "mqtt://[::1]", "mqtt://[::1]:1883", false, ""},
		{"an unknown scheme is refused", "tcp://h", "", false, "not one of mqtt, mqtts, ws, wss"},
		{"credentials in the URL are refused", "mqtt://u:secret@h", "", false, "credentials in the URL"},
		{"a URL without a host is refused", "mqtt://", "", false, "no host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := parseServer(c.raw)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.url != c.url || s.tls != c.tls {
				t.Errorf("got %q tls=%v, want %q tls=%v", s.url, s.tls, c.url, c.tls)
			}
		})
	}
}

// TestEveryConnectionRefusesUnusableTLSFiles: config refuses these files
// at load (cmd/edged's TestCheckRefusesWhatRunRefuses); the bridge loads
// them again before every connection, and one that went bad since fails
// that connection instead of connecting without it.
func TestEveryConnectionRefusesUnusableTLSFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  config.Uplink
		want string
	}{
		{"a missing CA file is an error", config.Uplink{CAFile: filepath.Join(dir, "nope.pem")}, "uplink.ca_file"},
		{"a CA file without a certificate is an error", config.Uplink{CAFile: garbage}, "no PEM certificate"},
		{"a certificate without its key is an error", config.Uplink{CertFile: garbage}, "without key_file"},
		{"an unreadable key pair is an error", config.Uplink{CertFile: garbage, KeyFile: garbage}, "cert_file/key_file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.URL = "mqtts://127.0.0.1:1"
			if _, err := tlsConfig(config.DefaultUplink(c.cfg, "gw")); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("tlsConfig: %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

// TestTheBridgeLogsInWithThePasswordConfigLoaded: config.Load reads
// password_file (config's TestUplinkPasswordIsLoadedOnceAndNeverPrinted);
// the bridge takes what it read and shows it nowhere.
func TestTheBridgeLogsInWithThePasswordConfigLoaded(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.ParseWith("edged.toml", []byte(fmt.Sprintf("[gateway]\nid = \"gw\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1\"\nusername = \"gw\"\npassword_file = %q\n", pw)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(pw); err != nil {
		t.Fatal(err)
	}
	br, err := testNew(*cfg.Uplink, nopBuffer{}, "gw", nopLocal{}, nil)
	if err != nil {
		t.Fatalf("New read the password file again: %v", err)
	}
	if br.password != "s3cret-value" {
		t.Errorf("password %q, want the file's first line without its newline", br.password)
	}
	if s := fmt.Sprintf("%+v", br.Stats()); strings.Contains(s, "s3cret") {
		t.Errorf("stats show the password: %s", s)
	}
}

func TestExplainNamesTheCause(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"a refused login", errors.New("not Authorized"), "not authorized"},
		{"a missing client certificate", errors.New("remote error: tls: certificate required"), "client certificate"},
		{"anything else is passed on", errors.New("dial tcp: connection refused"), "connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := explain(c.err); !strings.Contains(got, c.want) {
				t.Errorf("explain(%v) = %q, want it to contain %q", c.err, got, c.want)
			}
		})
	}
}

// TestNewRefusesUnsetLimits: an uplink config built in code without
// config's defaults is refused, not run with zero limits.
func TestNewRefusesUnsetLimits(t *testing.T) {
	_, err := New(config.Uplink{URL: "mqtt://127.0.0.1:1"}, nopBuffer{}, "gw", nopLocal{}, nil)
	if err == nil || !strings.Contains(err.Error(), "not set") {
		t.Fatalf("err = %v", err)
	}
}

package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// TestCheckRefusesWhatRunRefuses writes configs that `edged run` cannot
// start with and shows that `edged check` refuses each of them too, naming
// the file, the line and the key, and that run refuses it with the same
// words before opening anything.
func TestCheckRefusesWhatRunRefuses(t *testing.T) {
	dir := t.TempDir()
	ca := testpeer.NewCA(t, "check")
	server := ca.Server(t, "server")
	other := ca.Server(t, "other")
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	badUsers := filepath.Join(dir, "users")
	badACL := filepath.Join(dir, "acl")
	for path, text := range map[string]string{
		garbage:  "not a certificate\n",
		badUsers: "alice\n",
		badACL:   "topci read a/#\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tlsListener := func(cert, key, clientCA string) string {
		s := fmt.Sprintf("[[broker.listener]]\ntype = \"tls\"\naddress = \"127.0.0.1:%d\"\ncert_file = %q\nkey_file = %q\n",
			testpeer.Port(t, testpeer.FreePort(t)), cert, key)
		if clientCA != "" {
			s += fmt.Sprintf("client_ca_file = %q\n", clientCA)
		}
		return s
	}
	tcpListener := func(extra string) string {
		return fmt.Sprintf("[[broker.listener]]\naddress = \"127.0.0.1:%d\"\n%s", testpeer.Port(t, testpeer.FreePort(t)), extra)
	}
	httpServer := func(extra string) string {
		return fmt.Sprintf("[http]\naddress = \"127.0.0.1:%d\"\n%s", testpeer.Port(t, testpeer.FreePort(t)), extra)
	}
	uplink := func(extra string) string {
		return "[uplink]\nurl = \"mqtts://127.0.0.1:1\"\n" + extra
	}
	atModule := func(extra string) string {
		return "[[at]]\nname = \"a\"\nport = \"/dev/null\"\n" + extra
	}
	cases := []struct {
		name string
		body string
		want string // "LINE: key.path: words"
	}{
		{"a missing cert_file", tlsListener(missing, server.KeyFile, ""), "8: broker.listener[0].cert_file: cannot read"},
		{"a missing key_file", tlsListener(server.CertFile, missing, ""), "9: broker.listener[0].key_file: cannot read"},
		{"a directory as key_file", tlsListener(server.CertFile, dir, ""), "9: broker.listener[0].key_file: cannot read"},
		{"a missing client_ca_file", tlsListener(server.CertFile, server.KeyFile, missing), "10: broker.listener[0].client_ca_file: cannot read"},
		{"a cert_file that is not PEM", tlsListener(garbage, server.KeyFile, ""), "8: broker.listener[0].cert_file: "},
		{"a key_file that does not match cert_file", tlsListener(server.CertFile, other.KeyFile, ""), "9: broker.listener[0].key_file: "},
		{"a client_ca_file that holds no certificate", tlsListener(server.CertFile, server.KeyFile, garbage), "10: broker.listener[0].client_ca_file: "},
		{"a missing users_file", tcpListener(fmt.Sprintf("users_file = %q\n", missing)), "7: broker.listener[0].users_file: cannot read"},
		{"a malformed users_file", tcpListener(fmt.Sprintf("users_file = %q\n", badUsers)), "7: broker.listener[0].users_file: " + badUsers + ":1:"},
		{"a missing acl_file", tcpListener(fmt.Sprintf("acl_file = %q\n", missing)), "7: broker.listener[0].acl_file: cannot read"},
		{"a malformed acl_file", tcpListener(fmt.Sprintf("acl_file = %q\n", badACL)), "7: broker.listener[0].acl_file: " + badACL + ":1:"},
		{"a missing uplink ca_file", uplink(fmt.Sprintf("ca_file = %q\n", missing)), "7: uplink.ca_file: cannot read"},
		{"a missing uplink cert_file", uplink(fmt.Sprintf("cert_file = %q\nkey_file = %q\n", missing, server.KeyFile)), "7: uplink.cert_file: cannot read"},
		{"an uplink key_file that does not match", uplink(fmt.Sprintf("cert_file = %q\nkey_file = %q\n", server.CertFile, other.KeyFile)), "8: uplink.key_file: "},
		{"an uplink inflight beyond MQTT's packet ids", uplink("inflight = 65536\n"), "7: uplink.inflight: "},
		{"both uplink password and password_file", uplink(fmt.Sprintf("username = \"u\"\npassword = \"p\"\npassword_file = %q\n", server.KeyFile)), "9: uplink.password_file: set password or password_file, not both"},
		{"a missing uplink password_file", uplink(fmt.Sprintf("username = \"u\"\npassword_file = %q\n", missing)), "8: uplink.password_file: cannot read"},
		{"a missing http users_file", httpServer(fmt.Sprintf("users_file = %q\n", missing)), "7: http.users_file: cannot read"},
		{"a malformed http users_file", httpServer(fmt.Sprintf("users_file = %q\n", badUsers)), "7: http.users_file: " + badUsers + ":1:"},
		{"an http cert_file that is not PEM", httpServer(fmt.Sprintf("cert_file = %q\nkey_file = %q\n", garbage, server.KeyFile)), "7: http.cert_file: "},
		{"an http key_file that does not match", httpServer(fmt.Sprintf("cert_file = %q\nkey_file = %q\n", server.CertFile, other.KeyFile)), "8: http.key_file: "},
		{"max_inflight + max_queued beyond 65535", tcpListener("") + "[broker]\nmax_inflight = 60000\nmax_queued = 10000\n", "9: broker.max_queued: "},
		{"a max_packet_size of 8 bytes", tcpListener("") + "[broker]\nmax_packet_size = 8\n", "8: broker.max_packet_size: "},
		{"an AT init command of spaces only", atModule("init = [\"  \"]\n"), "8: at[0].init[0]: must not be empty"},
		{"an AT reset command with a NUL", atModule("reset = \"AT\\u0000\"\n"), "8: at[0].reset: must not contain a NUL character"},
		{"an AT query command longer than a command line", atModule("queries = [ { command = \"AT+" + strings.Repeat("X", 300) + "\" } ]\n"), "8: at[0].queries[0].command: is 303 bytes long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, fmt.Sprintf("[gateway]\nid = \"gw\"\nstate_dir = %q\n\n%s", t.TempDir(), c.body))
			want := path + ":" + c.want
			for _, cmd := range []string{"check", "run"} {
				out, code := runEdged(t, "", cmd, "-c", path)
				if code != 1 || !strings.Contains(out, want) {
					t.Errorf("edged %s: exit %d, want 1 with %q\n%s", cmd, code, want, out)
				}
			}
		})
	}
}

// TestAnEmptyListenerListOpensNoSocket runs edged with `listener = []`,
// documented as "opens none": it gets ready with the broker in-process only
// and logs no listening socket.
func TestAnEmptyListenerListOpensNoSocket(t *testing.T) {
	path := writeConfig(t, fmt.Sprintf("[gateway]\nid = \"gw\"\nstate_dir = %q\n\n[broker]\nlistener = []\n", t.TempDir()))
	out, code := runEdged(t, "", "check", "-c", path)
	if code != 0 || !strings.Contains(out, "0 listener(s)") {
		t.Fatalf("edged check: exit %d, want 0 with 0 listener(s)\n%s", code, out)
	}
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := startEdged(t, []string{"NOTIFY_SOCKET=" + sock}, "run", "-c", path)
	buf := make([]byte, 256)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for READY=1: %v\n%s", err, p.output())
		}
		if string(buf[:n]) == "READY=1" {
			break
		}
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d\n%s", code, p.output())
	}
	if strings.Contains(p.output(), "listening") {
		t.Fatalf("a listener was opened:\n%s", p.output())
	}
}

// TestAPortInUseIsNamedWithFileAndLine: the one listener mistake only run
// can see (another program holds the port) is reported like a config error,
// with the file, line and key.
func TestAPortInUseIsNamedWithFileAndLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	path := brokerConfig(t, l.Addr().String())
	out, code := runEdged(t, "", "run", "-c", path)
	want := path + ":8: broker.listener[0].address: cannot listen on " + l.Addr().String()
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "address already in use") {
		t.Fatalf("exit %d, want 1 with %q\n%s", code, want, out)
	}
}

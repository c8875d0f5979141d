package testpeer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// EtcEdged is a stand-in for /etc/edged: a temporary directory holding every
// file the shipped configs and the README's examples name there, each one
// valid, so that an example can be checked and run as written.
type EtcEdged struct {
	Dir string
	CA  *CA // signs server.pem, client.pem and the client certificates clients-ca.pem trusts
}

// The user and password in EtcEdged's users files.
const (
	EtcUser     = "alice"
	EtcPassword = "alice-secret"
	// etcUsersLine was written by `mosquitto_passwd -b FILE alice alice-secret`.
	etcUsersLine = "alice:$7$101$BK33jXLEoeCEmDpa$Db20TMDGqQgR1e1iC87DgLh5ZxBjj6aDnH5olmKMRNCPCbU9ZNuDvtw9aUuR4cW+qlnSxMPYdhH66a1mi1TRpQ=="
)

// NewEtcEdged writes ca.pem, clients-ca.pem, server.pem/.key, client.pem/.key,
// passwd, users and http.passwd (one user, EtcUser), acl, pw and uplink.pw.
func NewEtcEdged(t testing.TB) *EtcEdged {
	t.Helper()
	e := &EtcEdged{Dir: t.TempDir(), CA: NewCA(t, "etc-edged")}
	copyFile(t, e.CA.File, e.path("ca.pem"))
	copyFile(t, e.CA.File, e.path("clients-ca.pem"))
	server := e.CA.Server(t, "server")
	copyFile(t, server.CertFile, e.path("server.pem"))
	copyFile(t, server.KeyFile, e.path("server.key"))
	client := e.CA.Client(t, "client")
	copyFile(t, client.CertFile, e.path("client.pem"))
	copyFile(t, client.KeyFile, e.path("client.key"))
	for name, text := range map[string]string{
		"passwd":      etcUsersLine + "\n",
		"users":       etcUsersLine + "\n",
		"http.passwd": etcUsersLine + "\n",
		"acl":         "user " + EtcUser + "\ntopic readwrite #\n",
		"pw":          "uplink-secret\n",
		"uplink.pw":   "uplink-secret\n",
	} {
		if err := os.WriteFile(e.path(name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *EtcEdged) path(name string) string { return filepath.Join(e.Dir, name) }

// Rewrite replaces /etc/edged/ in a config text by the directory.
func (e *EtcEdged) Rewrite(text string) string {
	return strings.ReplaceAll(text, "/etc/edged/", e.Dir+"/")
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

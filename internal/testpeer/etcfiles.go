package testpeer

import (
	"os"
	"path/filepath"
	"regexp"
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
// passwd, users and http.passwd (one user, EtcUser), acl, pw, uplink.pw and
// device.key (a cloud's device key, base64).
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
		"device.key":  "c2VjcmV0LWRldmljZS1rZXktMDEyMzQ1Njc4OQ==\n", // base64, as clouds show device keys
	} {
		if err := os.WriteFile(e.path(name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *EtcEdged) path(name string) string { return filepath.Join(e.Dir, name) }

// etcNamed finds a key naming a file under /etc/edged/.
var etcNamed = regexp.MustCompile(`(\w+)\s*=\s*"/etc/edged/([^"/]+)"`)

// etcKinds says which of the files above stands in for a file of another
// name, by the key that names it.
var etcKinds = map[string]string{
	"ca_file":         "ca.pem",
	"client_ca_file":  "clients-ca.pem",
	"cert_file":       "client.pem", // with key_file, a matching pair
	"key_file":        "client.key",
	"users_file":      "users",
	"acl_file":        "acl",
	"password_file":   "pw",
	"device_key_file": "device.key",
}

// Rewrite replaces /etc/edged/ in a config text by the directory. A file
// the text names there under a name of its own (an example's
// "AmazonRootCA1.pem") is made from the file of its kind, by the key that
// names it; one named by a key it does not know is left missing, for the
// check to report. It may be called from a fuzz target.
func (e *EtcEdged) Rewrite(text string) string {
	for _, m := range etcNamed.FindAllStringSubmatch(text, -1) {
		key, name := m[1], m[2]
		kind, ok := etcKinds[key]
		if _, err := os.Stat(e.path(name)); err == nil || !ok {
			continue
		}
		if data, err := os.ReadFile(e.path(kind)); err == nil {
			_ = os.WriteFile(e.path(name), data, 0o600)
		}
	}
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

package tlsfiles_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/tlsfiles"
)

func TestErrorsNameTheFileAtFault(t *testing.T) {
	ca := testpeer.NewCA(t, "files")
	pair := ca.Server(t, "server")
	other := ca.Server(t, "other")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	pairs := []struct {
		name       string
		cert, key  string
		keyAtFault bool
		want       string // "" when it loads
	}{
		{"a matching pair loads", pair.CertFile, pair.KeyFile, false, ""},
		{"a missing certificate cannot be read", missing, pair.KeyFile, false, "cannot read " + missing + ": no such file or directory"},
		{"a certificate file without PEM holds no certificate", garbage, pair.KeyFile, false, garbage + ": no PEM certificate in it"},
		{"a key given as certificate holds no certificate", pair.KeyFile, pair.KeyFile, false, pair.KeyFile + ": no PEM certificate in it"},
		{"a missing key cannot be read", pair.CertFile, missing, true, "cannot read " + missing},
		{"another certificate's key does not match", pair.CertFile, other.KeyFile, true, other.KeyFile + ": tls: private key does not match public key"},
		{"a key file without PEM is the key's fault", pair.CertFile, garbage, true, garbage + ": tls:"},
	}
	for _, c := range pairs {
		t.Run(c.name, func(t *testing.T) {
			_, err := tlsfiles.LoadKeyPair(c.cert, c.key)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *tlsfiles.FileError
			if !errors.As(err, &fe) || fe.Key != c.keyAtFault || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("got %v (key at fault: %v), want %q (key at fault: %v)", err, fe != nil && fe.Key, c.want, c.keyAtFault)
			}
		})
	}

	t.Run("a CA bundle loads", func(t *testing.T) {
		if _, err := tlsfiles.LoadCAPool(ca.File); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a CA file without a certificate is an error, never an empty pool", func(t *testing.T) {
		if _, err := tlsfiles.LoadCAPool(garbage); err == nil || err.Error() != garbage+": no PEM certificate in it" {
			t.Fatalf("got %v", err)
		}
	})
}

package config

import (
	"testing"

	"github.com/edged/edged/internal/testpeer"
)

func TestHTTPIsOffUnlessAnAddressIsGiven(t *testing.T) {
	c, err := parseTest(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Address != "" || c.HTTP.AllowAnonymous != nil {
		t.Errorf("http = %+v, want off", c.HTTP)
	}
}

func TestHTTPAccessDefaults(t *testing.T) {
	etc := testpeer.NewEtcEdged(t)
	for _, c := range []struct {
		text string
		anon bool
	}{
		{"[http]\naddress = \"127.0.0.1:8080\"\n", true},
		{"[http]\naddress = \"localhost:8080\"\n", true},
		{"[http]\naddress = \"[::1]:8080\"\nusers_file = \"/etc/edged/passwd\"\n", false},
		{"[http]\naddress = \"0.0.0.0:8080\"\nusers_file = \"/etc/edged/passwd\"\n", false},
		{"[http]\naddress = \"0.0.0.0:8080\"\nallow_anonymous = true\n", true},
	} {
		// The users file is read: /etc/edged/ is a directory of the test's.
		cfg, err := parseTest(t, etc.Rewrite(c.text))
		if err != nil {
			t.Errorf("%q: %v", c.text, err)
			continue
		}
		if *cfg.HTTP.AllowAnonymous != c.anon {
			t.Errorf("%q: allow_anonymous = %v, want %v", c.text, *cfg.HTTP.AllowAnonymous, c.anon)
		}
	}
}

func TestHTTPMistakesNameTheKey(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "a LAN address without users_file or allow_anonymous is refused",
			text: "[http]\naddress = \"0.0.0.0:8080\"\n",
			want: []string{`edged.toml:2: http.address: "0.0.0.0:8080" is not loopback: set users_file (requests log in) or allow_anonymous = true (anyone on the network may read the gateway's state)`},
		},
		{
			name: "an address that is not host:port is refused",
			text: "[http]\naddress = \"8080\"\n",
			want: []string{`edged.toml:2: http.address: "8080" is not host:port (e.g. "127.0.0.1:8080")`},
		},
		{
			name: "a certificate needs its key",
			text: "[http]\naddress = \"127.0.0.1:8443\"\ncert_file = \"/etc/edged/http.pem\"\n",
			want: []string{`edged.toml:1: http.key_file: missing (cert_file and key_file go together for HTTPS)`},
		},
		{
			name: "keys without an address are pointed out",
			text: "[http]\nusers_file = \"/etc/edged/passwd\"\n",
			want: []string{`edged.toml:2: http.users_file: is set, but http.address is not: the server is off`},
		},
		{
			name: "the broker's port is not the server's",
			text: "[[broker.listener]]\ntype = \"ws\"\n[http]\naddress = \"127.0.0.1:8080\"\n",
			want: []string{`edged.toml:4: http.address: "127.0.0.1:8080" overlaps broker.listener[0].address (same port 8080)`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := errorLines(t, c.text)
			if len(got) != len(c.want) {
				t.Fatalf("errors:\n  %s\nwant:\n  %s", join(got), join(c.want))
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("error %d:\n got %s\nwant %s", i, got[i], c.want[i])
				}
			}
		})
	}
}

package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUplinkDeadLinkAndDeadLetterKeys(t *testing.T) {
	got := errorLines(t, `[uplink]
url = "mqtt://127.0.0.1:1883"
ack_timeout = "0s"
dead_letter_after = 0
`)
	want := []string{
		"edged.toml:3: uplink.ack_timeout: must be longer than 0s",
		"edged.toml:4: uplink.dead_letter_after: 0 is out of range 1..100",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestUplinkPasswordIsLoadedOnceAndNeverPrinted: config reads
// password_file while it validates (its trailing line breaks dropped, as an
// editor or echo leaves one) and the bridge logs in with what config read; a
// printed config shows neither the file's password nor an inline one.
func TestUplinkPasswordIsLoadedOnceAndNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, uplink, want string
	}{
		{"a file ending in a newline", "password_file = %q\n", "s3cret pass"},
		{"an inline password", `password = "inline-pw"` + "\n", "inline-pw"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pw := filepath.Join(dir, "pw")
			if err := os.WriteFile(pw, []byte("s3cret pass\r\n\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			up := c.uplink
			if strings.Contains(up, "%q") {
				up = fmt.Sprintf(up, pw)
			}
			cfg, err := parseTest(t, "[uplink]\nurl = \"mqtt://127.0.0.1:1883\"\nusername = \"gw\"\n"+up)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(cfg.Uplink.LoginPassword); got != c.want {
				t.Errorf("login password %q, want %q", got, c.want)
			}
			for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
				if s := fmt.Sprintf(format, *cfg.Uplink); strings.Contains(s, "s3cret") {
					t.Errorf("%s of the uplink config shows the file's password: %s", format, s)
				}
				if s := fmt.Sprintf(format, cfg.Uplink.LoginPassword); strings.Contains(s, c.want) {
					t.Errorf("%s of the login password shows it: %s", format, s)
				}
			}
		})
	}
}

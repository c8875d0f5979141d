package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

func TestUsersFileFromMosquittoPasswdAndACL(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "passwd")
	testpeer.MosquittoPasswd(t, users, "alice", "s3cret")
	testpeer.MosquittoPasswd(t, users, "bob", "hunter2")
	acl := filepath.Join(dir, "acl")
	rules := "user alice\ntopic readwrite alice/#\n\nuser bob\ntopic read #\n"
	if err := os.WriteFile(acl, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultBroker(config.Broker{Listeners: []config.Listener{loadFiles(t, config.Listener{Address: "127.0.0.1:0", UsersFile: users, ACLFile: acl})}})
	b, addr := startBroker(t, cfg, "")
	h, p := hostPort(t, addr)
	pub := func(args ...string) (string, error) {
		return testpeer.MosquittoPub(t, append([]string{"-h", h, "-p", p, "-q", "1"}, args...)...)
	}

	logins := []struct {
		name string
		args []string
		ok   bool
	}{
		{"the right password is accepted", []string{"-u", "alice", "-P", "s3cret"}, true},
		{"a wrong password is refused", []string{"-u", "alice", "-P", "guess"}, false},
		{"a missing password is refused", []string{"-u", "alice"}, false},
		{"an unknown user is refused", []string{"-u", "mallory", "-P", "s3cret"}, false},
		{"an anonymous client is refused", nil, false},
	}
	refused := uint64(0)
	for _, c := range logins {
		t.Run(c.name, func(t *testing.T) {
			out, err := pub(append(c.args, "-t", "alice/x", "-m", "hi")...)
			if c.ok && err != nil {
				t.Fatalf("refused: %v: %s", err, out)
			}
			if !c.ok {
				refused++
				if err == nil {
					t.Fatalf("accepted: %s", out)
				}
				if !strings.Contains(strings.ToLower(out), "not authori") && !strings.Contains(strings.ToLower(out), "bad user name or password") {
					t.Errorf("mosquitto_pub said %q", out)
				}
			}
		})
	}
	if got, _ := b.Stats().RefusedLogins, 0; got != refused {
		t.Errorf("Stats.RefusedLogins = %d, want %d", got, refused)
	}

	t.Run("the ACL delivers what it allows and withholds what it denies", func(t *testing.T) {
		sub := testpeer.StartMosquittoSub(t, "-h", h, "-p", p, "-u", "bob", "-P", "hunter2", "-q", "1", "-t", "#")
		// mochi disconnects an MQTT 3 publisher the ACL denies at QoS 1 (it
		// has no negative PUBACK), so mosquitto_pub may report an error here.
		_, _ = pub("-u", "alice", "-P", "s3cret", "-t", "other/x", "-m", "denied")
		if out, err := pub("-u", "alice", "-P", "s3cret", "-t", "alice/x", "-m", "allowed"); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
		// Messages from one publisher arrive in order: had the denied one
		// been delivered, it would come first.
		if got := sub.Next(t, 5*time.Second); got != "alice/x allowed" {
			t.Fatalf("bob got %q", got)
		}
		if _, acl := b.auth.Refused(); acl == 0 {
			t.Error("no ACL refusal counted")
		}
	})
}

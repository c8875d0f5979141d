package mqttauth

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/telemetry"
)

const authTableACL = `# anonymous clients
topic read public/#
topic deny public/secret

user alice
topic readwrite alice/#
topic write sensors/+/temp
topic deny alice/private/#
topic sensors/shared

user bob
topic read #

pattern readwrite clients/%c/#
pattern read users/%u/#
pattern deny clients/%c/locked
`

func TestACLDecisions(t *testing.T) {
	acl, err := LoadACL(authTempFile(t, "acl", authTableACL))
	if err != nil {
		t.Fatal(err)
	}
	const R, W = false, true
	cases := []struct {
		name            string
		id, user, topic string
		write, want     bool
	}{
		{"an anonymous client reads what the rules before any user line grant", "c", "", "public/news", R, true},
		{"an anonymous client cannot write a read-only topic", "c", "", "public/news", W, false},
		{"an anonymous client is denied a topic with a deny rule", "c", "", "public/secret", R, false},
		{"an anonymous client may subscribe to a filter inside its grant", "c", "", "public/+", R, true},
		{"a wide subscription is granted when part of it is readable", "c", "", "#", R, true},
		{"a subscription wholly covered by a deny rule is refused", "c", "", "public/secret", R, false},
		{"a subscription outside every grant is refused", "c", "", "other/#", R, false},
		{"a user writes under its readwrite rule", "c", "alice", "alice/x", W, true},
		{"a user reads under its readwrite rule", "c", "alice", "alice/x", R, true},
		{"deny wins over readwrite", "c", "alice", "alice/private/diary", R, false},
		{"deny wins for writes too", "c", "alice", "alice/private/diary", W, false},
		{"a subscription only partly denied is granted", "c", "alice", "alice/#", R, true},
		{"a write-only rule allows publishing", "c", "alice", "sensors/a/temp", W, true},
		{"a write-only rule does not allow reading", "c", "alice", "sensors/a/temp", R, false},
		{"'+' matches exactly one level", "c", "alice", "sensors/a/b/temp", W, false},
		{"a rule without access word is readwrite for reading", "c", "alice", "sensors/shared", R, true},
		{"a rule without access word is readwrite for writing", "c", "alice", "sensors/shared", W, true},
		{"a named user does not get the anonymous rules", "c", "alice", "public/news", R, false},
		{"an unknown user gets only patterns", "c", "mallory", "public/news", R, false},
		{"'#' grants reading anything", "c", "bob", "x/y/z", R, true},
		{"a read rule does not grant writing", "c", "bob", "x/y", W, false},
		{"'#' does not match $SYS topics", "c", "bob", "$SYS/broker/uptime", R, false},
		{"'#' does not grant a $SYS subscription", "c", "bob", "$SYS/#", R, false},
		{"%c gives a client its own subtree", "dev1", "", "clients/dev1/state", W, true},
		{"%c does not give another client's subtree", "dev1", "", "clients/dev2/state", W, false},
		{"a deny pattern wins over a readwrite pattern", "dev1", "", "clients/dev1/locked", W, false},
		{"%u gives a user its own subtree", "c", "alice", "users/alice/inbox", R, true},
		{"%u does not give another user's subtree", "c", "alice", "users/bob/inbox", R, false},
		{"%u does not apply to anonymous clients", "c", "", "users//inbox", R, false},
		{"a shared subscription is judged by its filter", "c", "alice", "$share/g/alice/#", R, true},
		{"a shared subscription outside the grants is refused", "c", "alice", "$share/g/public/#", R, false},
		{"a malformed shared subscription is refused", "c", "alice", "$share/g", R, false},
		{"an empty topic is refused", "c", "bob", "", R, false},
		// CVE-2017-7650: a client id or user name with wildcards must not
		// widen a pattern.
		{"client id '+' does not read other clients' subtrees", "+", "bob2", "clients/dev1/state", R, false},
		{"client id '#' does not subscribe to every client's subtree", "#", "bob2", "clients/#", R, false},
		{"client id with '/' does not reach a deeper subtree", "dev1/x", "bob2", "clients/dev1/x/state", W, false},
		{"user name '+' does not read other users' subtrees", "c", "+", "users/alice/inbox", R, false},
		{"user name '#' does not read other users' subtrees", "c", "#", "users/alice/inbox", R, false},
		{"a deny pattern with an unsafe client id denies everything", "+", "", "public/news", R, false},
		{"a normal client keeps its access beside such names", "dev9", "", "public/news", R, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := acl.Allowed(c.id, c.user, c.topic, c.write); got != c.want {
				t.Fatalf("Allowed(id %q, user %q, %q, write=%v) = %v, want %v", c.id, c.user, c.topic, c.write, got, c.want)
			}
		})
	}
}

// TestEmptyACLDeniesEverything guards against CVE-2018-12550: an ACL file
// without rules once meant that everything was allowed.
func TestEmptyACLDeniesEverything(t *testing.T) {
	for name, text := range map[string]string{
		"an empty file denies everything":               "",
		"a file of comments denies everything":          "# nothing here\n\n   # indented\n",
		"a file with only a user line denies that user": "user alice\n",
	} {
		t.Run(name, func(t *testing.T) {
			acl, err := LoadACL(authTempFile(t, "acl", text))
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range []string{"", "alice"} {
				for _, w := range []bool{false, true} {
					for _, topic := range []string{"a", "a/b", "#", "$SYS/x"} {
						if acl.Allowed("c", u, topic, w) {
							t.Fatalf("Allowed(%q, %q, write=%v) = true", u, topic, w)
						}
					}
				}
			}
		})
	}
	var nilACL *ACL
	if nilACL.Allowed("c", "u", "a", false) {
		t.Fatal("a nil *ACL allowed a read")
	}
}

func TestMalformedACLLinesAreErrors(t *testing.T) {
	cases := []struct{ name, line, want string }{
		{"an unknown keyword", "topik read a", `unknown keyword "topik"`},
		{"a user line without a name", "user", "user line without a user name"},
		{"a topic line without a filter", "topic read", "missing topic filter"},
		{"a bare topic keyword", "topic", "missing topic filter"},
		{"'#' not at the end", "topic read a/#/b", "invalid topic filter"},
		{"'+' inside a level", "topic read a/b+", "invalid topic filter"},
		{"a pattern with a bad filter", "pattern write %c/#x", "invalid topic filter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := authTempFile(t, "acl", "# first\n"+c.line+"\n")
			_, err := LoadACL(path)
			if err == nil || !strings.Contains(err.Error(), path+":2: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v does not name %s:2 and say %q", err, path, c.want)
			}
		})
	}
	t.Run("a missing file is an error", func(t *testing.T) {
		if _, err := LoadACL(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestACLFilterRelations(t *testing.T) {
	cases := []struct {
		rule, filter       string
		covers, intersects bool
	}{
		{"a/b", "a/b", true, true},
		{"a/+", "a/b", true, true},
		{"a/#", "a", true, true},
		{"a/#", "a/b/c", true, true},
		{"a/b", "a/+", false, true},
		{"a/b/c", "a/#", false, true},
		{"a/#", "a/+/#", true, true},
		{"a/+/#", "a/#", false, true},
		{"a/+", "a/#", false, true},
		{"+/+", "a", false, false},
		{"a/b", "a/c", false, false},
		{"#", "$SYS/x", false, false},
		{"+/x", "$SYS/x", false, false},
		{"$SYS/#", "$SYS/x", true, true},
		{"#", "#", true, true},
		{"a//b", "a/+/b", false, true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("rule %s and filter %s", c.rule, c.filter), func(t *testing.T) {
			if got := aclCovers(c.rule, c.filter); got != c.covers {
				t.Errorf("covers = %v, want %v", got, c.covers)
			}
			if got := aclIntersects(c.rule, c.filter); got != c.intersects {
				t.Errorf("intersects = %v, want %v", got, c.intersects)
			}
		})
	}
}

const authCompareACL = `# anonymous clients
topic read public/#
topic read marker/#

user admin
topic readwrite #

user alice
topic read marker/#
topic readwrite alice/#
topic write sensors/#
topic deny sensors/secret

user bob
topic read marker/#
topic read sensors/#
topic deny sensors/secret

user +
topic read marker/#

pattern readwrite clients/%c/#
pattern read inbox/%u
`

// authMessages returns "topic payload" lines, skipping mosquitto_sub's -d lines.
func authMessages(c *testpeer.Output) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(c.String()))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "Client ") || strings.HasPrefix(l, "Subscribed ") || l == "" {
			continue
		}
		out = append(out, l)
	}
	return out
}

// TestACLMatchesMosquitto loads one ACL file into real Mosquitto and into
// ACL, and checks that both decide the same for a set of reads and writes,
// including the CVE-2017-7650 client ids and user names.
func TestACLMatchesMosquitto(t *testing.T) {
	subBin := testpeer.Need(t, "mosquitto_sub", "mosquitto-clients")
	pubBin := testpeer.Need(t, "mosquitto_pub", "mosquitto-clients")
	dir := t.TempDir()
	aclPath, pwPath := filepath.Join(dir, "acl"), filepath.Join(dir, "users")
	for _, u := range []string{"admin", "alice", "bob", "+"} {
		if err := SetPassword(pwPath, u, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(aclPath, []byte(authCompareACL), 0o600); err != nil {
		t.Fatal(err)
	}
	acl, err := LoadACL(aclPath)
	if err != nil {
		t.Fatal(err)
	}
	m := testpeer.StartMosquitto(t, "user root\npassword_file "+pwPath+"\nacl_file "+aclPath)
	port := strconv.Itoa(testpeer.Port(t, m.Addr))
	auth := func(user string) []string {
		if user == "" {
			return nil
		}
		return []string{"-u", user, "-P", "pw"}
	}
	pub := func(t *testing.T, id, user, topic, payload string, retain bool) {
		t.Helper()
		args := append([]string{"-h", "127.0.0.1", "-p", port, "-q", "1", "-i", id, "-t", topic, "-m", payload}, auth(user)...)
		if retain {
			args = append(args, "-r")
		}
		if out, err := exec.Command(pubBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub %v: %v: %s", args, err, out)
		}
	}
	// sub starts mosquitto_sub on '#'. Its -d output is block-buffered in a
	// pipe, so readiness is learnt from a marker message, not from SUBACK.
	sub := func(t *testing.T, id, user string) (*testpeer.Output, func()) {
		t.Helper()
		out := &testpeer.Output{}
		args := append([]string{"-h", "127.0.0.1", "-p", port, "-q", "1", "-i", id, "-t", "#", "-v", "-d"}, auth(user)...)
		cmd := exec.Command(subBin, args...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
		t.Cleanup(stop)
		return out, stop
	}
	// awaitMarker publishes marker until the subscriber prints it: then the
	// subscription is active and everything the broker sent before it has
	// been printed.
	awaitMarker := func(t *testing.T, out *testpeer.Output, marker string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			pub(t, "admin-pub", "admin", marker, "m", false)
			wait := time.Now().Add(300 * time.Millisecond)
			for time.Now().Before(wait) {
				for _, l := range authMessages(out) {
					if strings.HasPrefix(l, marker+" ") {
						return
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			if time.Now().After(deadline) {
				t.Fatalf("marker %s never arrived; subscriber printed:\n%s\nmosquitto log:\n%s", marker, out, m.Log())
			}
		}
	}

	t.Run("reads of retained messages agree", func(t *testing.T) {
		topics := []string{"public/news", "sensors/temp", "sensors/secret", "alice/notes", "clients/dev1/state", "inbox/bob"}
		for _, tp := range topics {
			pub(t, "admin-pub", "admin", tp, "r", true)
		}
		readers := []struct{ name, id, user string }{
			{"an anonymous client", "anon1", ""},
			{"bob with client id dev1", "dev1", "bob"},
			{"alice", "a1", "alice"},
			{"an anonymous client with client id '+'", "+", ""},
			{"an anonymous client with client id '#'", "#", ""},
			{"the user named '+'", "p1", "+"},
		}
		for i, r := range readers {
			t.Run(r.name, func(t *testing.T) {
				out, stop := sub(t, r.id, r.user)
				awaitMarker(t, out, "marker/"+strconv.Itoa(i))
				stop()
				got := map[string]bool{}
				for _, l := range authMessages(out) {
					got[strings.SplitN(l, " ", 2)[0]] = true
				}
				for _, tp := range topics {
					if want := acl.Allowed(r.id, r.user, tp, false); got[tp] != want {
						t.Errorf("%s: mosquitto delivered=%v, ACL.Allowed=%v", tp, got[tp], want)
					}
				}
			})
		}
	})

	t.Run("writes agree", func(t *testing.T) {
		out, stop := sub(t, "admin-sub", "admin")
		defer stop()
		awaitMarker(t, out, "marker/ready")
		writes := []struct{ id, user, topic string }{
			{"a1", "alice", "sensors/temp"},
			{"a1", "alice", "sensors/secret"},
			{"a1", "alice", "alice/x"},
			{"a1", "alice", "public/x"},
			{"a1", "alice", "clients/a1/x"},
			{"a1", "alice", "clients/dev1/x"},
			{"dev1", "bob", "sensors/temp"},
			{"dev1", "bob", "clients/dev1/x"},
			{"anon2", "", "public/x"},
			{"anon2", "", "clients/anon2/x"},
		}
		for i, w := range writes {
			pub(t, w.id, w.user, w.topic, "w"+strconv.Itoa(i), false)
		}
		awaitMarker(t, out, "marker/writes")
		got := map[string]bool{}
		for _, l := range authMessages(out) {
			got[l] = true
		}
		for i, w := range writes {
			arrived := got[w.topic+" w"+strconv.Itoa(i)]
			if want := acl.Allowed(w.id, w.user, w.topic, true); arrived != want {
				t.Errorf("%s (id %s) publishing %s: mosquitto let through=%v, ACL.Allowed=%v", w.user, w.id, w.topic, arrived, want)
			}
		}
	})
}

func FuzzLoadACL(f *testing.F) {
	f.Add([]byte(authTableACL), "dev1", "alice", "clients/dev1/x", true)
	f.Add([]byte(authCompareACL), "+", "+", "#", false)
	f.Add([]byte(""), "", "", "a", false)
	f.Add([]byte("topic\nuser\npattern deny\ntopic read a/#/b\n"), "c", "", "$share/g/a", false)
	f.Add([]byte("pattern %u/%c/#\n"), "a/b", "#", "x/+/y", false)
	f.Fuzz(func(t *testing.T, data []byte, id, user, topic string, write bool) {
		acl, err := ParseACL("fuzz", data)
		if err != nil {
			return
		}
		ok := acl.Allowed(id, user, topic, write)
		if len(acl.anon) == 0 && len(acl.byUser) == 0 && len(acl.patterns) == 0 && ok {
			t.Fatal("an ACL without rules allowed something")
		}
		// For a plain topic, "covers" and "intersects" must agree.
		if _, err := telemetry.ParseFilter(topic); err == nil && !strings.ContainsAny(topic, "+#") {
			for _, r := range acl.anon {
				if aclCovers(r.filter, topic) != aclIntersects(r.filter, topic) {
					t.Fatalf("rule %q and topic %q: covers and intersects disagree", r.filter, topic)
				}
			}
		}
	})
}

// BenchmarkACLAllowed measures one ACL check, the broker's cost per delivery
// to a subscriber on a listener with an ACL.
func BenchmarkACLAllowed(b *testing.B) {
	acl, err := ParseACL("bench", []byte(authTableACL))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !acl.Allowed("dev1", "alice", "sensors/shared", false) {
			b.Fatal("refused")
		}
	}
}

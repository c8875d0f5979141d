package mqttauth

import (
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// authSHA512Line builds a Mosquitto 1.x "$6$" line by hand. Mosquitto 1.x
// (pw__digest in mosquitto_passwd.c) hashes the password bytes followed by
// the raw salt bytes with one SHA-512, and writes base64(salt) and
// base64(digest). This is computed here with crypto/sha512 directly, not
// through the package's own hashing; TestSHA512LinesAreAcceptedByMosquitto
// shows that real Mosquitto agrees with it.
func authSHA512Line(user, password string, salt []byte) string {
	sum := sha512.Sum512(append([]byte(password), salt...))
	return user + ":$6$" + base64.StdEncoding.EncodeToString(salt) + "$" + base64.StdEncoding.EncodeToString(sum[:])
}

var authSalt = []byte("edged-salt12") // 12 bytes, like mosquitto_passwd's

func authTempFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsersFromMosquittoPasswd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	testpeer.MosquittoPasswd(t, path, "alice", "secret")
	testpeer.MosquittoPasswd(t, path, "bob", "p:w d$7$")
	u, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 2 {
		t.Fatalf("Len = %d, want 2", u.Len())
	}
	cases := []struct {
		name, user, password string
		want                 bool
	}{
		{"the right password is accepted", "alice", "secret", true},
		{"a password with colon, space and dollar is accepted", "bob", "p:w d$7$", true},
		{"a wrong password is refused", "alice", "Secret", false},
		{"a missing password is refused", "alice", "", false},
		{"another user's password is refused", "bob", "secret", false},
		{"an unknown user is refused", "carol", "secret", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := u.Check(c.user, c.password); got != c.want {
				t.Fatalf("Check(%q, %q) = %v, want %v", c.user, c.password, got, c.want)
			}
		})
	}
}

func TestSHA512Lines(t *testing.T) {
	path := authTempFile(t, "users", "# made by mosquitto 1.x\n\n"+authSHA512Line("carol", "old-pass", authSalt)+"\r\n")
	u, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Check("carol", "old-pass") {
		t.Fatal("the right password is refused")
	}
	if u.Check("carol", "old-pas") || u.Check("carol", "") {
		t.Fatal("a wrong password is accepted")
	}
}

func TestMalformedUserLinesAreErrors(t *testing.T) {
	good := authSHA512Line("ok", "pw", authSalt)
	h7 := "$7$101$" + base64.StdEncoding.EncodeToString(authSalt) + "$" + base64.StdEncoding.EncodeToString(make([]byte, 64))
	cases := []struct{ name, line, want string }{
		{"a line with only a user name", "mallory", "no ':'"},
		{"a user with an empty hash", "mallory:", "has no password hash"},
		{"a hash without a user", ":" + h7, "empty user name"},
		{"a plain-text password", "mallory:secret", "does not start with $6$ or $7$"},
		{"an unknown scheme", "mallory:$5$abc$def", "does not start with $6$ or $7$"},
		{"a $7$ hash with too few fields", "mallory:$7$101$abc", "is not $7$<iterations>"},
		{"a $7$ hash with zero iterations", "mallory:$7$0$" + strings.TrimPrefix(h7, "$7$101$"), "iteration count"},
		{"a $7$ hash with a non-number for iterations", "mallory:$7$x$" + strings.TrimPrefix(h7, "$7$101$"), "iteration count"},
		{"a salt that is not base64", "mallory:$7$101$!!!$" + base64.StdEncoding.EncodeToString(make([]byte, 64)), "salt is not valid base64"},
		{"a hash that is too short", "mallory:$6$" + base64.StdEncoding.EncodeToString(authSalt) + "$AAAA", "is 3 bytes, want 64"},
		{"a user defined twice", good, "defined twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := authTempFile(t, "users", good+"\n"+c.line+"\n")
			u, err := LoadUsers(path)
			if err == nil {
				t.Fatalf("loaded %d users, want an error", u.Len())
			}
			if !strings.Contains(err.Error(), path+":2: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %s:2 and say %q", err, path, c.want)
			}
		})
	}
	t.Run("every bad line is reported at once", func(t *testing.T) {
		path := authTempFile(t, "users", "a\nb\n"+good+"\nc:\n")
		_, err := LoadUsers(path)
		for _, n := range []string{":1: ", ":2: ", ":4: "} {
			if err == nil || !strings.Contains(err.Error(), path+n) {
				t.Fatalf("error %v does not name line %s", err, n)
			}
		}
	})
}

func TestEmptyUsersFileHasNoUsers(t *testing.T) {
	u, err := LoadUsers(authTempFile(t, "users", ""))
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 0 || u.Check("", "") || u.Check("alice", "") {
		t.Fatal("an empty file accepted someone")
	}
}

func TestSetPassword(t *testing.T) {
	t.Run("a new file is created with mode 0600", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "users")
		if err := SetPassword(path, "alice", "secret"); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, want 0600", st.Mode().Perm())
		}
		data, _ := os.ReadFile(path)
		if !strings.HasPrefix(string(data), "alice:$7$101$") {
			t.Fatalf("file %q is not in mosquitto_passwd's $7$ format", data)
		}
		u, err := LoadUsers(path)
		if err != nil || !u.Check("alice", "secret") {
			t.Fatalf("the written password does not verify (err %v)", err)
		}
	})
	t.Run("an existing user is updated and other lines are kept", func(t *testing.T) {
		old := "# users\n" + authSHA512Line("bob", "b", authSalt) + "\n" + authSHA512Line("alice", "old", authSalt) + "\n"
		path := authTempFile(t, "users", old)
		if err := SetPassword(path, "alice", "new"); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(lines) != 3 || lines[0] != "# users" || lines[1] != authSHA512Line("bob", "b", authSalt) || !strings.HasPrefix(lines[2], "alice:$7$") {
			t.Fatalf("file is now %q", data)
		}
		u, err := LoadUsers(path)
		if err != nil {
			t.Fatal(err)
		}
		if !u.Check("alice", "new") || u.Check("alice", "old") || !u.Check("bob", "b") {
			t.Fatal("passwords after update are wrong")
		}
	})
	t.Run("a new user is appended", func(t *testing.T) {
		path := authTempFile(t, "users", authSHA512Line("bob", "b", authSalt)) // no final newline
		if err := SetPassword(path, "carol", "c"); err != nil {
			t.Fatal(err)
		}
		u, err := LoadUsers(path)
		if err != nil || !u.Check("carol", "c") || !u.Check("bob", "b") {
			t.Fatalf("after append: err %v", err)
		}
	})
	t.Run("bad user names and passwords are refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "users")
		for _, c := range [][2]string{{"", "x"}, {"a:b", "x"}, {"a\nb", "x"}, {"a", ""}, {"a", "x\ny"}} {
			if err := SetPassword(path, c[0], c[1]); err == nil {
				t.Errorf("SetPassword(%q, %q) succeeded", c[0], c[1])
			}
		}
		if _, err := os.Stat(path); err == nil {
			t.Error("a refused call created the file")
		}
	})
}

// TestPasswordFilesWorkInMosquitto shows that what SetPassword writes and the
// $6$ formula used above are what real Mosquitto accepts.
func TestPasswordFilesWorkInMosquitto(t *testing.T) {
	pub := testpeer.Need(t, "mosquitto_pub", "mosquitto-clients")
	path := filepath.Join(t.TempDir(), "users")
	if err := SetPassword(path, "alice", "s3cret pass"); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(authSHA512Line("carol", "old-pass", authSalt) + "\n")
	_ = f.Close()
	// "user root": started as root, mosquitto would otherwise drop to its
	// own user, which cannot read the test's private temporary directory.
	m := testpeer.StartMosquitto(t, "user root\nallow_anonymous false\npassword_file "+path)
	port := testpeer.Port(t, m.Addr)
	cases := []struct {
		name, user, password string
		ok                   bool
	}{
		{"the password SetPassword wrote is accepted", "alice", "s3cret pass", true},
		{"a wrong password for that user is refused", "alice", "s3cret", false},
		{"the hand-made $6$ line is accepted", "carol", "old-pass", true},
		{"a wrong password for the $6$ user is refused", "carol", "old-pas", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := exec.Command(pub, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-u", c.user, "-P", c.password,
				"-t", "t", "-m", "x").CombinedOutput()
			if (err == nil) != c.ok {
				t.Fatalf("mosquitto_pub: err %v, output %s; want ok=%v\nmosquitto log:\n%s", err, out, c.ok, m.Log())
			}
		})
	}
}

func FuzzLoadUsers(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("# comment\n\n"))
	f.Add([]byte(authSHA512Line("carol", "pw", authSalt) + "\n"))
	f.Add([]byte("alice:$7$101$JqDIptdqIB7qG9ze$Mjnf5GoEDfZeKItWU1SRLK7sPWU5O6f3MqT5FLgPyY5FvdipHT1Ek3FIQ0chCuydte9dJ0etKn4o3+woeD0UkQ==\n"))
	f.Add([]byte("alice\n:x\nb:$7$$$\nc:$6$$\n"))
	f.Add([]byte("a:$7$99999999999999999999$AA==$AA==\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseUsers("fuzz", data)
		if err != nil {
			if u != nil {
				t.Fatal("error with users")
			}
			return
		}
		for name, e := range u.byName {
			if name == "" || len(e.hash) != pwHashLen || len(e.salt) == 0 {
				t.Fatalf("accepted a malformed entry for %q", name)
			}
		}
		if len(u.byName) == 0 && u.Check("", "") {
			t.Fatal("empty users accepted a login")
		}
	})
}

// TestSetPasswordReplacesTheFileWhole changes a password many times while
// another goroutine reads the file: every read finds a whole users file
// (both users), never an empty or half-written one, because the new file
// is written beside the old one and renamed over it.
func TestSetPasswordReplacesTheFileWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	for _, u := range []string{"alice", "bob"} {
		if err := SetPassword(path, u, "first"); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	bad := make(chan string, 1)
	reads := 0
	go func() {
		defer close(bad)
		for {
			select {
			case <-done:
				return
			default:
			}
			data, err := os.ReadFile(path)
			reads++
			if err != nil {
				bad <- err.Error()
				return
			}
			if u, err := ParseUsers(path, data); err != nil || u.Len() != 2 {
				bad <- fmt.Sprintf("read %q (%v)", data, err)
				return
			}
		}
	}()
	for i := range 30 {
		if err := SetPassword(path, "bob", fmt.Sprintf("pass-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if why, ok := <-bad; ok {
		t.Fatalf("a reader saw an incomplete users file: %s", why)
	}
	u, err := LoadUsers(path)
	if err != nil || !u.Check("bob", "pass-29") || !u.Check("alice", "first") {
		t.Fatalf("after the changes: %v", err)
	}
	t.Logf("%d reads during 30 changes", reads)
}

// TestAFailedWriteLeavesTheOldFileAndNoTemporary makes the rename fail (the
// target is a directory) and finds the directory as it was: no temporary
// file left behind.
func TestAFailedWriteLeavesTheOldFileAndNoTemporary(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "users")
	if err := os.MkdirAll(filepath.Join(target, "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := pwWriteAtomic(target, []byte("alice:x\n"), 0o600); err == nil {
		t.Fatal("renaming over a directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "users" || !entries[0].IsDir() {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only users/", names)
	}
}

// TestSetPasswordKeepsTheFileMode keeps a mode the administrator chose and
// creates a new file readable by its owner only.
func TestSetPasswordKeepsTheFileMode(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh")
	if err := SetPassword(fresh, "alice", "a"); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(dir, "kept")
	if err := os.WriteFile(kept, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(kept, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(kept, "alice", "a"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{fresh: 0o600, kept: 0o640} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", filepath.Base(path), st.Mode().Perm(), err, want)
		}
	}
}

// TestSetPasswordRemovesWhatACrashedRunLeft: an `edged passwd` killed (or
// cut off by a power cut) between creating its temporary file and renaming
// it leaves .users.tmp-* behind; the power-cut suite saw one or two per 20
// cuts, and nothing removed them. The next write removes those older than
// a minute and leaves a fresh one, which may be a run still going.
func TestSetPasswordRemovesWhatACrashedRunLeft(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	stale, fresh := filepath.Join(dir, ".users.tmp-111"), filepath.Join(dir, ".users.tmp-222")
	other := filepath.Join(dir, ".acl.tmp-333") // another file's: not ours to remove
	for _, p := range []string{stale, fresh, other} {
		if err := os.WriteFile(p, []byte("alice:"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{stale, other} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := SetPassword(path, "bob", "secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a crashed run's temporary file older than a minute is still there (%v)", err)
	}
	for _, p := range []string{fresh, other, path} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
		}
	}
}

//go:build faults

package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// CutsEnv sets how many power cuts TestPowerCut simulates.
const CutsEnv = "EDGED_POWERCUT_CUTS"

// A cut is one way the power goes: each ends with edged dead and LazyFS's
// unsynced writes gone, and says whether the fault it armed went off.
type cut struct {
	name string
	do   func(r *Rig, lz *testpeer.LazyFS) (fired bool)
}

var cuts = []cut{
	// edged is killed while publishers are being acknowledged (the link
	// up or down at random), then the cache is thrown away.
	{"while-committing", func(r *Rig, lz *testpeer.LazyFS) bool {
		r.SetLink(r.Rand.IntN(2) == 0)
		stop := r.Publish()
		time.Sleep(r.Between(30*time.Millisecond, 400*time.Millisecond)) // a random moment
		r.Edged.Kill()
		stop()
		lz.ClearCache(r.T)
		return true
	}},
	// a backlog builds with the link down; the link comes back and edged is
	// killed while it drains (once the first message arrived upstream),
	// then the cache is thrown away. Fired: the drain had begun.
	{"while-draining", func(r *Rig, lz *testpeer.LazyFS) bool {
		r.Link.Cut()
		r.PublishFor(r.Between(100*time.Millisecond, 400*time.Millisecond))
		r.Link.Restore()
		draining := r.AwaitArrival(5 * time.Second)
		time.Sleep(r.Between(0, 200*time.Millisecond)) // a random moment of the drain
		r.Edged.Kill()
		lz.ClearCache(r.T)
		return draining
	}},
	// the next write of the WAL or of the database is torn: some of its
	// parts reach the disk, then the power goes.
	{"torn-write", func(r *Rig, lz *testpeer.LazyFS) bool {
		file := "state/buffer.db-wal"
		if r.Rand.IntN(3) == 0 {
			file = "state/buffer.db"
		}
		parts := 2 + r.Rand.IntN(3)
		return armedCut(r, lz, func() { lz.TearNextWrite(r.T, file, parts, somePartsOf(r, parts)) })
	}},
	// of the next run of WAL writes without an fsync, only some reach the
	// disk (later ones before earlier ones), then the power goes.
	{"reordered-writes", func(r *Rig, lz *testpeer.LazyFS) bool {
		return armedCut(r, lz, func() { lz.ReorderNextWrites(r.T, "state/buffer.db-wal", somePartsOf(r, 4)) })
	}},
	// the power goes right at a write or an fsync of the buffer: in the
	// middle of a commit.
	{"mid-commit", func(r *Rig, lz *testpeer.LazyFS) bool {
		op, timing := "write", "after"
		if r.Rand.IntN(2) == 0 {
			op, timing = "fsync", "before"
		}
		return armedCut(r, lz, func() { lz.CrashAt(r.T, timing, op, `state/buffer\.db`) })
	}},
}

// armedCut publishes, arms a LazyFS fault at a random moment and waits up to
// a second for it to go off; then edged is killed and LazyFS restarted, so
// the cache is lost whether or not the fault fired.
func armedCut(r *Rig, lz *testpeer.LazyFS, arm func()) bool {
	r.SetLink(r.Rand.IntN(2) == 0)
	stop := r.Publish()
	time.Sleep(r.Between(20*time.Millisecond, 200*time.Millisecond)) // a random moment
	arm()
	fired := false
	select {
	case <-lz.Crashed():
		fired = true
	case <-time.After(time.Second):
	}
	r.Edged.Kill()
	stop()
	lz.Remount(r.T)
	return fired
}

// somePartsOf picks a random proper, non-empty subset of 1..n, in order.
func somePartsOf(r *Rig, n int) []int {
	var keep []int
	for len(keep) == 0 || len(keep) == n {
		keep = keep[:0]
		for i := 1; i <= n; i++ {
			if r.Rand.IntN(2) == 0 {
				keep = append(keep, i)
			}
		}
	}
	return keep
}

// TestPowerCut runs edged with its state directory on LazyFS through many
// simulated power cuts — at random moments while it commits and while it
// drains, with torn and reordered writes and a cut in the middle of a
// commit — restarting it after each, and then checks that every message it
// acknowledged reached the upstream broker.
func TestPowerCut(t *testing.T) {
	lz, r := powerCutRig(t)
	state := r.StateDir
	durability := os.Getenv(DurabilityEnv)
	n := envInt(t, CutsEnv, 60)
	done, fired := map[string]int{}, map[string]int{}
	for range n {
		r.Start()
		c := cuts[r.Rand.IntN(len(cuts))]
		done[c.name]++
		if c.do(r, lz) {
			fired[c.name]++
		}
	}
	err := r.Drain(2 * time.Minute)
	if durability == "" {
		durability = "default"
	}
	var kinds []string
	for name, k := range done {
		kinds = append(kinds, fmt.Sprintf("%s %d (fired %d)", name, k, fired[name]))
	}
	sort.Strings(kinds)
	aside, _ := filepath.Glob(filepath.Join(state, "*.corrupt-*"))
	f := r.Report("powercut", fmt.Sprintf("durability %s, cuts %d [%s], files set aside as corrupt %d",
		durability, n, strings.Join(kinds, ", "), len(aside)))
	if err != nil {
		t.Error(err)
	}
	if f.Lost > 0 {
		t.Errorf("%d acknowledged messages lost over %d power cuts", f.Lost, n)
	}
}

// TestPowerCutLeavesTheUsersFileOldOrNew cuts the power while `edged passwd`
// changes a user's password, and right after it says it has: the users file
// must then hold the old content or the new, never an empty or torn file —
// and the new one once edged passwd has said so.
func TestPowerCutLeavesTheUsersFileOldOrNew(t *testing.T) {
	lz := testpeer.StartLazyFS(t)
	file := filepath.Join(lz.Dir, "users")
	old := "bob:$7$101$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 86) + "==\n"
	writeSynced(t, file, old)
	rnd := Random(t)
	rounds := envInt(t, "EDGED_POWERCUT_PASSWD_ROUNDS", 20)
	counts := map[string]int{}
	var took time.Duration // how long edged passwd ran in the last full round
	for i := range rounds {
		before := readFile(t, file)
		cmd := passwdCmd(edgedBin, file, "alice", fmt.Sprintf("secret-%d", i))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		finished := make(chan error, 1)
		go func() { finished <- cmd.Wait() }()
		// Even rounds let edged passwd finish and time it; odd rounds cut
		// at a random moment within that time.
		said := false
		if i%2 == 1 {
			select {
			case <-time.After(Between(rnd, 0, took)):
				_ = cmd.Process.Kill()
				said = <-finished == nil
			case err := <-finished:
				said = err == nil
			}
		} else {
			start := time.Now()
			select {
			case err := <-finished:
				if err != nil {
					t.Fatalf("edged passwd: %v", err)
				}
				said, took = true, time.Since(start)
			case <-time.After(30 * time.Second):
				t.Fatal("edged passwd did not finish within 30s")
			}
		}
		lz.ClearCache(t)
		after := readFile(t, file)
		switch {
		case after == before && said:
			t.Errorf("round %d: edged passwd said the password was set, but after the power cut the file is the old one", i)
			counts["old after success"]++
		case after == before:
			counts["old"]++
		case validUsers(after, before, "alice"):
			counts["new"]++
		default:
			t.Errorf("round %d: after the power cut the users file is neither the old nor a new one:\n%q", i, after)
			counts["torn or empty"]++
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(lz.Dir, ".users.tmp-*"))
	t.Logf("FIGURES passwd: rounds %d, old %d, new %d, old after success %d, torn or empty %d, temporary files left %d",
		rounds, counts["old"], counts["new"], counts["old after success"], counts["torn or empty"], len(leftovers))
}

// validUsers reports whether got is before with user's line added or
// replaced by a well-formed $7$ entry, every other line unchanged.
func validUsers(got, before, user string) bool {
	if got == "" || !strings.HasSuffix(got, "\n") {
		return false
	}
	var others []string
	for _, l := range strings.Split(strings.TrimSuffix(before, "\n"), "\n") {
		if !strings.HasPrefix(l, user+":") {
			others = append(others, l)
		}
	}
	var rest []string
	entries := 0
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if strings.HasPrefix(l, user+":") {
			entries++
			if !wellFormedEntry(strings.TrimPrefix(l, user+":")) {
				return false
			}
			continue
		}
		rest = append(rest, l)
	}
	return entries == 1 && slices.Equal(rest, others)
}

// wellFormedEntry checks a mosquitto_passwd $7$ hash: $7$iterations$salt$hash.
func wellFormedEntry(h string) bool {
	f := strings.Split(h, "$")
	return len(f) == 5 && f[0] == "" && f[1] == "7" && f[2] != "" && len(f[3]) >= 16 && len(f[4]) == 88
}

// writeSynced writes a file and makes it durable (data and directory entry).
func writeSynced(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// passwdCmd is `edged passwd file user` with the password on standard input.
func passwdCmd(bin, file, user, password string) *exec.Cmd {
	cmd := exec.Command(bin, "passwd", file, user)
	cmd.Stdin = strings.NewReader(password + "\n")
	return cmd
}

// TestPowerCutKeepsRetainedMessages replaces the retained QoS 1 message
// of five topics each cycle, waits for every PUBACK, then cuts the power at
// once or a little later: every topic must come back with its latest value,
// as a retained message published at QoS 1 is on disk before its PUBACK.
func TestPowerCutKeepsRetainedMessages(t *testing.T) {
	lz, r := powerCutRig(t)
	const topics = 5
	cycles := envInt(t, "EDGED_POWERCUT_RETAINED_CYCLES", 10)
	counts := map[string]int{}
	for i := range cycles {
		r.Start()
		want := fmt.Sprintf("cycle-%d", i)
		for k := range topics {
			if err := publishAcked(r.Edged.Listen, "faults-retain", fmt.Sprintf("gw/retained/%d", k), []byte(want), true); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
		}
		time.Sleep(r.Between(0, 500*time.Millisecond)) // cut at once or a little later
		r.Edged.Kill()
		lz.ClearCache(t)
		r.Start()
		got, err := Retained(r.Edged.Listen, "faults-retain-check", "gw/retained/#", 300*time.Millisecond)
		if err != nil {
			t.Fatalf("cycle %d: reading retained messages: %v", i, err)
		}
		for k := range topics {
			switch v, ok := got[fmt.Sprintf("gw/retained/%d", k)]; {
			case !ok:
				counts["none"]++
			case v == want:
				counts["latest"]++
			default:
				counts["older"]++
			}
		}
		r.Edged.Kill()
	}
	t.Logf("FIGURES retained: %d power cuts x %d topics: latest %d, older %d, none %d",
		cycles, topics, counts["latest"], counts["older"], counts["none"])
	if counts["latest"] != cycles*topics {
		t.Errorf("%d of %d acknowledged retained messages did not survive the power cut", cycles*topics-counts["latest"], cycles*topics)
	}
}

// TestPowerCutKeepsPersistentSubscriptions subscribes a client with a
// persistent session, cuts the power once the SUBACK came (at once or a
// little later), and checks that the session is still there after the
// restart: the broker says so in CONNACK and delivers a new message on the
// subscribed topic.
func TestPowerCutKeepsPersistentSubscriptions(t *testing.T) {
	lz, r := powerCutRig(t)
	rounds := envInt(t, "EDGED_POWERCUT_SESSION_ROUNDS", 10)
	kept := 0
	for i := range rounds {
		r.Start()
		id, topic := fmt.Sprintf("faults-session-%d", i), fmt.Sprintf("gw/session/%d", i)
		c, _, err := dialSession(r.Edged.Listen, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := subscribe(c, topic); err != nil {
			t.Fatal(err)
		}
		time.Sleep(r.Between(0, 300*time.Millisecond)) // cut at once or a little later
		r.Edged.Kill()
		c.Close()
		lz.ClearCache(t)
		r.Start()
		c, present, err := dialSession(r.Edged.Listen, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := publishAcked(r.Edged.Listen, "faults-session-pub", topic, []byte("after the cut"), false); err != nil {
			t.Fatal(err)
		}
		pub, err := nextMessage(c, 5*time.Second)
		c.Close()
		switch {
		case present && err == nil && string(pub.Payload) == "after the cut":
			kept++
		default:
			t.Errorf("round %d: after the power cut the session of %s is gone (session present %v, message: %v)", i, id, present, err)
		}
		r.Edged.Kill()
	}
	t.Logf("FIGURES sessions: %d power cuts after a SUBACK: subscription kept %d, lost %d", rounds, kept, rounds-kept)
}

// powerCutRig mounts LazyFS and makes a rig whose state directory is on it.
func powerCutRig(t *testing.T) (*testpeer.LazyFS, *Rig) {
	t.Helper()
	lz := testpeer.StartLazyFS(t)
	state := filepath.Join(lz.Dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	return lz, NewRig(t, Options{Bin: edgedBin, StateDir: state, Durability: os.Getenv(DurabilityEnv), Pace: 2 * time.Millisecond})
}

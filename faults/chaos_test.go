//go:build faults

package faults

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// TestChaos is the repeatable fault suite: each scenario on a fresh rig,
// each printing its figures. EDGED_CHAOS_KILLS and EDGED_CHAOS_SOAK size
// the kill loop and the flapping soak.
func TestChaos(t *testing.T) {
	t.Run("kill-loop", chaosKillLoop)
	t.Run("flapping-link", chaosFlappingLink)
	t.Run("damaged-buffer", chaosDamagedBuffer)
	t.Run("tiny-partition", chaosTinyPartition)
}

func chaosRig(t *testing.T, state string, o Options) *Rig {
	o.Bin, o.StateDir, o.Durability = edgedBin, state, os.Getenv(DurabilityEnv)
	if o.Pace == 0 {
		o.Pace = 2 * time.Millisecond
	}
	return NewRig(t, o)
}

// failOnLoss fails the test when the drain ended early or lost messages
// the README promises to keep.
func failOnLoss(t *testing.T, f Figures, drain error) {
	t.Helper()
	if drain != nil {
		t.Error(drain)
	}
	if f.Lost > 0 {
		t.Errorf("%d acknowledged messages lost", f.Lost)
	}
}

// chaosKillLoop kills edged with SIGKILL at random moments while it takes
// publishes, the uplink coming and going, and restarts it each time. One
// stop in four is a SIGTERM right after the link drops (cut or blackholed)
// instead, which must end edged with status 0 within the 5 s the README
// promises.
func chaosKillLoop(t *testing.T) {
	r := chaosRig(t, t.TempDir(), Options{})
	kills := envInt(t, "EDGED_CHAOS_KILLS", 60)
	terms, unclean := 0, 0
	for range kills {
		r.Start()
		r.SetLink(r.Rand.IntN(2) == 0)
		stop := r.Publish()
		time.Sleep(r.Between(50*time.Millisecond, 400*time.Millisecond)) // a random moment
		switch {
		case r.Rand.IntN(4) == 0:
			if r.Rand.IntN(2) == 0 {
				r.Link.Cut()
			} else {
				r.Link.Blackhole()
			}
			time.Sleep(r.Between(0, 100*time.Millisecond)) // shortly after the drop
			terms++
			if err := r.Edged.Stop(5 * time.Second); err != nil {
				unclean++
				t.Errorf("SIGTERM after an uplink drop: %v", err)
			}
		case r.Rand.IntN(3) == 0:
			r.SetLink(r.Rand.IntN(2) == 0)
			time.Sleep(r.Between(0, 200*time.Millisecond))
			fallthrough
		default:
			r.Edged.Kill()
		}
		stop()
	}
	err := r.Drain(2 * time.Minute)
	f := r.Report("kill-loop", fmt.Sprintf("stops %d (SIGTERM %d, of which unclean %d)", kills, terms, unclean))
	failOnLoss(t, f, err)
}

// chaosFlappingLink publishes without pause while the uplink is cut,
// blackholed (silent, connections left open) and restored at random for the
// soak's length, then measures how long edged takes to deliver the rest.
// edged runs with its default max_backoff here, as a device would.
func chaosFlappingLink(t *testing.T) {
	soak := envDuration(t, "EDGED_CHAOS_SOAK", time.Minute)
	r := chaosRig(t, t.TempDir(), Options{DefaultBackoff: true})
	r.Start()
	stop := r.Publish()
	flaps := map[string]int{}
	for end := time.Now().Add(soak); time.Now().Before(end); {
		switch r.Rand.IntN(3) {
		case 0:
			r.Link.Cut()
			flaps["cut"]++
		case 1:
			r.Link.Blackhole()
			flaps["blackhole"]++
		default:
			r.Link.Restore()
			flaps["up"]++
		}
		time.Sleep(r.Between(500*time.Millisecond, 4*time.Second)) // how long the link stays so
	}
	if failed := stop(); failed > 0 {
		t.Errorf("publishers were disconnected %d times while only the uplink flapped", failed)
	}
	start := time.Now()
	err := r.Drain(2 * time.Minute)
	f := r.Report("flapping-link", fmt.Sprintf("soak %v, cut %d, blackholed %d, up %d, drained %v after the link came back",
		soak, flaps["cut"], flaps["blackhole"], flaps["up"], time.Since(start).Round(100*time.Millisecond)))
	failOnLoss(t, f, err)
}

// A damage is one way a buffer file gets spoiled while edged is down:
// file is buffer.db, its WAL or its shared-memory index; killed says edged
// was stopped with SIGKILL (the backlog still in the WAL) rather than
// SIGTERM (checkpointed into buffer.db).
type damage struct {
	name   string
	file   string
	killed bool
	do     func(path string) error
}

var damages = []damage{
	{"truncated-by-1234-bytes", "buffer.db", false, truncateBy(1234)},
	{"truncated-to-0", "buffer.db", false, func(path string) error { return os.Truncate(path, 0) }},
	{"garbage-page", "buffer.db", false, garbagePage},
	{"header-zeroed", "buffer.db", false, func(path string) error { return overwrite(path, 0, make([]byte, 100)) }},
	{"all-garbage", "buffer.db", false, allGarbage},
	{"deleted", "buffer.db", false, os.Remove},
	{"wal-truncated-by-1234-bytes", "buffer.db-wal", true, truncateBy(1234)},
	{"wal-garbage-page", "buffer.db-wal", true, garbagePage},
	{"wal-deleted", "buffer.db-wal", true, os.Remove},
	{"shm-garbage", "buffer.db-shm", true, allGarbage},
}

func truncateBy(n int64) func(string) error {
	return func(path string) error {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		return os.Truncate(path, max(0, st.Size()-n))
	}
}

// garbagePage overwrites a 4 KiB page in the middle of the file with
// random bytes.
func garbagePage(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	page := make([]byte, 4096)
	_, _ = rand.Read(page)
	return overwrite(path, (st.Size()/4096/2)*4096, page)
}

// allGarbage replaces every byte of the file with random ones.
func allGarbage(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	b := make([]byte, st.Size())
	_, _ = rand.Read(b)
	return overwrite(path, 0, b)
}

func overwrite(path string, off int64, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// chaosDamagedBuffer builds a backlog with the uplink down, stops edged,
// damages a buffer file and starts edged again with the uplink up. What the
// damage destroyed is counted, not promised; what is published after it
// must all arrive: a damaged file must never stall the uplink.
func chaosDamagedBuffer(t *testing.T) {
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			state := t.TempDir()
			r := chaosRig(t, state, Options{})
			r.Start()
			r.Link.Cut()
			r.PublishFor(time.Second)
			if d.killed {
				r.Edged.Kill()
			} else if err := r.Edged.Stop(10 * time.Second); err != nil {
				t.Error(err)
			}
			if err := d.do(filepath.Join(state, d.file)); err != nil {
				t.Fatalf("damaging %s: %v", d.file, err)
			}
			r.SetTopics("after")
			r.Start()
			r.Link.Restore()
			r.PublishFor(time.Second)
			drain := r.Drain(time.Minute)
			before, after := r.Ledger.FiguresOf("gw/seq/t"), r.Ledger.FiguresOf("gw/seq/after")
			aside, _ := filepath.Glob(filepath.Join(state, "buffer.db.corrupt-*"))
			t.Logf("FIGURES damaged-buffer/%s before the damage: %s", d.name, before)
			t.Logf("FIGURES damaged-buffer/%s after the damage: set aside %d file(s), %s", d.name, len(aside), after)
			if after.Lost > 0 {
				t.Errorf("%d messages acknowledged after the damage were lost: %v", after.Lost, drain)
			}
		})
	}
}

// chaosTinyPartition gives edged an 8 MiB ext4 partition: it publishes as
// fast as edged acknowledges with the uplink down until the disk is full,
// goes on with the uplink up, and counts what edged refused in each phase;
// everything it acknowledged must arrive.
func chaosTinyPartition(t *testing.T) {
	if os.Geteuid() != 0 {
		testpeer.Unavailable(t, "the tiny partition is a loop-mounted ext4 file system: run as root")
	}
	mkfs := testpeer.Need(t, "mkfs.ext4", "e2fsprogs")
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "part.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		testpeer.Unavailable(t, fmt.Sprintf("cannot loop-mount a partition: %v %s", err, strings.TrimSpace(string(out))))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })

	r := chaosRig(t, mnt, Options{Pace: time.Nanosecond /* as fast as acknowledged */, Size: 256, Reconnect: true, Topics: 2})
	r.Start()
	r.SetTopics("down")
	r.Link.Cut()
	r.PublishFor(envDuration(t, "EDGED_CHAOS_FILL", 15*time.Second))
	full := usage(mnt)
	r.SetTopics("up")
	r.Link.Restore()
	r.PublishFor(10 * time.Second)
	err := r.Drain(2 * time.Minute)
	down, up := r.Ledger.FiguresOf("gw/seq/down"), r.Ledger.FiguresOf("gw/seq/up")
	t.Logf("FIGURES tiny-partition uplink down: refused %d of %d, %s; disk when full: %s",
		down.Published-down.Acknowledged, down.Published, down, full)
	t.Logf("FIGURES tiny-partition uplink up: refused %d of %d, %s", up.Published-up.Acknowledged, up.Published, up)
	failOnLoss(t, r.Report("tiny-partition", ""), err)
}

// usage describes a file system's fill and the files in its state
// directory, e.g. "7.1 of 7.7 MiB used; buffer.db 1.2 MiB, buffer.db-wal 5.9 MiB".
func usage(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err.Error()
	}
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	total := int64(st.Blocks) * st.Bsize
	used := total - int64(st.Bfree)*st.Bsize
	var files []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			files = append(files, e.Name()+" "+mib(info.Size()))
		}
	}
	sort.Strings(files)
	return fmt.Sprintf("%s of %s used; %s", mib(used), mib(total), strings.Join(files, ", "))
}

// envDuration reads a duration from the environment, or def when unset.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a duration such as 90s", name, v)
	}
	return d
}

package buffer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edged/edged/telemetry"
)

// mountTmpfs mounts a small tmpfs for a full-disk test, or skips the test
// when this environment cannot mount one (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("full-disk test needs a small tmpfs and mounting one failed (needs root/CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func TestDiskFull(t *testing.T) {
	for _, p := range []Policy{DropOldest, Reject} {
		t.Run("a full disk refuses appends with ErrFull under "+p.String()+" and keeps what was stored", func(t *testing.T) {
			dir := mountTmpfs(t, "8m")
			path := filepath.Join(dir, "buffer.db")
			// No max_bytes: the disk is the only bound.
			b, err := Open(Options{Path: path, WhenFull: p})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()

			payload := make([]byte, 1000)
			accepted := 0
			var full error
			for i := range 20000 {
				m := telemetry.Message{Topic: "t", Payload: fmt.Appendf(payload[:0:0], "%d %s", i, payload), QoS: 1}
				if err := b.Append(context.Background(), m); err != nil {
					full = err
					break
				}
				accepted++
			}
			if !errors.Is(full, ErrFull) {
				t.Fatalf("after %d appends on an 8 MiB disk: err = %v, want ErrFull", accepted, full)
			}
			if accepted == 0 {
				t.Fatal("nothing fitted at all")
			}
			t.Logf("%d appends of ~1 KB fitted in 8 MiB (1 MiB of it the reserve), then: %v", accepted, full)
			// Refused again, not a one-off.
			big := telemetry.Message{Topic: "t", Payload: payload, QoS: 1}
			if err := b.Append(context.Background(), big); !errors.Is(err, ErrFull) {
				t.Errorf("second append on a full disk: %v, want ErrFull", err)
			}
			st := b.Stats()
			if st.Rejected < 2 || st.Messages != int64(accepted) || st.DroppedFull != 0 {
				t.Errorf("Stats = %+v; want >= 2 rejected, %d stored, none dropped", st, accepted)
			}

			es := readAll(t, b)
			if len(es) != accepted {
				t.Fatalf("%d accepted, %d readable", accepted, len(es))
			}
			for i, e := range es {
				var n int
				fmt.Sscanf(string(e.Msg.Payload), "%d", &n)
				if n != i {
					t.Fatalf("entry %d holds message %d", i, n)
				}
			}

			// Acks still work on a full disk, and free room for new appends.
			var seqs []int64
			for _, e := range es[:accepted/2] {
				seqs = append(seqs, e.Seq)
			}
			if err := b.Ack(seqs...); err != nil {
				t.Fatalf("Ack on a full disk: %v", err)
			}
			if err := b.Append(context.Background(), big); err != nil {
				t.Fatalf("Append after acks freed room: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Logf("Close on a full disk: %v", err)
			}

			b2, err := Open(Options{Path: path})
			if err != nil {
				t.Fatalf("reopen on the full disk: %v", err)
			}
			defer b2.Close()
			if n := len(readAll(t, b2)); n != accepted-accepted/2+1 {
				t.Fatalf("after reopen %d entries, want %d", n, accepted-accepted/2+1)
			}
		})
	}
}

func TestDiskFullCycles(t *testing.T) {
	t.Run("a buffer that filled the disk keeps working through repeated fill and drain cycles", func(t *testing.T) {
		dir := mountTmpfs(t, "8m")
		b := openT(t, Options{Path: filepath.Join(dir, "buffer.db"), WhenFull: Reject})
		payload := make([]byte, 1000)
		after := int64(0)
		for cycle := range 4 {
			accepted := 0
			for i := range 20000 {
				err := b.Append(context.Background(), telemetry.Message{Topic: "t", Payload: fmt.Appendf(payload[:0:0], "%d %s", i, payload)})
				if errors.Is(err, ErrFull) {
					break
				}
				if err != nil {
					t.Fatalf("cycle %d append %d: %v", cycle, i, err)
				}
				accepted++
			}
			if accepted == 0 {
				t.Fatalf("cycle %d: nothing accepted after the previous drain", cycle)
			}
			es, err := b.Read(after, 100000)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != accepted {
				t.Fatalf("cycle %d: %d accepted, %d stored", cycle, accepted, len(es))
			}
			var seqs []int64
			for _, e := range es {
				seqs = append(seqs, e.Seq)
			}
			if err := b.Ack(seqs...); err != nil {
				t.Fatalf("cycle %d: Ack: %v", cycle, err)
			}
			after = seqs[len(seqs)-1]
			t.Logf("cycle %d: %d appends accepted, all acked", cycle, accepted)
		}
	})
}

package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edged/edged/telemetry"
)

// mountSmallExt4 makes a real ext4 file system of size bytes in an image
// file and loop-mounts it, as a Pi's small state partition would be. It
// skips the test where that cannot be done (not root, no loop device, no
// mkfs.ext4): a tmpfs behaves differently on a full disk (no journal, no
// block groups), so it is no stand-in.
func mountSmallExt4(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("small-partition test needs root to loop-mount an ext4 image")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("small-partition test needs mkfs.ext4 (e2fsprogs)")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "state.img"), filepath.Join(dir, "state")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("small-partition test could not loop-mount an ext4 image: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// kilobyteMsg is message i with a 1 KB payload.
func kilobyteMsg(i int) telemetry.Message {
	p := make([]byte, 1000)
	return telemetry.Message{Topic: "pi-01/meter1/wave", Payload: fmt.Appendf(p[:0], "%d %s", i, p[:990]), QoS: 1}
}

// fill appends 1 KB messages from i on until one is refused; it returns how
// many were accepted and the refusal.
func fill(t *testing.T, b *Buffer, from int) (int, error) {
	t.Helper()
	for i := from; i < from+100000; i++ {
		if err := b.Append(context.Background(), kilobyteMsg(i)); err != nil {
			if !errors.Is(err, ErrFull) {
				t.Fatalf("append %d: %v", i, err)
			}
			return i - from, err
		}
	}
	t.Fatal("100 000 messages of 1 KB fitted on a small partition")
	return 0, nil
}

// drainAll acknowledges everything stored.
func drainAll(t *testing.T, b *Buffer) int {
	t.Helper()
	n := 0
	for {
		es, err := b.Read(0, 256)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return n
		}
		seqs := make([]int64, len(es))
		for i, e := range es {
			seqs[i] = e.Seq
		}
		if err := b.Ack(seqs...); err != nil {
			t.Fatalf("ack on a small partition: %v", err)
		}
		n += len(es)
	}
}

func TestSmallPartition(t *testing.T) {
	const size = 8 << 20

	t.Run("an 8 MiB partition holds most of its size in messages, not in the WAL", func(t *testing.T) {
		dir := mountSmallExt4(t, size)
		rec := &logRecorder{}
		b := openT(t, Options{Path: filepath.Join(dir, "buffer.db"), Log: slog.New(rec)})
		n, err := fill(t, b, 0)
		free, _ := freeBytes(dir)
		wal, _ := os.Stat(filepath.Join(dir, "buffer.db-wal"))
		t.Logf("%d messages of 1 KB fitted (WAL %d bytes, %d bytes free), then: %v", n, wal.Size(), free, err)
		if n < 4000 {
			t.Errorf("only %d messages of 1 KB fitted on an 8 MiB partition (about 6 MB free to the user), want at least 4000", n)
		}
		if got := rec.count(slog.LevelWarn, "max_bytes") + rec.count(slog.LevelError, "max_bytes"); got != 0 {
			t.Errorf("%d log lines blame max_bytes for a full disk", got)
		}
		if rec.count(slog.LevelError, "disk full") != 1 {
			t.Errorf("want one error line saying the disk is full")
		}
	})

	t.Run("while the uplink keeps up, nothing is refused on an 8 MiB partition", func(t *testing.T) {
		dir := mountSmallExt4(t, size)
		b := openT(t, Options{Path: filepath.Join(dir, "buffer.db")})
		// Lock-step: never more than 100 messages (100 KB) stored, 10 MB
		// through an 8 MiB partition.
		for round := range 100 {
			for i := range 100 {
				if err := b.Append(context.Background(), kilobyteMsg(round*100+i)); err != nil {
					t.Fatalf("round %d: message %d refused with at most 100 KB stored: %v", round, i, err)
				}
			}
			drainAll(t, b)
		}
		wal, _ := os.Stat(filepath.Join(dir, "buffer.db-wal"))
		t.Logf("10 000 messages through, WAL %d bytes", wal.Size())
	})

	t.Run("a buffer that filled the partition accepts messages again as soon as acknowledgements make room", func(t *testing.T) {
		dir := mountSmallExt4(t, size)
		rec := &logRecorder{}
		b := openT(t, Options{Path: filepath.Join(dir, "buffer.db"), Log: slog.New(rec)})
		first, _ := fill(t, b, 0)
		for cycle := range 2 {
			if n := drainAll(t, b); n == 0 {
				t.Fatalf("cycle %d: nothing to drain", cycle)
			}
			again, err := fill(t, b, 0)
			t.Logf("cycle %d: %d accepted after the drain (first fill %d), then %v", cycle, again, first, err)
			if again < first*3/4 {
				t.Errorf("cycle %d: after draining everything only %d fitted, where %d did at first", cycle, again, first)
			}
		}
		if rec.count(slog.LevelWarn, "accepting messages again") == 0 {
			t.Error("no log line says the buffer accepts messages again")
		}
	})
}

func TestPlanForSizesToThePartition(t *testing.T) {
	for _, c := range []struct {
		name                 string
		total                int64
		wantWAL, wantReserve int64
	}{
		{"an unknown size gets the roomy disk's limits", 0, 16 << 20, 1 << 20},
		{"an 8 MiB partition keeps a 128 KiB WAL and a 256 KiB reserve", 8 << 20, 128 << 10, 256 << 10},
		{"a 64 MiB partition keeps a 1 MiB WAL and reserve", 64 << 20, 1 << 20, 1 << 20},
		{"a 32 GiB card keeps SQLite's WAL up to 16 MiB", 32 << 30, 16 << 20, 1 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := planFor(c.total)
			if p.walLimit != c.wantWAL || p.reserve != c.wantReserve || p.batchBytes != p.walLimit/2 {
				t.Errorf("planFor(%d) = %+v, want WAL %d, reserve %d", c.total, p, c.wantWAL, c.wantReserve)
			}
		})
	}
}

package buffer

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestCrash(t *testing.T) {
	for _, dur := range []string{PowerLossUnsafe.String(), Full.String()} {
		t.Run("every append acknowledged before a SIGKILL is there after reopening with "+dur+" durability", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), helperEnv+"=crash", helperPathEnv+"="+path, helperDurEnv+"="+dur)
			cmd.Stderr = os.Stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Bound everything: a helper that hangs is killed anyway.
			guard := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
			defer guard.Stop()

			const killAfter = 2000
			acked := map[int]int{} // goroutine -> highest acknowledged index
			lines := 0
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var g, i int
				if _, err := fmt.Sscanf(sc.Text(), "%d %d", &g, &i); err != nil {
					continue // a line cut by the kill
				}
				if prev, ok := acked[g]; ok && i != prev+1 {
					t.Fatalf("helper printed %d %d after %d", g, i, prev)
				}
				acked[g] = i
				lines++
				if lines == killAfter {
					// Mid-stream: the helper's appenders are all busy.
					cmd.Process.Kill()
				}
			}
			err = cmd.Wait()
			if lines < killAfter {
				t.Fatalf("helper acknowledged only %d appends before exiting (%v)", lines, err)
			}
			t.Logf("%d appends acknowledged before the kill landed", lines)

			b := openT(t, Options{Path: path})
			next := map[int]int{}
			for _, e := range readAll(t, b) {
				var g, i int
				if _, err := fmt.Sscanf(e.Msg.Topic, "g/%d", &g); err != nil {
					t.Fatalf("unexpected topic %q", e.Msg.Topic)
				}
				if _, err := fmt.Sscanf(string(e.Msg.Payload), "%d", &i); err != nil {
					t.Fatalf("unexpected payload %q", e.Msg.Payload)
				}
				if i != next[g] {
					t.Fatalf("goroutine %d: stored %d where %d was expected (lost or reordered)", g, i, next[g])
				}
				next[g]++
			}
			for g, last := range acked {
				if next[g] <= last {
					t.Errorf("goroutine %d: acknowledged up to %d, stored only up to %d", g, last, next[g]-1)
				}
			}
		})
	}
}

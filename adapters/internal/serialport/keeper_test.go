package serialport

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/liveness"
)

func TestKeepOpenReopensAVanishedPortAndClosesTheOldOne(t *testing.T) {
	pair := testpeer.StartPtyPair(t)
	mode := PortMode(config.SerialPort{Baud: 9600, Parity: "N", DataBits: 8, StopBits: 1})
	var mu sync.Mutex
	var states []bool
	got := make(chan string, 16)
	session := func(ctx context.Context, c *Conn) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case b, ok := <-c.Data:
				if !ok {
					return c.Err()
				}
				got <- string(b)
			}
		}
	}
	testpeer.Go(t, func(ctx context.Context) error {
		KeepOpen(ctx, pair.A, mode, testpeer.Logger(t), liveness.NewSet(nil).Loop("test", time.Hour), session, func(open bool) {
			mu.Lock()
			states = append(states, open)
			mu.Unlock()
		})
		return nil
	})
	history := func() []bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(states)
	}
	send := func(what string) {
		t.Helper()
		f, err := os.OpenFile(pair.B, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		testpeer.Eventually(t, 10*time.Second, "the port open", func() bool {
			h := history()
			return len(h) > 0 && h[len(h)-1]
		})
		if _, err := f.Write([]byte(what)); err != nil {
			t.Fatal(err)
		}
		select {
		case b := <-got:
			if b != what {
				t.Fatalf("read %q, want %q", b, what)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q never reached the session", what)
		}
	}

	send("first")
	pair.Stop()
	testpeer.Eventually(t, 10*time.Second, "the port closed", func() bool {
		h := history()
		return len(h) == 2 && !h[1]
	})
	if fds := testpeer.StaleTTYs(t); len(fds) > 0 {
		t.Errorf("descriptors of the vanished port still open: %q", fds)
	}
	pair.Start()
	send("again")
	if h := history(); !slices.Equal(h, []bool{true, false, true}) {
		t.Errorf("open states %v, want open, closed, open", h)
	}
}

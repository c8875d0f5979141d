package buffer

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// TestDrainWhileAppending runs the bridge's pattern against live appenders:
// read after the last seq, ack what was "delivered", wait on Notify when
// there is nothing new.
func TestDrainWhileAppending(t *testing.T) {
	const appenders, each = 20, 200
	b := openT(t, Options{})
	var wg sync.WaitGroup
	for g := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			appendN(t, b, fmt.Sprintf("g/%d", g), 0, each)
		}()
	}

	next := map[string]int{}
	received := 0
	after := int64(0)
	deadline := time.After(60 * time.Second)
	for received < appenders*each {
		es, err := b.Read(after, 64)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			select {
			case <-b.Notify():
			case <-deadline:
				t.Fatalf("drained %d of %d before the deadline", received, appenders*each)
			}
			continue
		}
		seqs := make([]int64, 0, len(es))
		for _, e := range es {
			if want := fmt.Sprint(next[e.Msg.Topic]); string(e.Msg.Payload) != want {
				t.Fatalf("%s: got %s, want %s", e.Msg.Topic, e.Msg.Payload, want)
			}
			next[e.Msg.Topic]++
			seqs = append(seqs, e.Seq)
		}
		received += len(es)
		after = es[len(es)-1].Seq
		if err := b.Ack(seqs...); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	st := b.Stats()
	if st.Messages != 0 || st.Bytes != 0 || st.Acked != appenders*each {
		t.Fatalf("after draining everything: %+v", st)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	b, err := Open(Options{Path: t.TempDir() + "/buffer.db"})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, b, "t", 0, 10)
	if _, err := b.Read(0, 5); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	testpeer.Eventually(t, 10*time.Second, "the goroutines Open started to end after Close", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

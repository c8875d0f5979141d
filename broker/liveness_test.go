package broker

import (
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/liveness"
)

func TestTheWatchdogSeesAListenerWhoseAcceptsKeepFailing(t *testing.T) {
	b, err := New(loopbackCfg(), t.TempDir(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	clock := &testpeer.Clock{}
	b.now = clock.Now
	fl := &failingListener{fails: 1 << 30} // out of file descriptors for good
	b.lns[0].wrapListener = func(ln net.Listener) net.Listener { fl.Listener = ln; return fl }
	t.Cleanup(runBroker(t, b))

	testpeer.Eventually(t, 10*time.Second, "an accept to fail", func() bool { return b.Stats().AcceptErrors > 0 })
	if err := b.Stalled(); err != nil {
		t.Fatalf("a listener failing for less than its limit was reported stuck: %v", err)
	}
	clock.Add(acceptStallLimit + time.Second)
	err = b.Stalled()
	if err == nil || !strings.Contains(err.Error(), "broker listener[0]: stuck in failing accepts") {
		t.Fatalf("Stalled() = %v, want listener[0] stuck in failing accepts", err)
	}

	// The descriptors come back: the next accept works and the listener
	// is healthy again.
	fl.mu.Lock()
	fl.fails = 0
	fl.mu.Unlock()
	dialRaw(t, b.Addrs()[0].String()).connect(4, "after", true, nil)
	testpeer.Eventually(t, 10*time.Second, "the listener to be healthy again", func() bool { return b.Stalled() == nil })
}

func TestTheWatchdogSeesAStoreCommitThatNeverEnds(t *testing.T) {
	clock := &testpeer.Clock{}
	live := liveness.NewSet(clock.Now)
	inCommit := make(chan struct{}, 1)
	disk := make(chan struct{})
	var stalling atomic.Bool
	st, err := newStore(filepath.Join(t.TempDir(), "broker.db"), testLog(t), live, func() {
		if stalling.CompareAndSwap(true, false) {
			inCommit <- struct{}{}
			<-disk
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	clock.Add(time.Hour)
	if err := live.Check(); err != nil {
		t.Fatalf("a writer waiting for work was reported stuck: %v", err)
	}
	stalling.Store(true)
	st.enqueue(opDelRetained, "a/b")
	select {
	case <-inCommit:
	case <-time.After(10 * time.Second):
		t.Fatal("the write never reached the writer")
	}
	clock.Add(storeCommitLimit + time.Second)
	err = live.Check()
	if err == nil || !strings.Contains(err.Error(), "broker store writer: stuck in a commit") {
		t.Fatalf("Check() = %v, want the store writer stuck in a commit", err)
	}
	close(disk)
	st.flush()
	testpeer.Eventually(t, 10*time.Second, "the writer to be healthy again", func() bool { return live.Check() == nil })
}

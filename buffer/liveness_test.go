package buffer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// TestTheWatchdogSeesACommitThatNeverEnds stalls the disk inside a commit:
// the committer is reported stuck once the commit outlasts commitLimit, and
// healthy again once the disk answers. Waiting for work is never stuck.
func TestTheWatchdogSeesACommitThatNeverEnds(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	inCommit := make(chan struct{}, 1)
	disk := make(chan struct{})
	stalling := true
	b := openT(t, Options{Now: clock.Now, stall: func() {
		if stalling { // read and written by the committer only
			stalling = false
			inCommit <- struct{}{}
			<-disk
		}
	}})

	clock.Advance(24 * time.Hour)
	if err := b.Stalled(); err != nil {
		t.Fatalf("a committer waiting for work was reported stuck: %v", err)
	}

	done := make(chan error, 1)
	go func() { done <- b.Append(context.Background(), msg("t", 1)) }()
	select {
	case <-inCommit:
	case <-time.After(10 * time.Second):
		t.Fatal("the append never reached the committer")
	}
	clock.Advance(commitLimit)
	if err := b.Stalled(); err != nil {
		t.Fatalf("a commit within its limit was reported stuck: %v", err)
	}
	clock.Advance(time.Second)
	err := b.Stalled()
	if err == nil || !strings.Contains(err.Error(), "buffer committer: stuck in a commit") {
		t.Fatalf("Stalled() = %v, want the committer stuck in a commit", err)
	}

	close(disk)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the append did not return once the disk answered")
	}
	// The commit answers its requests just before it ends.
	testpeer.Eventually(t, 10*time.Second, "the committer to be healthy again", func() bool { return b.Stalled() == nil })
}

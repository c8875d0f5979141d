package buffer

import (
	"context"
	"testing"

	"github.com/edged/edged/telemetry"
)

func TestAppendAllKeepsOrderAndSharesCommits(t *testing.T) {
	b := openT(t, Options{})
	msgs := make([]telemetry.Message, 500)
	for i := range msgs {
		msgs[i] = msg("a/b", i)
	}
	for i, err := range b.AppendAll(context.Background(), msgs) {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	es, err := b.Read(0, 1000)
	if err != nil || len(es) != len(msgs) {
		t.Fatalf("Read: %d entries, %v", len(es), err)
	}
	for i, e := range es {
		if string(e.Msg.Payload) != string(msgs[i].Payload) {
			t.Fatalf("entry %d is %s, want %s: order not kept", i, e.Msg.Payload, msgs[i].Payload)
		}
	}
	if c := b.Stats().Commits; c >= uint64(len(msgs))/10 {
		t.Errorf("%d commits for %d messages; a backlog should share them", c, len(msgs))
	}
	t.Logf("%d messages in %d commits", len(msgs), b.Stats().Commits)
}

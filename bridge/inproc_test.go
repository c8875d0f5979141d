package bridge

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/telemetry"
)

// stallBuffer holds every append until gate is closed: a disk that stopped
// answering (an SD card busy with a long fsync, a full-durability commit).
type stallBuffer struct {
	*buffer.Buffer
	gate    chan struct{}
	waiting atomic.Int32 // appends held now
}

func (s *stallBuffer) hold(ctx context.Context) error {
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	select {
	case <-s.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *stallBuffer) Append(ctx context.Context, m telemetry.Message) error {
	if err := s.hold(ctx); err != nil {
		return err
	}
	return s.Buffer.Append(ctx, m)
}

func (s *stallBuffer) AppendAll(ctx context.Context, ms []telemetry.Message) []error {
	if err := s.hold(ctx); err != nil {
		errs := make([]error, len(ms))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	return s.Buffer.AppendAll(ctx, ms)
}

// TestInProcessReadingsDoNotWaitForTheDisk stalls the buffer's commits: an
// adapter's readings (in-process publishes) must go on being published and
// delivered locally, while a network QoS 1 publisher still waits for the
// commit before its acknowledgement. When the disk answers again, all of it
// reaches the upstream, in order.
func TestInProcessReadingsDoNotWaitForTheDisk(t *testing.T) {
	u := startUpstream(t, false)
	col := collect(t, u.plain, "sites/a/gw/#")
	log, _ := testLogger(t)
	stall := &stallBuffer{Buffer: openBuffer(t, buffer.Options{}), gate: make(chan struct{})}
	local := &testLocal{}
	br, err := testNew(uplinkCfg(u, u.tlsAddr), stall, "gw", local, log)
	if err != nil {
		t.Fatal(err)
	}
	local.intercept = br.Intercept
	runBridge(t, br)
	testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
	var deliveredLocally atomic.Int32
	local.Subscribe("gw/m/#", func(string, []byte) { deliveredLocally.Add(1) })

	const readings = 100
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for i := range readings {
			if err := local.Publish("gw/m/p", []byte(fmt.Sprint(i)), 1, false); err != nil {
				t.Errorf("reading %d: %v", i, err)
			}
		}
	}()
	select {
	case <-polled:
	case <-time.After(15 * time.Second):
		t.Fatal("in-process publishes waited for the stalled buffer: the poll loop would stop")
	}
	if n := deliveredLocally.Load(); n != readings {
		t.Errorf("%d readings delivered locally while the disk stalled, want %d", n, readings)
	}

	acked := make(chan error, 1)
	go func() { acked <- local.PublishFrom("sensor", "gw/net/p", []byte("0"), 1) }()
	testpeer.Eventually(t, 10*time.Second, "the network publish waiting for its commit", func() bool {
		return stall.waiting.Load() >= 2 // the readings' backlog and the network publish
	})
	select {
	case err := <-acked:
		t.Fatalf("a network QoS 1 publish was answered (%v) before its message was committed", err)
	default:
	}

	close(stall.gate)
	select {
	case err := <-acked:
		if err != nil {
			t.Fatalf("network publish: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the network publish was not acknowledged after the disk came back")
	}
	ms := col.waitFor(t, 30*time.Second, "every reading and the network message", func(ms []mqttMessage) bool {
		return count(ms, "sites/a/gw/m/p").unique == readings && count(ms, "sites/a/gw/net/p").unique == 1
	})
	if tl := count(ms, "sites/a/gw/m/p"); !tl.inOrder {
		t.Errorf("readings out of order upstream: %s", tl.firstOutOfOrder)
	}
}

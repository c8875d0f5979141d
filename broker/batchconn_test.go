package broker

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

func TestBatchConnKeepsOrderAndCloseFlushes(t *testing.T) {
	server, client := net.Pipe()
	b := newBatchConn(server)
	var got bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = io.Copy(&got, client) }()
	var want bytes.Buffer
	for i := range 1000 {
		p := []byte{byte(i), byte(i >> 8), '\n'}
		want.Write(p)
		if _, err := b.Write(p); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("the peer got %d bytes, not the %d written in order", got.Len(), want.Len())
	}
	if _, err := b.Write([]byte("late")); err == nil {
		t.Fatal("a write after Close succeeded")
	}
}

func TestBatchConnCloseDoesNotHangOnAPeerThatStoppedReading(t *testing.T) {
	server, client := net.Pipe() // net.Pipe has no buffer: nothing moves unless the peer reads
	defer client.Close()
	b := newBatchConn(server)
	if _, err := b.Write([]byte("never read")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close hung on a peer that does not read")
	}
}

func TestBatchConnWritePushesBackWhenThePeerStops(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	b := newBatchConn(server)
	blocked := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := b.Write(chunk); err != nil {
				blocked <- err
				return
			}
		}
	}()
	// The writer fills maxPendingWrite and then waits; Close must release it
	// with an error rather than leave it blocked.
	testpeer.Eventually(t, 30*time.Second, "the writer to fill the pending buffer", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pending) >= maxPendingWrite
	})
	_ = b.Close()
	select {
	case err := <-blocked:
		if err == nil {
			t.Fatal("blocked write returned no error after Close")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a writer blocked on a full connection was not released by Close")
	}
}

// Sending a message to a subscriber goes through Write and one flush: at a
// gateway's pace, one flush per message, which must not allocate.
func TestBatchConnSendsWithoutAllocating(t *testing.T) {
	server, _, client := tcpPair(t)
	b := newBatchConn(server)
	msg := []byte{0x30, 5, 0, 1, 't', 'h', 'i'} // a QoS 0 PUBLISH of "hi" to t
	back := make([]byte, len(msg))
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := b.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, back); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per message sent, want 0", allocs)
	}
}

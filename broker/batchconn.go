package broker

import (
	"net"

	"github.com/mochi-mqtt/server/v2/packets"
	"sync"
	"time"
)

// maxPendingWrite bounds what a client's connection queues while the previous
// batch is being sent (so at most twice this is held unsent); beyond it Write
// blocks, so a slow reader still pushes back on mochi as TCP would.
const maxPendingWrite = 256 << 10

// closeFlushLimit is how long Close waits for unsent bytes (a final CONNACK
// or DISCONNECT with its reason) to reach a client that stopped reading.
// mochi closes clients one after another at shutdown, so it is short.
const closeFlushLimit = 100 * time.Millisecond

// batchConn gathers what mochi writes to one client and sends it with as few
// system calls as the peer's pace allows. mochi writes every PUBACK on its
// own, straight from the goroutine reading the client; under load that is
// one syscall per acknowledgement. Here Write only appends; one flusher at a
// time writes everything appended meanwhile, so a burst of publishes costs a
// handful of writes and the reader never waits on the socket.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	moved    sync.Cond // pending shrank, the flusher stopped, or an error came
	pending  []byte
	spare    []byte // the buffer the flusher last wrote, reused
	flushing bool
	err      error     // the first write error; every later Write returns it
	win      outWindow // the client's Receive Maximum, kept in order
	flow     clientFlow
	// flushFn is flush as a value made once: `go b.flush()` would make a
	// closure, an allocation per flush and so per message at a gateway's pace.
	flushFn func()
}

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c}
	b.moved.L = &b.mu
	b.flushFn = b.flush
	return b
}

// Write queues p and starts a flusher when none runs. Bytes are sent in the
// order they were written.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && len(b.pending) >= maxPendingWrite {
		b.moved.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	b.pending = b.win.admit(b.pending, p)
	b.flow.observeWrite(p)
	b.startFlush()
	b.flow.moved() // mochi took this from its queue
	return len(p), nil
}

// unsent is the number of bytes written to b and not yet sent.
func (b *batchConn) unsent() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return int64(len(b.pending) + b.win.heldQoS0)
}

func (b *batchConn) startFlush() {
	if !b.flushing && len(b.pending) > 0 && b.err == nil {
		b.flushing = true
		go b.flushFn()
	}
}

// observe follows the client's packets (as the guard decoded them) that
// set or open its Receive Maximum window.
func (b *batchConn) observe(pk seenPacket) {
	switch pk.typ {
	case packets.Connect, packets.Puback, packets.Pubcomp, packets.Pubrec:
	default:
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch pk.typ {
	case packets.Connect:
		if pk.version == 5 {
			b.win.max = int(pk.receiveMax)
		}
	case packets.Puback, packets.Pubcomp:
		b.pending = b.win.ack(b.pending, pk.id)
	case packets.Pubrec:
		if pk.reason >= packets.ErrUnspecifiedError.Code {
			b.pending = b.win.ack(b.pending, pk.id)
		}
	}
	b.startFlush()
	b.flow.moved() // an acknowledgement leaves room in flight
}

// flush writes pending bytes until none are left or a write fails; Close
// waits for it, so it never outlives the connection.
func (b *batchConn) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) > 0 && b.err == nil {
		out := b.pending
		b.pending = b.spare[:0]
		b.moved.Broadcast() // writers waiting for room may fill pending while out is sent
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		b.spare = out[:0]
		if err != nil {
			b.err = err
		}
		b.moved.Broadcast()
		b.flow.moved()
	}
	b.flushing = false
	b.moved.Broadcast()
}

// Close sends what is pending, for at most closeFlushLimit, then closes.
func (b *batchConn) Close() error {
	_ = b.Conn.SetWriteDeadline(time.Now().Add(closeFlushLimit))
	b.mu.Lock()
	for b.flushing {
		b.moved.Wait()
	}
	if b.err == nil {
		b.err = net.ErrClosed
	}
	b.moved.Broadcast()
	b.mu.Unlock()
	return b.Conn.Close()
}

package bridge

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxPending bounds the bytes batchConn holds for writing; a writer beyond
// it waits, as it would on a full socket buffer.
const maxPending = 256 << 10

// readBackstop bounds a read after a write failed for a reason other than
// a timeout (see wakeReader).
const readBackstop = time.Second

// closeGrace is how long Close lets the flusher send what is left (paho's
// DISCONNECT, typically) before it gives up on the link.
const closeGrace = time.Second

// batchConn sits between paho and the network connection. paho writes
// every packet with a write of its own and reads a packet's header a byte
// at a time; over TLS that is one record and one system call per message
// (and, unbuffered, one per header byte read). batchConn hands paho's writes
// to a goroutine that sends whatever has gathered in one write as soon as
// the previous one is done, so a burst of PUBLISHes goes out in a few
// segments and records without waiting for a timer, and it buffers reads.
//
// The broker's batchConn (broker/batchconn.go) gathers writes the same
// way (pending bytes bounded, one writer sending all of them per system
// call, the first error kept), and that skeleton is all they share, about
// thirty lines; they are kept apart on purpose. Here the queue is opaque
// bytes; there, the MQTT 5 Receive Maximum window holds PUBLISH packets
// back and puts them into the queue when a PUBACK arrives, so the queue is
// rewritten under its lock. Here every real write carries writeTimeout
// (paho's own deadline would bound only the append), records when it
// ended for the dead-link check (activity) and wakes paho's reader when it
// fails; there, mochi's deadlines govern and nobody watches activity. One
// type serving both would take a hook for the window, one for the
// deadline and one for the failure, more than the skeleton it saves.
type batchConn struct {
	net.Conn
	r       *bufio.Reader
	timeout time.Duration

	mu     sync.Mutex
	cond   sync.Cond // buf changed, or an error, or closing
	buf    []byte
	err    error
	closed bool
	done   chan struct{} // the flusher has exited

	closeOnce sync.Once
	closeErr  error

	// For drain's dead-link check (activity): when a read last returned
	// data and a write last completed, in unix nanoseconds, and whether a
	// write is under way.
	lastRead, lastWrite atomic.Int64
	writing             atomic.Bool
}

func newBatchConn(c net.Conn, writeTimeout time.Duration) *batchConn {
	b := &batchConn{Conn: c, r: bufio.NewReaderSize(c, 32<<10), timeout: writeTimeout, done: make(chan struct{})}
	b.cond.L = &b.mu
	go b.flush()
	return b
}

// Read reads through the buffer. After a failed write it still returns
// what arrived before the failure (a TLS alert naming the reason for a
// refusal, typically), and then an error that names the failed write.
func (b *batchConn) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.lastRead.Store(time.Now().UnixNano())
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.mu.Lock()
		werr := b.err
		b.mu.Unlock()
		if werr != nil {
			err = fmt.Errorf("connection unusable after a failed write: %w", werr)
		}
	}
	return n, err
}

// wakeReader makes sure paho's reader does not wait for data that will
// never come once a write failed. A write that timed out means the link is
// silent: the reader is woken at once. Any other failure (a reset, a broken
// pipe) came from the peer, and the reader learns of it from the socket
// itself after reading what arrived first, which is often the reason (a
// refused TLS handshake's alert): expiring the read at once would hide it
// behind "i/o timeout". The later deadline is only a backstop.
func (b *batchConn) wakeReader(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		_ = b.Conn.SetReadDeadline(time.Now())
		return
	}
	_ = b.Conn.SetReadDeadline(time.Now().Add(readBackstop))
}

// Write queues p for the flusher. An error from an earlier write is
// returned here, which is how paho learns the connection is gone.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && !b.closed && len(b.buf) >= maxPending {
		b.cond.Wait()
	}
	switch {
	case b.err != nil:
		return 0, b.err
	case b.closed:
		return 0, net.ErrClosed
	}
	b.buf = append(b.buf, p...)
	b.cond.Broadcast()
	return len(p), nil
}

// SetWriteDeadline is ignored: paho sets one around each Write, which now
// returns at once; the flusher puts writeTimeout on every real write.
func (b *batchConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline applies to reads only, for the same reason.
func (b *batchConn) SetDeadline(t time.Time) error { return b.Conn.SetReadDeadline(t) }

func (b *batchConn) flush() {
	defer close(b.done)
	var out []byte
	for {
		b.mu.Lock()
		for len(b.buf) == 0 && !b.closed {
			b.cond.Wait()
		}
		if len(b.buf) == 0 { // closed and nothing left to send
			b.mu.Unlock()
			return
		}
		out, b.buf = b.buf, out[:0]
		b.cond.Broadcast() // room for waiting writers
		b.mu.Unlock()

		b.writing.Store(true)
		err := b.Conn.SetWriteDeadline(time.Now().Add(b.timeout))
		if err == nil {
			_, err = b.Conn.Write(out)
		}
		b.lastWrite.Store(time.Now().UnixNano())
		b.writing.Store(false)
		if err != nil {
			b.mu.Lock()
			b.err = err
			b.buf = nil
			b.cond.Broadcast()
			b.mu.Unlock()
			b.wakeReader(err)
			return
		}
	}
}

// activity returns when the server last sent something or a write last
// completed, whichever is later, and whether a write is under way.
func (b *batchConn) activity() (time.Time, bool) {
	return time.Unix(0, max(b.lastRead.Load(), b.lastWrite.Load())), b.writing.Load()
}

// Close sends what paho wrote before closing (its DISCONNECT, typically),
// for up to closeGrace; a link that does not take it by then is closed
// under the write, so that nobody waits on the network.
func (b *batchConn) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.cond.Broadcast()
		b.mu.Unlock()
		t := time.NewTimer(closeGrace)
		defer t.Stop()
		select {
		case <-b.done:
			b.closeErr = b.Conn.Close()
		case <-t.C:
			b.closeErr = b.Conn.Close() // ends the flusher's write
			<-b.done
		}
	})
	return b.closeErr
}

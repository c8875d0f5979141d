package bridge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/telemetry"
)

// inprocMax bounds the in-process messages waiting for the buffer; beyond
// it (the disk has stalled for a long while) new ones are not buffered and
// are counted as refused.
const inprocMax = 10000

// flushTimeout bounds how long Run, when it ends, waits for in-process
// messages still on their way to the buffer.
const flushTimeout = time.Second

// inproc carries messages published in-process (adapters' readings) to the
// buffer without making the publisher wait for the commit: a Modbus bus
// goroutine goes on polling while the disk is slow. Their order is kept,
// and a backlog is committed together (buffer.AppendAll). Network QoS 1
// publishers do not use it: their PUBACK still waits for the commit.
//
// The appender goroutine exists only while there is a backlog. Run, when it
// ends, closes the queue and waits for the appender; after that, in-process
// messages are appended synchronously again, as before Run.
type inproc struct {
	mu      sync.Mutex
	msgs    []telemetry.Message
	running bool // an appender goroutine is under way
	closed  bool
	wg      sync.WaitGroup
	ctx     context.Context // ends flushTimeout after close: the rest is given up
	cancel  context.CancelFunc
	fullLog rateLog
}

// putResult says what became of a message handed to putInproc.
type putResult int

const (
	queued    putResult = iota
	queueFull           // the backlog is at inprocMax: not buffered
	queueShut           // Run has ended: append it synchronously
)

// putInproc queues m for the buffer and starts the appender when needed.
func (br *Bridge) putInproc(m telemetry.Message) putResult {
	q := &br.inproc
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return queueShut
	case len(q.msgs) >= inprocMax:
		return queueFull
	}
	q.msgs = append(q.msgs, m)
	if !q.running {
		q.running = true
		q.wg.Add(1)
		go br.appendInproc()
	}
	return queued
}

// appendInproc commits the backlog, all of it at a time, until none is left.
func (br *Bridge) appendInproc() {
	q := &br.inproc
	defer q.wg.Done()
	for {
		q.mu.Lock()
		msgs := q.msgs
		q.msgs = nil
		if len(msgs) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()

		ctx, cancel := context.WithTimeout(q.ctx, appendTimeout)
		failed, first := 0, error(nil)
		for _, err := range br.buf.AppendAll(ctx, msgs) {
			if err != nil {
				failed++
				first = cmp(first, err)
			}
		}
		cancel()
		if failed > 0 {
			br.refused.Add(uint64(failed))
			if !errors.Is(first, buffer.ErrFull) { // the buffer logs its own refusals
				br.log.Warn("uplink: in-process messages could not be buffered", "messages", failed, "err", first)
			}
		}
	}
}

// closeInproc stops queueing and waits for the backlog to be committed, for
// up to flushTimeout.
func (br *Bridge) closeInproc() {
	q := &br.inproc
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	t := time.AfterFunc(flushTimeout, q.cancel)
	defer t.Stop()
	q.wg.Wait()
}

// cmp returns a if it is set, else b.
func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

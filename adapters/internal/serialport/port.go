package serialport

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/edged/edged/config"
	"github.com/edged/edged/liveness"
)

// Reopen backoff bounds: quick enough that a replugged adapter is back within
// seconds, slow enough that a missing one costs nothing.
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// ErrPortGone is wrapped by a Conn's error when the port stopped working
// under us: unplugged, hung up, or closed.
var ErrPortGone = errors.New("port gone")

// PortMode converts line settings that config validated and completed
// (baud, data_bits, parity N|E|O, stop_bits 1|2) into a serial.Mode.
func PortMode(sp config.SerialPort) *serial.Mode {
	m := &serial.Mode{BaudRate: sp.Baud, DataBits: sp.DataBits, Parity: serial.NoParity, StopBits: serial.OneStopBit}
	switch sp.Parity {
	case "E":
		m.Parity = serial.EvenParity
	case "O":
		m.Parity = serial.OddParity
	}
	if sp.StopBits == 2 {
		m.StopBits = serial.TwoStopBits
	}
	return m
}

// Conn is an open port as a session sees it: writes go to Port, reads arrive
// on Data. Data is closed when the port fails; Err then says why.
type Conn struct {
	Port serial.Port
	Data <-chan []byte

	mu  sync.Mutex
	err error
}

// Err is why Data was closed, wrapping ErrPortGone.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Session is what a device does with an open port. It returns nil when ctx
// ends and an error when the port failed (Data closed, a write failed); the
// port is then closed and opened again.
type Session func(ctx context.Context, c *Conn) error

// KeepOpen opens path and runs session on it until ctx ends. Whenever the
// session ends with an error the port is closed — a replugged USB adapter
// only comes back under the same name once the old descriptor is gone — and
// opened again with backoff, for as long as it takes. state is told true
// after every open and false after every close. loop sees each open as one
// bounded operation. It returns when ctx ends.
func KeepOpen(ctx context.Context, path string, mode *serial.Mode, log *slog.Logger, loop *liveness.Loop, session Session, state func(open bool)) {
	backoff := minBackoff
	failing := false // log the first failed open, not every retry
	for ctx.Err() == nil {
		loop.Busy("open " + path)
		p, err := serial.Open(path, mode)
		loop.Idle()
		if err != nil {
			if !failing {
				log.Warn("cannot open port; retrying with backoff", "err", describeOpenErr(err))
				failing = true
			}
			log.Debug("open failed", "err", err, "retry_in", backoff)
			if !sleep(ctx, jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		failing = false
		log.Info("port open")
		state(true)
		began := time.Now()
		err = runSession(ctx, p, session)
		state(false)
		if ctx.Err() != nil {
			return
		}
		log.Warn("port lost; reopening", "err", err)
		if time.Since(began) > maxBackoff {
			backoff = minBackoff
		}
		if !sleep(ctx, jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// runSession reads p in a goroutine it owns, runs session, and closes p
// before it returns; closing also ends the read.
func runSession(ctx context.Context, p serial.Port, session Session) error {
	data := make(chan []byte, 16)
	stop := make(chan struct{})
	c := &Conn{Port: p, Data: data}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(data)
		buf := make([]byte, 1024)
		for {
			n, err := p.Read(buf)
			if n > 0 {
				chunk := append([]byte(nil), buf[:n]...)
				select {
				case data <- chunk:
				case <-stop:
					return
				}
			}
			if err != nil {
				c.mu.Lock()
				c.err = fmt.Errorf("read: %w: %w", ErrPortGone, err)
				c.mu.Unlock()
				return
			}
			// go.bug.st/serial returns 0, nil only on a read timeout, which
			// is never set here; go round again.
		}
	})
	sctx, cancel := context.WithCancel(ctx)
	err := session(sctx, c)
	cancel()
	close(stop)
	if cerr := p.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	wg.Wait()
	return err
}

// describeOpenErr names the usual reasons a port does not open.
func describeOpenErr(err error) error {
	var pe *serial.PortError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no such device (unplugged?): %w", err)
	case errors.As(err, &pe) && pe.Code() == serial.PermissionDenied:
		return fmt.Errorf("permission denied (is the user in group dialout?): %w", err)
	case errors.As(err, &pe) && pe.Code() == serial.PortBusy:
		return fmt.Errorf("port busy (another program has it open): %w", err)
	}
	return err
}

// jitter spreads retries of several ports over ±20% of d.
func jitter(d time.Duration) time.Duration {
	return d - d/5 + rand.N(2*d/5+1)
}

// sleep waits d or until ctx ends, reporting whether the wait ran out.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

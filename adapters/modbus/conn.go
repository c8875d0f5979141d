package modbus

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"time"

	mb "github.com/simonvetter/modbus"
)

// ErrTimeout is wrapped by every error of a request the device did not answer in time.
var ErrTimeout = errors.New("no response (timeout)")

// ErrNotOpen is wrapped when the port or connection could not be opened.
var ErrNotOpen = errors.New("port not open")

// ExceptionError is a Modbus exception response: the device answered but
// refused the request.
type ExceptionError struct{ Code byte }

var exceptionNames = map[byte]string{
	1: "illegal function", 2: "illegal data address", 3: "illegal data value",
	4: "server device failure", 5: "acknowledge", 6: "server device busy",
	8: "memory parity error", 10: "gateway path unavailable", 11: "gateway target failed to respond",
}

// exceptionCodes turns the client library's exception errors back into the
// codes the device sent.
var exceptionCodes = map[mb.Error]byte{
	mb.ErrIllegalFunction: 1, mb.ErrIllegalDataAddress: 2, mb.ErrIllegalDataValue: 3,
	mb.ErrServerDeviceFailure: 4, mb.ErrAcknowledge: 5, mb.ErrServerDeviceBusy: 6,
	mb.ErrMemoryParityError: 8, mb.ErrGWPathUnavailable: 10, mb.ErrGWTargetFailedToRespond: 11,
}

func (e ExceptionError) Error() string {
	return fmt.Sprintf("exception %d (%s)", e.Code, exceptionNames[e.Code])
}

// errClass is what a failed transaction says about the device and the link.
type errClass int

const (
	classOK        errClass = iota
	classException          // the device answered with an exception
	classTimeout            // nothing came back in time
	classFrame              // something came back but it was not a valid answer
	classIO                 // the port or connection itself failed
)

// classify maps the client library's errors to our classes and errors.
func classify(err error) (errClass, error) {
	if err == nil {
		return classOK, nil
	}
	var e mb.Error
	if !errors.As(err, &e) {
		if strings.Contains(err.Error(), "unknown exception code") {
			return classException, err
		}
		return classIO, err
	}
	if code, ok := exceptionCodes[e]; ok {
		return classException, ExceptionError{code}
	}
	switch e {
	case mb.ErrRequestTimedOut:
		return classTimeout, ErrTimeout
	case mb.ErrBadCRC, mb.ErrShortFrame, mb.ErrProtocolError, mb.ErrBadUnitId, mb.ErrBadTransactionId, mb.ErrUnknownProtocolId:
		return classFrame, fmt.Errorf("bad response: %w", err)
	}
	return classIO, err
}

// link owns the client library's connections for one bus. A serial port
// has at most one open client; a device with its own timeout on a serial
// bus reopens the port with that timeout (the library fixes the timeout at
// open), so such overrides are cheap on TCP and best avoided on RTU.
type link struct {
	b        *Bus
	clients  map[time.Duration]*mb.ModbusClient
	retryAt  time.Time
	backoff  time.Duration
	down     bool // last open failed; logged once
	silent   int  // consecutive serial timeouts
	libLog   *log.Logger
	overhead int // ADU bytes around the PDU: 7 (MBAP) or 3 (unit + CRC)
}

const (
	minReopen = 200 * time.Millisecond
	maxReopen = 10 * time.Second
	// serialStale is how many consecutive timeouts on a serial port make us
	// reopen it, in case a replugged adapter left us a dead descriptor.
	serialStale = 5
)

func newLink(b *Bus) *link {
	l := &link{b: b, clients: map[time.Duration]*mb.ModbusClient{}, overhead: 3}
	if b.transport == "tcp" {
		l.overhead = 7
	}
	l.libLog = log.New(slogWriter{b.log.With("lib", "simonvetter/modbus")}, "", 0)
	return l
}

// slogWriter sends the client library's own log lines to slog at debug
// level; they repeat what our errors already say.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (l *link) url() string {
	switch l.b.transport {
	case "rtu":
		return "rtu://" + l.b.target
	case "rtu-over-tcp":
		return "rtuovertcp://" + l.b.target
	}
	return "tcp://" + l.b.target
}

// get returns an open client with the given timeout, opening one if needed.
// After a failed open it waits out a growing backoff before trying again.
func (l *link) get(timeout time.Duration) (*mb.ModbusClient, error) {
	if c := l.clients[timeout]; c != nil {
		return c, nil
	}
	now := time.Now()
	if now.Before(l.retryAt) {
		return nil, fmt.Errorf("%s %w (reopening with backoff)", l.b.target, ErrNotOpen)
	}
	if l.b.transport == "rtu" {
		l.closeAll() // one descriptor per serial port, and the old one closed first
	}
	cfg := l.b.cfg // line settings as config completed them (none on TCP)
	parity := mb.PARITY_EVEN
	switch cfg.Parity {
	case "N":
		parity = mb.PARITY_NONE
	case "O":
		parity = mb.PARITY_ODD
	}
	c, err := mb.NewClient(&mb.ClientConfiguration{
		URL:      l.url(),
		Speed:    uint(cfg.Baud),
		DataBits: uint(cfg.DataBits),
		Parity:   parity,
		StopBits: uint(cfg.StopBits),
		Timeout:  timeout,
		Logger:   l.libLog,
	})
	if err == nil {
		err = c.Open()
	}
	if err != nil {
		l.backoff = min(max(2*l.backoff, minReopen), maxReopen)
		l.retryAt = now.Add(l.backoff)
		if !l.down {
			l.b.log.Warn("cannot open; retrying with backoff", "target", l.b.target, "err", err)
			l.down = true
		}
		return nil, fmt.Errorf("%s %w: %v", l.b.target, ErrNotOpen, err)
	}
	if l.down {
		l.b.log.Info("opened again", "target", l.b.target)
	} else {
		l.b.log.Debug("opened", "target", l.b.target)
	}
	l.down, l.backoff, l.silent = false, 0, 0
	l.b.mu.Lock()
	l.b.stats.Opens++
	l.b.mu.Unlock()
	l.clients[timeout] = c
	return c, nil
}

// drop closes the client with the given timeout so the next request reopens it.
func (l *link) drop(timeout time.Duration) {
	if c := l.clients[timeout]; c != nil {
		_ = c.Close()
		delete(l.clients, timeout)
	}
}

func (l *link) closeAll() {
	for t := range l.clients {
		l.drop(t)
	}
}

// do runs one transaction for device d; what names it for the watchdog
// ("read holding 0..9"), which sees the device busy from the (re)open to
// the answer. reqPDU and respPDU are the PDU sizes of the request and of a
// normal answer, for the byte counters. The returned error is already
// classified (ErrTimeout, ExceptionError, ...).
func (b *Bus) do(l *link, d *device, what string, reqPDU, respPDU int, fn func(*mb.ModbusClient) error) (errClass, error) {
	if d.live != nil {
		d.live.Busy(what)
		defer d.live.Idle()
	}
	c, err := l.get(d.timeout)
	if err != nil {
		b.count(d, func(s *DeviceStats) { s.Errors++ })
		return classIO, err
	}
	_ = c.SetUnitId(d.unit)
	start := time.Now()
	class, err := classify(fn(c))
	took := time.Since(start)
	b.count(d, func(s *DeviceStats) {
		b.stats.Latency.add(took) // b.mu is held
		s.Requests++
		s.BytesOut += uint64(reqPDU + l.overhead)
		switch class {
		case classOK:
			s.BytesIn += uint64(respPDU + l.overhead)
		case classException:
			s.Exceptions++
			s.BytesIn += uint64(2 + l.overhead)
		case classTimeout:
			s.Timeouts++
		default:
			s.Errors++
		}
	})
	network := b.transport != "rtu"
	switch class {
	case classOK, classException:
		l.silent = 0
	case classTimeout:
		l.silent++
		// A late answer on a stream would be taken for the next one's; a
		// serial port that never answers may be a stale descriptor.
		if network || l.silent >= serialStale {
			l.drop(d.timeout)
			l.silent = 0
		}
	case classFrame:
		if network {
			l.drop(d.timeout)
		}
	case classIO:
		l.b.log.Debug("i/o error; closing to reopen", "err", err)
		l.drop(d.timeout)
	}
	return class, err
}

package serialline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/edged/edged/adapters/internal/framing"
	"github.com/edged/edged/adapters/internal/mqttdevice"
	"github.com/edged/edged/adapters/internal/serialdevice"
	"github.com/edged/edged/adapters/internal/serialport"
	"github.com/edged/edged/config"
)

// missedPolls is how many requests in a row may go unanswered before a
// poll-style device is shown offline.
const missedPolls = 3

// txQueue bounds the writes waiting for the port; more are dropped and counted.
const txQueue = 16

// Publisher is where readings and status go: the local broker's inline client.
type Publisher = mqttdevice.Publisher

// Subscriber delivers the payloads published on {gateway}/{device}/tx.
type Subscriber = mqttdevice.Subscriber

// Stats counts what a Device did since New.
type Stats struct {
	Online    bool   // the port is open and, for poll-style devices, the sensor answers
	Opens     uint64 // successful opens, the first included
	Bytes     uint64 // bytes read
	Frames    uint64 // complete frames
	Matched   uint64 // frames at least one pattern matched
	Unmatched uint64 // frames no pattern matched
	Overlong  uint64 // frames longer than max_frame, dropped
	Noise     uint64 // bytes outside start/end frames
	Points    uint64 // points published
	Requests  uint64 // poll requests written
	TxWrites  uint64 // payloads from {gateway}/{device}/tx written
	TxDropped uint64 // tx payloads dropped: port closed or queue full
	PubErrors uint64 // publishes the Publisher refused
}

// Device is one [[serial]] sensor.
type Device struct {
	dev     *serialdevice.Device // name, port, status, points
	spec    framing.FrameSpec
	pats    *framing.Patterns
	raw     bool
	request []byte
	every   time.Duration
	tx      bool
	sub     Subscriber
	log     *slog.Logger

	txq chan []byte

	mu    sync.Mutex
	stats Stats // but Online, PubErrors and Opens, kept by dev
}

// New prepares a device for cfg as config.Load (or config.Check) validated
// and completed it: the escapes decoded, the patterns compiled, the defaults
// set. It converts and allocates; the port is opened by Run. log should
// already name the adapter and device; New adds the port. sub may be nil
// unless cfg.Writable.
func New(cfg config.Serial, gateway string, pub Publisher, sub Subscriber, log *slog.Logger) (*Device, error) {
	if cfg.MaxFrame <= 0 || (cfg.Request != "" && (len(cfg.RequestBytes) == 0 || cfg.Interval.Duration <= 0)) || len(cfg.Regexps) != len(cfg.Patterns) {
		// Only a config built in code without config.Check gets here.
		return nil, fmt.Errorf("serial %q: max_frame, interval, the request's bytes or the compiled patterns not set (a config from config.Load or config.Check has them)", cfg.Name)
	}
	if cfg.Writable && sub == nil {
		return nil, fmt.Errorf("serial %q: writable needs a subscriber", cfg.Name)
	}
	dev, err := serialdevice.New(serialdevice.Config{Kind: "serial", Name: cfg.Name, Port: cfg.SerialPort,
		Topic: cfg.Topic, Payload: cfg.Payload}, gateway, pub, log)
	if err != nil {
		return nil, err
	}
	return &Device{
		dev:  dev,
		spec: framing.FrameSpec{Delimiter: cfg.DelimiterBytes, Start: cfg.StartBytes, End: cfg.EndBytes, Max: int(cfg.MaxFrame)},
		pats: framing.NewPatterns(cfg.Regexps),
		raw:  cfg.Raw, request: cfg.RequestBytes, every: cfg.Interval.Duration,
		tx: cfg.Writable, sub: sub,
		log: dev.Log,
		txq: make(chan []byte, txQueue),
	}, nil
}

// Stats returns a snapshot of the counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	s := d.stats
	d.mu.Unlock()
	s.Online, s.PubErrors, s.Opens = d.dev.Status.Online(), d.dev.Out.Errors(), d.dev.Opens()
	return s
}

// Run reads the device until ctx ends and returns nil then. Port and device
// errors are logged, shown on the status topic and retried; they never end Run.
func (d *Device) Run(ctx context.Context) error {
	if d.tx {
		defer d.dev.Commands(d.sub, "tx", "writes to the port", d.onTx,
			func() { d.count(func(s *Stats) { s.TxDropped++ }) })()
	}
	d.dev.Run(ctx, d.session, func(open bool) {
		// A sensor that talks on its own is online with its port; one that is
		// polled is online once it answers (see session).
		if open && len(d.request) == 0 {
			d.dev.Status.Set(true)
		}
	})
	return nil
}

// onTx queues a payload for the port; the session goroutine writes it. A
// retained payload never gets here (SubscribeCommands counts it dropped).
func (d *Device) onTx(_ string, payload []byte) {
	select {
	case d.txq <- append([]byte(nil), payload...):
	default:
		d.count(func(s *Stats) { s.TxDropped++ })
		d.log.Warn("tx queue full; payload dropped", "bytes", len(payload))
	}
}

func (d *Device) session(ctx context.Context, c *serialport.Conn) error {
	f, _ := framing.NewFramer(d.spec) // config refuses what NewFramer would
	// Payloads queued while the port was closed are for a device that is
	// gone; writing them to the one that came back would surprise it.
	d.drainTx()
	var tick <-chan time.Time
	unanswered := 0 // requests since the last frame
	poll := func() error {
		if unanswered >= missedPolls {
			d.dev.Status.Set(false, "reason", "requests unanswered", "requests", unanswered)
		}
		unanswered++
		return d.write(c, d.request, func(s *Stats) { s.Requests++ })
	}
	if len(d.request) > 0 {
		t := time.NewTicker(d.every)
		defer t.Stop()
		tick = t.C
		if err := poll(); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case chunk, ok := <-c.Data:
			if !ok {
				return c.Err()
			}
			over, noise := f.Overlong(), f.Noise()
			f.Feed(chunk, func(frame []byte) {
				if len(d.request) > 0 {
					unanswered = 0
					d.dev.Status.Set(true)
				}
				d.frame(frame)
			})
			d.count(func(s *Stats) {
				s.Bytes += uint64(len(chunk))
				s.Overlong += f.Overlong() - over
				s.Noise += f.Noise() - noise
			})
		case <-tick:
			if err := poll(); err != nil {
				return err
			}
		case p := <-d.txq:
			if err := d.write(c, p, func(s *Stats) { s.TxWrites++ }); err != nil {
				return err
			}
		}
	}
}

func (d *Device) drainTx() {
	for {
		select {
		case <-d.txq:
			d.count(func(s *Stats) { s.TxDropped++ })
		default:
			return
		}
	}
}

func (d *Device) write(c *serialport.Conn, p []byte, counter func(*Stats)) error {
	if err := d.dev.Write(c, p); err != nil {
		return err
	}
	d.count(counter)
	return nil
}

// Stalled reports a port open or write that has lasted past its bound
// (nil while the device makes progress or waits for data); the daemon
// stops pinging the systemd watchdog while it does.
func (d *Device) Stalled() error { return d.dev.Stalled() }

// frame turns one frame into points, or counts (and maybe publishes) it as
// unmatched.
func (d *Device) frame(frame []byte) {
	s := string(frame)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	fields, ok := d.pats.Match(s)
	d.count(func(st *Stats) {
		st.Frames++
		if ok {
			st.Matched++
		} else {
			st.Unmatched++
		}
	})
	if !ok {
		if d.raw {
			d.dev.Out.Publish(d.dev.Gateway+"/"+d.dev.Name+"/raw", frame, 0, false)
		}
		return
	}
	now := time.Now()
	for _, f := range fields {
		if d.dev.Out.Value(d.dev.Points.Get(f.Name), f.Value, now) {
			d.count(func(s *Stats) { s.Points++ })
		}
	}
}

func (d *Device) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

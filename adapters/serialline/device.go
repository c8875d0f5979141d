package serialline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.bug.st/serial"

	"github.com/edged/edged/adapters/internal/framing"
	"github.com/edged/edged/adapters/internal/mqttdevice"
	"github.com/edged/edged/adapters/internal/serialport"
	"github.com/edged/edged/config"
)

// Defaults applied to zero config values.
const (
	DefaultBaud     = 9600
	DefaultInterval = 30 * time.Second
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
	name    string
	gateway string
	path    string
	mode    *serial.Mode
	spec    framing.FrameSpec
	pats    *framing.Patterns
	raw     bool
	request []byte
	every   time.Duration
	tx      bool
	out     *mqttdevice.Out
	status  *mqttdevice.Status
	sub     Subscriber
	log     *slog.Logger

	txq chan []byte

	mu    sync.Mutex
	stats Stats // but Online and PubErrors, kept by status and out

	points *mqttdevice.Points // by group name; touched by the session goroutine only
}

// New checks cfg, applies the defaults to its zero values (baud 9600,
// max_frame 4096, interval 30s) and prepares a device; the port is opened by
// Run. log should already name the adapter and device; New adds the port.
func New(cfg config.Serial, gateway string, pub Publisher, sub Subscriber, log *slog.Logger) (*Device, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	where := fmt.Sprintf("serial %q", cfg.Name)
	if cfg.Name == "" {
		return nil, fmt.Errorf("serial: name is empty")
	}
	if cfg.Port == "" {
		return nil, fmt.Errorf("%s: port is empty", where)
	}
	if pub == nil {
		return nil, fmt.Errorf("%s: no publisher", where)
	}
	mode, err := serialport.PortMode(cfg.SerialPort, DefaultBaud)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	d := &Device{
		name: cfg.Name, gateway: gateway, path: cfg.Port, mode: mode, raw: cfg.Raw,
		tx: cfg.Writable, sub: sub, every: cfg.Interval.Duration,
		log: log.With("port", cfg.Port), // the caller names the adapter and device
		txq: make(chan []byte, txQueue),
	}
	d.out = mqttdevice.NewOut(pub, d.log)
	d.status = mqttdevice.NewStatus(d.out, gateway, d.name, d.log)
	if d.spec, err = frameSpec(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if _, err := framing.NewFramer(d.spec); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if d.pats, err = framing.CompilePatterns(cfg.Patterns, !cfg.Raw); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if cfg.Request != "" {
		if d.request, err = config.Unescape(cfg.Request); err != nil {
			return nil, fmt.Errorf("%s: request: %w", where, err)
		}
	}
	if d.every <= 0 {
		d.every = DefaultInterval
	}
	tmpl, format, err := mqttdevice.Output(cfg.Topic, cfg.Payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	d.points = mqttdevice.NewPoints(gateway, cfg.Name, tmpl, format)
	if d.tx && sub == nil {
		return nil, fmt.Errorf("%s: writable needs a subscriber", where)
	}
	return d, nil
}

func frameSpec(cfg config.Serial) (framing.FrameSpec, error) {
	var s framing.FrameSpec
	var err error
	if s.Delimiter, err = config.Unescape(cfg.Delimiter); err != nil {
		return s, fmt.Errorf("delimiter: %w", err)
	}
	if s.Start, err = config.Unescape(cfg.Start); err != nil {
		return s, fmt.Errorf("start: %w", err)
	}
	if s.End, err = config.Unescape(cfg.End); err != nil {
		return s, fmt.Errorf("end: %w", err)
	}
	if cfg.MaxFrame < 0 || int64(cfg.MaxFrame) > 1<<24 {
		return s, fmt.Errorf("max_frame %d is outside 1..16MiB", cfg.MaxFrame)
	}
	s.Max = int(cfg.MaxFrame)
	return s, nil
}

// Stats returns a snapshot of the counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	s := d.stats
	d.mu.Unlock()
	s.Online, s.PubErrors = d.status.Online(), d.out.Errors()
	return s
}

// Run reads the device until ctx ends and returns nil then. Port and device
// errors are logged, shown on the status topic and retried; they never end Run.
func (d *Device) Run(ctx context.Context) error {
	if d.tx {
		topic := d.gateway + "/" + d.name + "/tx"
		unsub, err := mqttdevice.SubscribeCommands(d.sub, topic, d.log, d.onTx,
			func() { d.count(func(s *Stats) { s.TxDropped++ }) })
		if err != nil {
			// The daemon keeps the readings flowing; only writes are lost.
			d.log.Error("cannot subscribe; writes to the port are off", "topic", topic, "err", err)
		} else {
			defer unsub()
		}
	}
	d.status.Begin()
	serialport.KeepOpen(ctx, d.path, d.mode, d.log, d.session, func(open bool) {
		if open {
			d.count(func(s *Stats) { s.Opens++ })
		}
		// A sensor that talks on its own is online with its port; one that is
		// polled is online once it answers (see session).
		if open && len(d.request) == 0 {
			d.status.Set(true)
		} else if !open {
			d.status.Set(false, "reason", "port closed")
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
	f, _ := framing.NewFramer(d.spec) // checked in New
	// Payloads queued while the port was closed are for a device that is
	// gone; writing them to the one that came back would surprise it.
	d.drainTx()
	var tick <-chan time.Time
	unanswered := 0 // requests since the last frame
	poll := func() error {
		if unanswered >= missedPolls {
			d.status.Set(false, "reason", "requests unanswered", "requests", unanswered)
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
					d.status.Set(true)
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
	if _, err := c.Port.Write(p); err != nil {
		return fmt.Errorf("write: %w: %w", serialport.ErrPortGone, err)
	}
	d.count(counter)
	return nil
}

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
			d.out.Publish(d.gateway+"/"+d.name+"/raw", frame, 0, false)
		}
		return
	}
	now := time.Now()
	for _, f := range fields {
		if d.out.Value(d.points.Get(f.Name), f.Value, now) {
			d.count(func(s *Stats) { s.Points++ })
		}
	}
}

func (d *Device) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

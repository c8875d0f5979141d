package serialdevice

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.bug.st/serial"

	"github.com/edged/edged/adapters/internal/mqttdevice"
	"github.com/edged/edged/adapters/internal/serialport"
	"github.com/edged/edged/config"
	"github.com/edged/edged/liveness"
)

// stallMargin is added to an operation's own bound before the watchdog
// calls it stuck: scheduling on a busy board, and a USB adapter's latency.
// It stays well under systemd's WatchdogSec = 30 (packaging/edged.service).
const stallMargin = 10 * time.Second

// writeChunk is the most Write hands the port at once, so that a long
// payload is many short bounded operations rather than one of any length.
const writeChunk = 512

// Config is what New needs of a [[serial]] or [[at]] table, as config
// validated and completed it.
type Config struct {
	Kind    string // "serial" or "at", for errors
	Name    string
	Port    config.SerialPort
	Topic   string // the point topic template
	Payload string // json | value
	// OpLimit is the longest a session's own operations may take besides
	// writing one chunk (an AT command's timeout); 0 when it has none.
	OpLimit time.Duration
}

// Device is one device on a serial port of its own.
type Device struct {
	Name    string
	Gateway string
	Log     *slog.Logger // names the port
	Out     *mqttdevice.Out
	Status  *mqttdevice.Status
	Points  *mqttdevice.Points

	kind  string
	path  string
	mode  *serial.Mode
	opens atomic.Uint64
	limit time.Duration  // of one operation, margin included
	live  *liveness.Set  // the Run goroutine's loop while it runs
	loop  *liveness.Loop // set by Run
}

// New prepares the device for cfg, which config.Load (or config.Check)
// validated: New converts and allocates, and refuses only a nil publisher.
// log should already name the adapter and device, New adds the port. The
// port is opened by Run.
func New(cfg Config, gateway string, pub mqttdevice.Publisher, log *slog.Logger) (*Device, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if pub == nil {
		return nil, fmt.Errorf("%s %q: no publisher", cfg.Kind, cfg.Name)
	}
	mode := serialport.PortMode(cfg.Port)
	tmpl, format := mqttdevice.Output(cfg.Topic, cfg.Payload)
	d := &Device{Name: cfg.Name, Gateway: gateway, Log: log.With("port", cfg.Port.Port), path: cfg.Port.Port, mode: mode, kind: cfg.Kind,
		limit: cfg.OpLimit + lineTime(writeChunk, mode) + stallMargin, live: liveness.NewSet(nil)}
	d.Out = mqttdevice.NewOut(pub, d.Log)
	d.Status = mqttdevice.NewStatus(d.Out, gateway, d.Name, d.Log)
	d.Points = mqttdevice.NewPoints(gateway, d.Name, tmpl, format)
	return d, nil
}

// Commands subscribes handle to the device's command topic
// {gateway}/{device}/{level} (see mqttdevice.SubscribeCommands). When the
// subscription fails the daemon goes on without commands; lost says what
// is lost in the log line. The returned function unsubscribes.
func (d *Device) Commands(sub mqttdevice.Subscriber, level, lost string, handle func(topic string, payload []byte), ignored func()) (unsubscribe func()) {
	topic := d.Gateway + "/" + d.Name + "/" + level
	unsub, err := mqttdevice.SubscribeCommands(sub, topic, d.Log, handle, ignored)
	if err != nil {
		d.Log.Error("cannot subscribe; "+lost+" are off", "topic", topic, "err", err)
		return func() {}
	}
	return unsub
}

// lineTime is how long n characters take on the wire at the mode's speed,
// counting start, parity and stop bits generously (12 bits a character).
func lineTime(n int, mode *serial.Mode) time.Duration {
	baud := max(mode.BaudRate, 1)
	return time.Duration(n) * 12 * time.Second / time.Duration(baud)
}

// Run publishes the device offline, then keeps its port open and runs
// session on it until ctx ends. Whenever the port closes the device is shown
// offline; onState, when not nil, is told of every open and close. The
// opens, Write and what the session marks with Busy are the bounded
// operations Stalled watches.
func (d *Device) Run(ctx context.Context, session serialport.Session, onState func(open bool)) {
	d.loop = d.live.Loop(fmt.Sprintf("%s %q", d.kind, d.Name), d.limit)
	defer d.live.Remove(d.loop)
	d.Status.Begin()
	serialport.KeepOpen(ctx, d.path, d.mode, d.Log, d.loop, session, func(open bool) {
		if open {
			d.opens.Add(1)
		}
		if onState != nil {
			onState(open)
		}
		if !open {
			d.Status.Set(false, "reason", "port closed")
		}
	})
}

// Busy marks the start of one of the session's bounded operations (an AT
// command and the wait for its answer); Idle marks its end. Only the
// session, on Run's goroutine, calls them.
func (d *Device) Busy(what string) { d.loop.Busy(what) }

// Idle marks the end of the operation Busy began: the session waits for work.
func (d *Device) Idle() { d.loop.Idle() }

// Write writes p to the port in chunks, each a bounded operation for the
// watchdog, and wraps a failure in serialport.ErrPortGone. Only the session
// calls it.
func (d *Device) Write(c *serialport.Conn, p []byte) error {
	defer d.loop.Idle()
	for len(p) > 0 {
		n := min(len(p), writeChunk)
		d.loop.Busy(fmt.Sprintf("write %d bytes", n))
		if _, err := c.Port.Write(p[:n]); err != nil {
			return fmt.Errorf("write: %w: %w", serialport.ErrPortGone, err)
		}
		p = p[n:]
	}
	return nil
}

// Stalled reports an open, a write or a session operation that has lasted
// longer than its bound plus a margin; nil while the device makes progress
// or waits for data.
func (d *Device) Stalled() error { return d.live.Check() }

// Opens is how many times the port was opened, the first included.
func (d *Device) Opens() uint64 { return d.opens.Load() }

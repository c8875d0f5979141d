package serialdevice

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"go.bug.st/serial"

	"github.com/edged/edged/adapters/internal/mqttdevice"
	"github.com/edged/edged/adapters/internal/serialport"
	"github.com/edged/edged/config"
)

// Config is what New needs of a [[serial]] or [[at]] table.
type Config struct {
	Kind        string // "serial" or "at", for errors
	Name        string
	Port        config.SerialPort
	DefaultBaud int
	Topic       string // the point topic template; "" for the default
	Payload     string // json | value; "" for json
}

// Device is one device on a serial port of its own.
type Device struct {
	Name    string
	Gateway string
	Log     *slog.Logger // names the port
	Out     *mqttdevice.Out
	Status  *mqttdevice.Status
	Points  *mqttdevice.Points

	path  string
	mode  *serial.Mode
	opens atomic.Uint64
}

// New checks cfg and prepares the device; log should already name the
// adapter and device, New adds the port. The port is opened by Run.
func New(cfg Config, gateway string, pub mqttdevice.Publisher, log *slog.Logger) (*Device, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		return nil, fmt.Errorf("%s: name is empty", cfg.Kind)
	}
	where := fmt.Sprintf("%s %q", cfg.Kind, cfg.Name)
	if cfg.Port.Port == "" {
		return nil, fmt.Errorf("%s: port is empty", where)
	}
	if pub == nil {
		return nil, fmt.Errorf("%s: no publisher", where)
	}
	mode, err := serialport.PortMode(cfg.Port, cfg.DefaultBaud)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	tmpl, format, err := mqttdevice.Output(cfg.Topic, cfg.Payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	d := &Device{Name: cfg.Name, Gateway: gateway, Log: log.With("port", cfg.Port.Port), path: cfg.Port.Port, mode: mode}
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

// Run publishes the device offline, then keeps its port open and runs
// session on it until ctx ends. Whenever the port closes the device is shown
// offline; onState, when not nil, is told of every open and close.
func (d *Device) Run(ctx context.Context, session serialport.Session, onState func(open bool)) {
	d.Status.Begin()
	serialport.KeepOpen(ctx, d.path, d.mode, d.Log, session, func(open bool) {
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

// Opens is how many times the port was opened, the first included.
func (d *Device) Opens() uint64 { return d.opens.Load() }

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edged/edged/adapters/at"
	"github.com/edged/edged/adapters/modbus"
	"github.com/edged/edged/adapters/serialline"
	"github.com/edged/edged/bridge"
	"github.com/edged/edged/broker"
	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/homeassistant"
	"github.com/edged/edged/telemetry"
)

// stopLimit is how long the parts get to stop after SIGTERM; systemd's
// default stop timeout is far longer, but a gateway should restart fast.
const stopLimit = 4500 * time.Millisecond

func cmdRun(ctx context.Context, args []string, stderr io.Writer) int {
	fs := newFlags("run", "[-c FILE]", `
Run the gateway: open the broker's listeners, poll the configured devices
and, when [uplink] is set, forward topics upstream through the buffer.
Stops cleanly on SIGTERM or SIGINT. Under systemd (Type=notify) it reports
READY=1 once the listeners are open and pings the watchdog.`, stderr)
	path := configFlag(fs)
	if code := parse(fs, args, 0); code >= 0 {
		return code
	}
	cfg := loadConfig(*path, stderr)
	if cfg == nil {
		return exitError
	}
	return daemon(ctx, cfg, stderr, nil)
}

// daemon runs every configured part until ctx ends or one of them fails.
// ready, when not nil, is called once the broker's listeners are open.
func daemon(ctx context.Context, cfg *config.Config, stderr io.Writer, ready func(*broker.Broker)) int {
	notify := newNotifier(os.Getenv)
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format, os.Getenv("JOURNAL_STREAM") != "")
	log.Info("edged starting", "version", version, "config", cfg.File, "gateway", cfg.Gateway.ID)
	for _, w := range cfg.Warnings {
		log.Warn("config", "warning", w.Error())
	}
	if err := serve(ctx, cfg, log, notify, ready); err != nil {
		log.Error("edged stopped", "err", err)
		if addr, ok := portClash(err); ok {
			explainClash(stderr, addr, fmt.Sprintf(`set address = "127.0.0.1:1884" in [[broker.listener]] of %s`, cfg.File))
		}
		return exitError
	}
	log.Info("edged stopped")
	return exitOK
}

// part is a long-running piece of the gateway: it blocks until ctx ends.
type part interface {
	Run(ctx context.Context) error
}

// staller is a part that can tell whether its loops make progress
// (package liveness): nil, or which loop is stuck in what.
type staller interface {
	Stalled() error
}

// progress is the watchdog's view of the parts: healthy while none is
// stuck. A change either way is logged once.
type progress struct {
	parts []staller
	log   *slog.Logger
	stuck bool
}

// watched returns what the watchdog checks: the broker, the buffer when
// there is one (neither is in parts: the broker outlives them, the buffer
// is the bridge's), and every part that can tell.
func watched(brk *broker.Broker, buf *buffer.Buffer, parts []part) []staller {
	out := []staller{brk}
	if buf != nil {
		out = append(out, buf)
	}
	for _, p := range parts {
		if s, ok := p.(staller); ok {
			out = append(out, s)
		}
	}
	return out
}

// stalled returns every stuck part's error; empty while all make progress.
// /healthz reports the same list.
func (p *progress) stalled() []error {
	var errs []error
	for _, s := range p.parts {
		if err := s.Stalled(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func (p *progress) ok() bool {
	err := errors.Join(p.stalled()...)
	switch {
	case err != nil && !p.stuck:
		p.log.Error("a part makes no progress; no longer pinging the systemd watchdog", "err", err)
	case err == nil && p.stuck:
		p.log.Info("every part makes progress again; pinging the systemd watchdog")
	}
	p.stuck = err != nil
	return err == nil
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, notify *notifier, ready func(*broker.Broker)) error {
	if err := os.MkdirAll(cfg.Gateway.StateDir, 0o750); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	brk, err := broker.New(cfg.Broker, cfg.Gateway.StateDir, log.With("component", "broker"))
	if err != nil {
		return err
	}
	// When another part fails to start, the broker never runs: its store
	// is closed here. Once it has run, Run closed it and this does nothing.
	defer brk.Close()

	var buf *buffer.Buffer
	var br *bridge.Bridge
	var parts []part
	stats := &statsPublisher{
		topic: cfg.Gateway.ID + "/edged/stats", started: time.Now(), publish: brk.Publish,
		log:     log.With("component", "stats"),
		sources: []statsSource{{section: "broker", stats: func() any { return brk.Stats() }}},
	}
	if cfg.Uplink != nil {
		buf, err = openBuffer(cfg, log)
		if err != nil {
			return err
		}
		defer func() {
			if err := buf.Close(); err != nil {
				log.Error("closing the buffer", "err", err)
			}
		}()
		stats.sources = append(stats.sources, statsSource{section: "buffer", stats: func() any { return buf.Stats() }})
		br, err = bridge.New(*cfg.Uplink, buf, cfg.Gateway.ID, brk, log.With("component", "uplink"))
		if err != nil {
			return err
		}
		stats.sources = append(stats.sources, statsSource{section: "uplink", stats: func() any { return br.Stats() }})
		brk.SetInterceptor(func(m telemetry.Message, from telemetry.Origin) error {
			if err := br.Intercept(m, from); err != nil {
				if errors.Is(err, bridge.ErrRefused) {
					return broker.ErrQuotaExceeded
				}
				return err
			}
			return nil
		})
		parts = append(parts, br)
	}
	adapters, sources, err := newAdapters(cfg, brk, log)
	if err != nil {
		return err
	}
	parts = append(parts, adapters...)
	stats.sources = append(stats.sources, sources...)
	parts = append(parts, stats)
	// Even when disabled it runs: it clears the entities an earlier run
	// with [homeassistant] enabled announced.
	ha, err := homeassistant.New(cfg, brk, brk, homeassistant.Options{Version: version, Log: log.With("component", "homeassistant")})
	if err != nil {
		return err
	}
	parts = append(parts, ha)
	alive := &progress{parts: watched(brk, buf, parts), log: log}
	if cfg.HTTP.Address != "" {
		web, err := newObserver(cfg, brk, br, stats.sources, alive, stats.started, log)
		if err != nil {
			return err
		}
		parts = append(parts, web)
	}

	// runCtx ends on a signal or when any part fails; the broker outlives the
	// others so their last publishes land.
	g, runCtx := errgroup.WithContext(ctx)
	brkCtx, stopBroker := context.WithCancel(context.Background())
	defer stopBroker()
	brkDone := make(chan struct{})
	var brkErr error
	go func() { brkErr = brk.Run(brkCtx); close(brkDone) }()

	select {
	case <-brk.Ready():
	case <-brkDone:
		var le *broker.ListenerError
		if errors.As(brkErr, &le) {
			return cfg.Errorf(fmt.Sprintf("broker.listener[%d].address", le.Index), le,
				"cannot listen on %s: %v", le.Address, errors.Unwrap(le.Err))
		}
		return fmt.Errorf("broker: %w", brkErr)
	case <-ctx.Done():
		stopBroker()
		<-brkDone
		return nil
	}
	for _, a := range brk.Addrs() {
		log.Info("broker listening", "address", a.String())
	}
	if len(cfg.Broker.Listeners) == 0 {
		log.Info("broker has no listeners (listener = []): only edged's own parts use it")
	}
	gatewayStatus := func(s string) {
		if err := brk.Publish(telemetry.GatewayStatusTopic(cfg.Gateway.ID), []byte(s), 1, true); err != nil {
			log.Warn("gateway status not published", "status", s, "err", err)
		}
	}
	gatewayStatus("online")
	g.Go(func() error {
		select {
		case <-brkDone:
			return fmt.Errorf("broker stopped: %v", brkErr)
		case <-runCtx.Done():
			return nil
		}
	})
	for _, p := range parts {
		g.Go(func() error { return p.Run(runCtx) })
	}
	if err := notify.send("READY=1"); err != nil {
		log.Warn("systemd notify failed", "err", err)
	}
	if ready != nil {
		ready(brk)
	}
	g.Go(func() error {
		notify.pingWatchdog(runCtx, func() bool { return runCtx.Err() == nil && alive.ok() })
		return nil
	})

	<-runCtx.Done()
	_ = notify.send("STOPPING=1")
	done := make(chan error, 1)
	go func() {
		err := g.Wait()
		// The broker's last word for edged itself. A process that dies
		// takes the broker with it: its clients see the connection drop
		// (Home Assistant then marks every entity unavailable on its own),
		// and the next start says online again.
		gatewayStatus("offline")
		stopBroker()
		<-brkDone
		if err == nil && brkErr != nil {
			err = fmt.Errorf("broker: %w", brkErr)
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(stopLimit):
		return fmt.Errorf("parts did not stop within %v", stopLimit)
	}
}

func openBuffer(cfg *config.Config, log *slog.Logger) (*buffer.Buffer, error) {
	opts := buffer.Options{
		Path:     filepath.Join(cfg.Gateway.StateDir, "buffer.db"),
		MaxBytes: int64(cfg.Buffer.MaxBytes),
		MaxAge:   cfg.Buffer.MaxAge.Duration,
		Log:      log.With("component", "buffer"),
	}
	if cfg.Buffer.WhenFull == "reject" {
		opts.WhenFull = buffer.Reject
	}
	if cfg.Buffer.Durability == "power-loss-unsafe" {
		opts.Durability = buffer.PowerLossUnsafe
	}
	return buffer.Open(opts)
}

func newAdapters(cfg *config.Config, brk *broker.Broker, log *slog.Logger) ([]part, []statsSource, error) {
	var parts []part
	var sources []statsSource
	gw := cfg.Gateway.ID
	for _, bus := range cfg.Modbus {
		p, err := modbus.New(bus, gw, brk, brk, log) // it names itself: adapter=modbus bus=NAME
		if err != nil {
			return nil, nil, fmt.Errorf("modbus bus %q: %w", bus.Name, err)
		}
		parts = append(parts, p)
		sources = append(sources, statsSource{section: "modbus", name: bus.Name, stats: func() any { return p.Stats() }, offline: func() int {
			n := 0
			for _, d := range p.Stats().Devices {
				if !d.Online {
					n++
				}
			}
			return n
		}})
	}
	for _, s := range cfg.Serial {
		p, err := serialline.New(s, gw, brk, brk, log.With("adapter", "serial", "device", s.Name))
		if err != nil {
			return nil, nil, fmt.Errorf("serial device %q: %w", s.Name, err)
		}
		parts = append(parts, p)
		sources = append(sources, statsSource{section: "serial", name: s.Name, stats: func() any { return p.Stats() }, offline: func() int { return offline(p.Stats().Online) }})
	}
	for _, a := range cfg.AT {
		p, err := at.New(a, gw, brk, brk, log.With("adapter", "at", "device", a.Name))
		if err != nil {
			return nil, nil, fmt.Errorf("at device %q: %w", a.Name, err)
		}
		parts = append(parts, p)
		sources = append(sources, statsSource{section: "at", name: a.Name, stats: func() any { return p.Stats() }, offline: func() int { return offline(p.Stats().Online) }})
	}
	return parts, sources, nil
}

// offline counts a device that is not online.
func offline(online bool) int {
	if online {
		return 0
	}
	return 1
}

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/edged/edged/adapters/at"
	"github.com/edged/edged/adapters/modbus"
	"github.com/edged/edged/adapters/serialline"
	"github.com/edged/edged/bridge"
	"github.com/edged/edged/broker"
	"github.com/edged/edged/config"
	"github.com/edged/edged/observe"
)

// newObserver builds the [http] server over the running parts: their
// counters (the same sources as the stats topic), the watchdog's liveness
// signal, and the devices of the config for the status page. br is nil
// without an uplink.
func newObserver(cfg *config.Config, brk *broker.Broker, br *bridge.Bridge, sources []statsSource, alive *progress, started time.Time, log *slog.Logger) (*observe.Server, error) {
	src := observe.Sources{
		Gateway: cfg.Gateway.ID, Version: version, Started: started,
		Broker:     brk.Stats,
		Listening:  func() error { return listening(brk, len(cfg.Broker.Listeners)) },
		Liveness:   alive.stalled,
		Subscriber: brk,
	}
	if br != nil {
		src.Uplink = br.Stats
		src.BufferMaxBytes = int64(cfg.Buffer.MaxBytes)
	}
	for _, s := range sources {
		switch s.section {
		case "modbus":
			src.Modbus = append(src.Modbus, func() modbus.Stats { v, _ := s.stats().(modbus.Stats); return v })
		case "serial":
			src.Serial = append(src.Serial, observe.Named[serialline.Stats]{Name: s.name, Stats: func() serialline.Stats { v, _ := s.stats().(serialline.Stats); return v }})
		case "at":
			src.AT = append(src.AT, observe.Named[at.Stats]{Name: s.name, Stats: func() at.Stats { v, _ := s.stats().(at.Stats); return v }})
		}
	}
	for _, b := range cfg.Modbus {
		for _, d := range b.Devices {
			od := observe.Device{Name: d.Name, Kind: "modbus", Bus: b.Name, Topic: d.Topic}
			for _, p := range d.Points {
				od.Points = append(od.Points, observe.Point{Name: p.Name, Unit: p.Unit})
			}
			src.Devices = append(src.Devices, od)
		}
	}
	for _, s := range cfg.Serial {
		src.Devices = append(src.Devices, observe.Device{Name: s.Name, Kind: "serial", Topic: s.Topic})
	}
	for _, a := range cfg.AT {
		src.Devices = append(src.Devices, observe.Device{Name: a.Name, Kind: "at", Topic: a.Topic})
	}

	return observe.New(cfg.HTTP, src, log.With("component", "http"))
}

// listening says whether all of the broker's listeners are open.
func listening(brk *broker.Broker, want int) error {
	select {
	case <-brk.Ready():
	default:
		return errors.New("listeners not open yet")
	}
	if n := len(brk.Addrs()); n < want {
		return fmt.Errorf("%d of %d listeners open", n, want)
	}
	return nil
}

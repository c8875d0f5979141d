package homeassistant

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/edged/edged/config"
)

// Publisher publishes one message on the local broker.
type Publisher interface {
	Publish(topic string, payload []byte, qos byte, retain bool) error
}

// Subscriber subscribes to the local broker. The handler learns whether a
// message came from the retained store.
type Subscriber interface {
	Subscribe(filter string, handler func(topic string, payload []byte, retained bool)) (unsubscribe func(), err error)
}

// Options are what the daemon knows beyond the config.
type Options struct {
	Version string // edged's version, shown on the gateway device
	Log     *slog.Logger
}

// Discovery keeps Home Assistant's view of the gateway's devices in step
// with the config.
type Discovery struct {
	pub     Publisher
	sub     Subscriber
	log     *slog.Logger
	prefix  string
	b       builder
	enabled bool
	configs map[string][]byte // discovery topic → payload
	topics  []string          // the same topics, in announcement order
}

// New prepares the announcements of cfg. With [homeassistant] disabled,
// the Discovery announces nothing and only clears what an earlier run with
// it enabled left retained, so that turning it off removes the entities.
func New(cfg *config.Config, pub Publisher, sub Subscriber, opts Options) (*Discovery, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Discovery{
		pub: pub, sub: sub, log: log, prefix: cfg.HomeAssistant.Prefix,
		enabled: cfg.HomeAssistant.Enabled, configs: map[string][]byte{},
		b: builder{prefix: cfg.HomeAssistant.Prefix, gateway: cfg.Gateway.ID, node: idPart(cfg.Gateway.ID), version: opts.Version, uplink: cfg.Uplink != nil},
	}
	if !d.enabled {
		return d, nil
	}
	d.b.build(cfg)
	for _, a := range d.b.out {
		if _, dup := d.configs[a.topic]; dup {
			return nil, fmt.Errorf("homeassistant: two entities share the discovery topic %s", a.topic)
		}
		payload, err := json.Marshal(a.payload)
		if err != nil {
			return nil, fmt.Errorf("homeassistant: %s: %w", a.topic, err)
		}
		d.configs[a.topic] = payload
		d.topics = append(d.topics, a.topic)
	}
	return d, nil
}

// Configs returns every discovery topic and its payload, in announcement order.
func (d *Discovery) Configs() (topics []string, payloads [][]byte) {
	for _, t := range d.topics {
		topics = append(topics, t)
		payloads = append(payloads, d.configs[t])
	}
	return topics, payloads
}

// Run clears stale configs, announces every entity and announces them again
// each time Home Assistant comes online, until ctx ends.
func (d *Discovery) Run(ctx context.Context) error {
	if err := d.clearStale(); err != nil {
		return err
	}
	if !d.enabled {
		<-ctx.Done()
		return nil
	}
	d.announce("start")
	births := make(chan struct{}, 1)
	unsubscribe, err := d.sub.Subscribe(d.prefix+"/status", func(_ string, payload []byte, retained bool) {
		// A retained birth is one Home Assistant sent before this start:
		// the announcement above already answered it.
		if !retained && string(payload) == "online" {
			select {
			case births <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		return fmt.Errorf("homeassistant: %w", err)
	}
	defer unsubscribe()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-births:
			d.announce("Home Assistant came online")
		}
	}
}

func (d *Discovery) announce(why string) {
	failed := 0
	for _, t := range d.topics {
		if err := d.pub.Publish(t, d.configs[t], 1, true); err != nil {
			failed++
			d.log.Warn("discovery config not published", "topic", t, "err", err)
		}
	}
	d.log.Info("announced to Home Assistant", "entities", len(d.topics)-failed, "prefix", d.prefix, "why", why)
}

// clearStale reads back the retained configs this gateway announced before
// (the broker hands its retained store to a new subscription) and clears,
// with an empty retained message, each one no longer in the config.
func (d *Discovery) clearStale() error {
	var mu sync.Mutex
	var stale []string
	unsubscribe, err := d.sub.Subscribe(d.prefix+"/+/+/+/config", func(topic string, payload []byte, retained bool) {
		if !retained || len(payload) == 0 {
			return
		}
		if _, current := d.configs[topic]; current {
			return
		}
		var c struct {
			UniqueID string `json:"unique_id"`
		}
		if json.Unmarshal(payload, &c) != nil || !d.b.ownsUniqueID(c.UniqueID) {
			return // another program's entity
		}
		mu.Lock()
		stale = append(stale, topic)
		mu.Unlock()
	})
	if err != nil {
		return fmt.Errorf("homeassistant: reading back earlier configs: %w", err)
	}
	unsubscribe()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(stale)
	for _, t := range stale {
		if err := d.pub.Publish(t, nil, 1, true); err != nil {
			d.log.Warn("stale discovery config not cleared", "topic", t, "err", err)
			continue
		}
		d.log.Info("entity removed from Home Assistant: no longer in the config", "topic", t)
	}
	return nil
}

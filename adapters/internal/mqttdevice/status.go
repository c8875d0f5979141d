package mqttdevice

import (
	"log/slog"
	"sync"

	"github.com/edged/edged/telemetry"
)

// Status is a device's retained {gateway}/{device}/status, online or
// offline, published (QoS 1) and logged once per change.
type Status struct {
	out   *Out
	topic string
	log   *slog.Logger

	mu     sync.Mutex
	known  bool
	online bool
}

// NewStatus returns the status of device; nothing is published until
// Begin or Set.
func NewStatus(out *Out, gateway, device string, log *slog.Logger) *Status {
	return &Status{out: out, topic: telemetry.StatusTopic(gateway, device), log: log}
}

// Begin publishes offline for a device that is about to be opened: nothing
// is known of it yet, so nothing is logged.
func (s *Status) Begin() {
	s.mu.Lock()
	s.known, s.online = true, false
	s.mu.Unlock()
	s.out.Publish(s.topic, []byte("offline"), 1, true)
}

// Set publishes the status when it changes (or was not known) and logs the
// change with attrs (say why a device went offline). It reports whether the
// status changed.
func (s *Status) Set(online bool, attrs ...any) bool {
	s.mu.Lock()
	changed := !s.known || s.online != online
	s.known, s.online = true, online
	s.mu.Unlock()
	if !changed {
		return false
	}
	if online {
		s.log.Info("device online", attrs...)
		s.out.Publish(s.topic, []byte("online"), 1, true)
	} else {
		s.log.Warn("device offline", attrs...)
		s.out.Publish(s.topic, []byte("offline"), 1, true)
	}
	return true
}

// Online reports whether the device was last set online.
func (s *Status) Online() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online
}

// Offline reports whether the device is known to be offline: set offline,
// as opposed to not known yet.
func (s *Status) Offline() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known && !s.online
}

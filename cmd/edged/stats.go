package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"
	"unicode"
)

// statsInterval is how often the retained {gateway}/edged/stats message is
// refreshed: often enough to watch, rare enough for a slow uplink.
const statsInterval = 10 * time.Second

// statsSource names one part's counters in the stats message.
type statsSource struct {
	section string // "broker", "buffer", "modbus", "serial", "at"
	name    string // bus or device name; "" for the single parts
	stats   func() any
	offline func() int // devices of this source that are offline; nil: none
}

// statsPublisher publishes every part's counters, retained, on
// {gateway}/edged/stats: drops, timeouts, malformed packets and the like are
// counted in the parts, and this is where a user sees them without a shell.
type statsPublisher struct {
	topic   string
	started time.Time
	sources []statsSource
	publish func(topic string, payload []byte, qos byte, retain bool) error
	log     *slog.Logger
}

func (s *statsPublisher) Run(ctx context.Context) error {
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		if err := s.publish(s.topic, s.snapshot(), 0, true); err != nil {
			s.log.Debug("stats not published", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *statsPublisher) snapshot() []byte {
	doc := map[string]any{
		"version":  version,
		"uptime_s": int64(time.Since(s.started).Seconds()),
		"ts":       time.Now().UTC().Format(time.RFC3339),
	}
	offline := 0
	for _, src := range s.sources {
		if src.offline != nil {
			offline += src.offline()
		}
	}
	doc["devices_offline"] = offline
	for _, src := range s.sources {
		v := snakeKeys(src.stats())
		if src.name == "" {
			doc[src.section] = v
			continue
		}
		m, _ := doc[src.section].(map[string]any)
		if m == nil {
			m = map[string]any{}
			doc[src.section] = m
		}
		m[src.name] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return []byte(`{"error":"stats could not be encoded"}`)
	}
	return b
}

// snakeKeys re-encodes a counters struct with snake_case keys
// (DroppedQueueFull -> dropped_queue_full), the style of every other JSON
// edged publishes, without tagging each part's Stats type for JSON.
func snakeKeys(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var generic any
	if json.Unmarshal(b, &generic) != nil {
		return nil
	}
	return renameKeys(generic)
}

func renameKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[snake(k)] = renameKeys(e)
		}
		return out
	case []any:
		for i := range x {
			x[i] = renameKeys(x[i])
		}
		return x
	}
	return v
}

func snake(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) {
			// A new word starts at an upper-case letter after a lower-case
			// one, or before a lower-case one inside an acronym (URCs, ACL).
			if i > 0 && (unicode.IsLower(r[i-1]) || (i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]) && r[i+1] != 's')) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

package broker

import (
	"context"
	"log/slog"
)

// mochiLog is the slog handler mochi logs through. mochi is chatty at Info
// (every hook and listener added) and logs a Warn for every single message it
// drops; this handler turns its Info into Debug, turns its per-message drop
// warnings into dropLog's rate-limited state changes, and keeps packet dumps
// (which may hold payloads) at Debug.
type mochiLog struct {
	next  slog.Handler
	drops *dropLog
}

func (h *mochiLog) Enabled(ctx context.Context, l slog.Level) bool {
	// Asked before the record exists: drop warnings must always reach Handle.
	return l >= slog.LevelWarn || h.next.Enabled(ctx, slog.LevelDebug)
}

func (h *mochiLog) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "client store quota reached", "packet ids exhausted":
		var client, listener string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "client":
				client = a.Value.String()
			case "listener":
				listener = a.Value.String()
			}
			return true
		})
		h.drops.dropped(client, listener, "queue limit (max_inflight + max_queued) reached")
		return nil
	case "error processing packet", "publish packet error", "failed publishing packet",
		"client keepalive is below minimum recommended value and may exhibit connection instability":
		r.Level = slog.LevelDebug
	}
	if r.Level < slog.LevelWarn {
		r.Level = slog.LevelDebug
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *mochiLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &mochiLog{next: h.next.WithAttrs(as), drops: h.drops}
}

func (h *mochiLog) WithGroup(name string) slog.Handler {
	return &mochiLog{next: h.next.WithGroup(name), drops: h.drops}
}

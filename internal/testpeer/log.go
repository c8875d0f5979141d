package testpeer

import (
	"log/slog"
	"testing"
)

// Logger returns a debug-level text logger that writes to the test's own
// output, so a part's log shows next to the failure it explains (and with
// -v) and nowhere else.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

package broker

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/internal/testpeer"
)

// TestAStoreWriteThatMeetsAnotherProcesssLockIsRetried: someone (a sqlite3
// shell, a backup) holds broker.db's write lock longer than busy_timeout.
// The store retries the batch instead of losing the retained message.
func TestAStoreWriteThatMeetsAnotherProcesssLockIsRetried(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	var logs testpeer.Output
	st, err := NewStore(path, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	release := testpeer.HoldWriteLock(t, path)

	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	cl := srv.NewClient(nil, "tcp", "pub", false)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true, Qos: 0},
		TopicName: "pi-01/meter1/voltage", Payload: []byte("230")}
	st.OnRetainMessage(cl, pk, 1)
	testpeer.Eventually(t, 30*time.Second, "the writer to meet the lock", func() bool {
		s := logs.String()
		return strings.Contains(s, "database busy") || strings.Contains(s, "write failed")
	})
	release()
	ret, err := st.StoredRetainedMessages() // waits for the queued writes
	if err != nil {
		t.Fatal(err)
	}
	if len(ret) != 1 || ret[0].TopicName != "pi-01/meter1/voltage" {
		t.Fatalf("stored %d retained messages, want the one published while the lock was held; log:\n%s", len(ret), logs.String())
	}
}

package bridge

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/edged/edged/buffer"
)

// damagedBuffer is a buffer that lost messages before the daemon started
// (a file replaced or rolled back) and found unreadable rows in its file.
type damagedBuffer struct{ nopBuffer }

func (damagedBuffer) Stats() buffer.Stats { return buffer.Stats{LostOnOpen: 3, Damaged: 2} }

func TestTheStatusTopicTellsMessagesLostToTheFile(t *testing.T) {
	br, err := testNew(plainUplink("127.0.0.1:1"), damagedBuffer{}, "gw", nopLocal{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(br.statusJSON(time.Now()), &st); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{"lost_on_open": 3, "damaged": 2} {
		if got, ok := st[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v in %v", k, got, ok, want, st)
		}
	}
}

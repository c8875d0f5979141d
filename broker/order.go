package broker

import (
	"slices"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mochi v2.7.9 keeps a client's QoS 1/2 messages in a map and, when it
// resends them after a reconnect or a restart (or releases messages held
// back by a Receive Maximum, which edged leaves to outWindow), orders them
// by uint16(Created) with an unstable sort. Created is the publish time in whole seconds, so messages published
// in the same second come out in any order (a 300-message burst reached
// mosquitto_sub with 139 inversions; a persistent session's queue came back
// shuffled in 7 of 10 reconnects), against MQTT's ordering rule (4.6).
//
// The sequencer makes uint16(Created) mean publish order. Every publish is
// stamped, before mochi copies it to its subscribers, with
//
//	Created = second<<16 | counter
//
// where counter is one global 16-bit count and second never goes back, so
// the whole value is strictly increasing (it is the true order) and its low
// 16 bits, the part mochi sorts by, increase until counter wraps. When it
// wraps, every client's messages are renumbered 0..n-1 in their true order
// and counting resumes above the largest n, so the low bits stay in order;
// sessions restored from the store are renumbered at start. Wills, which
// mochi creates itself, keep plain seconds and no place in the order.
//
// What the library would need instead: sort by a per-client sequence with
// a stable sort, and queue new messages behind held-back ones.
const stampShift = 16

// stampTime returns the unix second a message was created: stamped values
// carry it above the counter; messages mochi created itself (wills) hold
// plain seconds.
func stampTime(created int64) int64 {
	if created >= 1<<40 {
		return created >> stampShift
	}
	return created
}

type sequencer struct {
	mu      sync.Mutex
	sec     int64 // the second part of the last stamp
	counter int   // the counter part of the last stamp
	floor   int   // where counting resumes after a renumber
	// renumber is called, with mu held, when counter wraps; it renumbers
	// every client's messages and returns the largest count renumbered and
	// the latest second among them.
	renumber func() (most int, latest int64)
	// renumbers counts the wraps, for tests.
	renumbers int
}

// stamp returns the next Created value.
func (s *sequencer) stamp(now time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := max(now.Unix(), s.sec)
	s.counter++
	if s.counter > 0xffff {
		s.renumbers++
		s.floor = 0
		if s.renumber != nil {
			s.floor, _ = s.renumber()
		}
		// The counter went back: the second must go forward so that the
		// whole value still increases.
		sec = max(now.Unix(), s.sec+1)
		s.counter = min(s.floor, 0xffff)
	}
	s.sec = sec
	return sec<<stampShift | int64(s.counter)
}

// restart renumbers the messages of every client (sessions restored from
// the store, stamped by an earlier run) and resumes counting above them,
// never before their second: a board without a real-time clock may start
// with its clock behind the last run's.
func (s *sequencer) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.renumber != nil {
		most, latest := s.renumber()
		s.counter = max(s.counter, min(most, 0xffff))
		s.sec = max(s.sec, latest)
	}
}

// renumberAll renumbers every client's in-flight publishes (see sequencer).
// It runs with the sequencer's lock held, so no publish is stamped meanwhile.
func (h *edgeHook) renumberAll(clients map[string]*mqtt.Client) (most int, latest int64) {
	for _, cl := range clients {
		n, sec := h.renumberClient(cl)
		most, latest = max(most, n), max(latest, sec)
	}
	return most, latest
}

// renumberClient renumbers cl's in-flight publishes; it returns how many
// and the latest second among them.
func (h *edgeHook) renumberClient(cl *mqtt.Client) (int, int64) {
	var pks []packets.Packet
	for _, pk := range cl.State.Inflight.GetAll(false) {
		if pk.FixedHeader.Type == packets.Publish {
			pks = append(pks, pk)
		}
	}
	slices.SortStableFunc(pks, cmpStamp)
	var latest int64
	for n, pk := range pks {
		latest = max(latest, stampTime(pk.Created))
		// Read the entry again just before writing it back: if mochi
		// completed it while we sorted, it must not come back, and a new
		// message under the same packet id keeps its own stamp.
		cur, ok := cl.State.Inflight.Get(pk.PacketID)
		if !ok || cur.Created != pk.Created {
			continue
		}
		cur.Created = stampTime(pk.Created)<<stampShift | int64(n)
		if cl.State.Inflight.Set(cur) {
			cl.State.Inflight.Delete(cur.PacketID)
		}
	}
	return len(pks), latest
}

// cmpStamp orders two messages by their true order: Created, then packet id.
func cmpStamp(a, b packets.Packet) int {
	switch {
	case a.Created < b.Created:
		return -1
	case a.Created > b.Created:
		return 1
	}
	return int(a.PacketID) - int(b.PacketID)
}

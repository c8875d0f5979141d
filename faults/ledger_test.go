package faults

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Ledger is the account of one run: for each local topic, the numbers
// handed out, those edged acknowledged (a PUBACK arrived) and how often each
// reached the upstream broker, in arrival order. It is safe for concurrent
// use by publishers and the upstream collector.
type Ledger struct {
	mu       sync.Mutex
	topics   map[string]*stream
	arrivals int // messages received upstream, copies included
}

// stream is one topic's account. Sequence numbers start at 1.
type stream struct {
	next       int
	acked      map[int]time.Time // when the PUBACK came
	seen       map[int]int
	maxLag     time.Duration // longest from PUBACK to first arrival upstream
	newest     int           // highest number seen so far (first copies only)
	outOfOrder int           // first copies that arrived after a higher number
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{topics: map[string]*stream{}} }

func (l *Ledger) stream(topic string) *stream {
	s := l.topics[topic]
	if s == nil {
		s = &stream{acked: map[int]time.Time{}, seen: map[int]int{}}
		l.topics[topic] = s
	}
	return s
}

// Next hands out the next sequence number of topic.
func (l *Ledger) Next(topic string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stream(topic)
	s.next++
	return s.next
}

// Acked records that edged acknowledged number seq of topic.
func (l *Ledger) Acked(topic string, seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stream(topic).acked[seq] = time.Now()
}

// Delivered records that number seq of topic reached the upstream broker.
func (l *Ledger) Delivered(topic string, seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.arrivals++
	s := l.stream(topic)
	s.seen[seq]++
	if s.seen[seq] > 1 {
		return
	}
	if at, ok := s.acked[seq]; ok {
		s.maxLag = max(s.maxLag, time.Since(at))
	}
	if seq < s.newest {
		s.outOfOrder++
	} else {
		s.newest = seq
	}
}

// Arrivals returns how many messages reached the upstream broker so far,
// copies included.
func (l *Ledger) Arrivals() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.arrivals
}

// Figures are a ledger's totals over every topic.
type Figures struct {
	Published    int           // numbers handed out (sent, or about to be, when edged died)
	Acknowledged int           // PUBACKs received
	Delivered    int           // acknowledged messages that reached the upstream broker at least once
	Lost         int           // acknowledged and never delivered
	Duplicates   int           // copies beyond the first, of any message
	OutOfOrder   int           // first copies that arrived after a later number of the same topic
	Unacked      int           // delivered although no PUBACK came back (edged died first): allowed
	MaxLag       time.Duration // longest time from a PUBACK to the message's first arrival upstream
	LostSample   []string
}

// Figures totals the ledger now.
func (l *Ledger) Figures() Figures { return l.FiguresOf("") }

// FiguresOf totals the topics that begin with prefix.
func (l *Ledger) FiguresOf(prefix string) Figures {
	l.mu.Lock()
	defer l.mu.Unlock()
	var f Figures
	names := make([]string, 0, len(l.topics))
	for name := range l.topics {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		s := l.topics[name]
		f.Published += s.next
		f.Acknowledged += len(s.acked)
		f.OutOfOrder += s.outOfOrder
		f.MaxLag = max(f.MaxLag, s.maxLag)
		for seq, n := range s.seen {
			f.Duplicates += n - 1
			if _, ok := s.acked[seq]; !ok {
				f.Unacked++
			}
		}
		var lost []int
		for seq := range s.acked {
			if s.seen[seq] > 0 {
				f.Delivered++
			} else {
				lost = append(lost, seq)
			}
		}
		f.Lost += len(lost)
		sort.Ints(lost)
		for _, seq := range lost {
			if len(f.LostSample) < 10 {
				f.LostSample = append(f.LostSample, fmt.Sprintf("%s#%d", name, seq))
			}
		}
	}
	return f
}

// Missing returns how many acknowledged messages have not been delivered.
func (l *Ledger) Missing() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.topics {
		for seq := range s.acked {
			if s.seen[seq] == 0 {
				n++
			}
		}
	}
	return n
}

// String is the figures as the suites print them, one line.
func (f Figures) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "acknowledged %d, delivered %d, lost %d, duplicates %d, out-of-order %d (published %d, delivered without ack %d, max lag %v)",
		f.Acknowledged, f.Delivered, f.Lost, f.Duplicates, f.OutOfOrder, f.Published, f.Unacked, f.MaxLag.Round(time.Millisecond))
	if len(f.LostSample) > 0 {
		fmt.Fprintf(&b, "; lost include %s", strings.Join(f.LostSample, " "))
	}
	return b.String()
}

// TestLedgerCountsLossDuplicatesAndOrderPerTopic checks the account the
// suites' verdicts rest on.
func TestLedgerCountsLossDuplicatesAndOrderPerTopic(t *testing.T) {
	l := NewLedger()
	for range 5 {
		l.Next("a")
	}
	l.Next("b")
	for _, seq := range []int{1, 2, 3, 4} {
		l.Acked("a", seq) // 5 was sent, never acknowledged
	}
	l.Acked("b", 1)
	for _, seq := range []int{1, 3, 2, 3, 5} { // 2 after 3: out of order; 3 twice; 4 lost; 5 unacked
		l.Delivered("a", seq)
	}
	l.Delivered("b", 1) // another topic's order is its own
	if l.Missing() != 1 {
		t.Errorf("missing %d, want 1", l.Missing())
	}
	f := l.Figures()
	want := Figures{Published: 6, Acknowledged: 5, Delivered: 4, Lost: 1, Duplicates: 1, OutOfOrder: 1, Unacked: 1}
	f.MaxLag, f.LostSample = 0, nil
	if !reflect.DeepEqual(f, want) {
		t.Errorf("figures\n got %+v\nwant %+v", f, want)
	}
	if got := l.FiguresOf("b"); got.Acknowledged != 1 || got.Delivered != 1 || got.OutOfOrder != 0 {
		t.Errorf("topic b alone: %+v", got)
	}
	if s := l.Figures().LostSample; len(s) != 1 || s[0] != "a#4" {
		t.Errorf("lost sample %v, want [a#4]", s)
	}
}

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// SeedEnv names the environment variable that fixes a run's random choices
// (what to break and when); every run prints the seed it used.
const SeedEnv = "EDGED_FAULT_SEED"

// Options shape a Rig.
type Options struct {
	Bin        string        // the edged binary
	StateDir   string        // edged's state_dir (on LazyFS, a small partition, or a temporary directory)
	Durability string        // [buffer] durability; "" leaves the key out, so edged's default applies
	Topics     int           // publishers, one topic each; 0 means 2
	Pace       time.Duration // least time between two publishes of one publisher
	Window     int           // unacknowledged publishes per publisher; 0 means 16
	Size       int           // payload bytes; 0 means 64
	Reconnect  bool          // a publisher whose connection ends connects again until stopped
	// DefaultBackoff leaves [uplink] max_backoff at edged's default (30 s)
	// instead of 500 ms, which keeps the many short cycles of the suites fast.
	DefaultBackoff bool
}

// Rig is the setting every fault scenario shares: an upstream Mosquitto, a
// link to it that can be cut, edged forwarding gw/seq/# through that link,
// one publisher per topic, a subscriber upstream, and the ledger that
// accounts for every message. The scenario breaks things; the rig runs
// edged, publishes and counts.
type Rig struct {
	T        testing.TB
	Upstream *testpeer.Mosquitto
	Link     *testpeer.Proxy // edged's uplink goes through it
	Edged    *Edged
	Ledger   *Ledger
	Rand     *rand.Rand
	StateDir string

	opts      Options
	quiet     time.Duration // how long Drain waits with nothing arriving before it gives up
	topics    []string
	collector *Collector
}

// NewRig starts the upstream broker, the link and the upstream subscriber,
// and writes edged's config; edged itself is started with Start.
func NewRig(t testing.TB, o Options) *Rig {
	t.Helper()
	if o.Topics == 0 {
		o.Topics = 2
	}
	if o.Window == 0 {
		o.Window = 16
	}
	if o.Size == 0 {
		o.Size = 64
	}
	// No queue limit upstream: a message Mosquitto drops for a slow
	// subscriber would be counted as lost by edged.
	up := testpeer.StartMosquitto(t, "max_queued_messages 0\nmax_inflight_messages 0")
	r := &Rig{
		T: t, Upstream: up, Link: testpeer.StartProxy(t, up.Addr), Ledger: NewLedger(),
		Rand: Random(t), StateDir: o.StateDir, opts: o,
	}
	for i := range o.Topics {
		r.topics = append(r.topics, fmt.Sprintf("gw/seq/t%d", i))
	}
	var err error
	if r.collector, err = Collect(up.Addr, "faults-collector", "up/gw/seq/#", "up/", r.Ledger); err != nil {
		t.Fatalf("upstream subscriber: %v", err)
	}
	t.Cleanup(r.collector.Close)

	work := t.TempDir()
	listen := testpeer.FreePort(t)
	backoff := `max_backoff = "500ms"`
	r.quiet = 10 * time.Second
	if o.DefaultBackoff {
		backoff, r.quiet = "", 45*time.Second // the longest wait between attempts, and then some
	}
	durability := ""
	if o.Durability != "" {
		durability = fmt.Sprintf("durability = %q", o.Durability)
	}
	conf := fmt.Sprintf(`[gateway]
id = "gw"
state_dir = %q

[[broker.listener]]
address = %q

[uplink]
url = "mqtt://%s"
client_id = "edged-faults"
%s
forward = [ { local = "gw/seq/#", remote_prefix = "up/", qos = 1 } ]

[buffer]
%s
`, o.StateDir, listen, r.Link.Addr, backoff, durability)
	r.Edged = &Edged{Bin: o.Bin, Listen: listen, Config: filepath.Join(work, "edged.toml"), Log: filepath.Join(work, "edged.log")}
	if err := os.WriteFile(r.Edged.Config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Edged.Kill()
		if t.Failed() {
			t.Logf("edged log (%s), last lines:\n%s", r.Edged.Log, r.Edged.Tail(60))
			t.Logf("upstream Mosquitto, last lines:\n%s", lastLines(r.Upstream.Log(), 20))
		}
	})
	return r
}

// Random returns the source of a run's random choices, seeded with
// SeedEnv's value or a new seed, printed either way so that a failure can be
// replayed.
func Random(t testing.TB) *rand.Rand {
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv(SeedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, v, err)
		}
		s = n
	}
	t.Logf("seed %d (%s=%d repeats this run's choices)", s, SeedEnv, s)
	return rand.New(rand.NewPCG(s, 0))
}

// Start starts edged and waits until it listens; failing that, the test
// fails with the end of edged's log.
func (r *Rig) Start() {
	r.T.Helper()
	if err := r.Edged.Start(20 * time.Second); err != nil {
		r.T.Fatal(err)
	}
}

// SetLink restores the uplink's link or cuts it.
func (r *Rig) SetLink(up bool) {
	if up {
		r.Link.Restore()
	} else {
		r.Link.Cut()
	}
}

// Between returns a random duration in [lo, hi).
func (r *Rig) Between(lo, hi time.Duration) time.Duration { return Between(r.Rand, lo, hi) }

// Between returns a random duration in [lo, hi) drawn from rnd.
func Between(rnd *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rnd.Int64N(int64(hi-lo)))
}

// Publish starts one publisher per topic against edged and returns a
// function that stops them (each waits for the acknowledgements it is owed)
// and returns once all have ended, with how many connections ended on an
// error — which is expected when edged was killed under them or refused a
// message (then, with Options.Reconnect, the publisher connects again).
func (r *Rig) Publish() (stop func() (failed int)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for i, topic := range r.topics {
		p := Publisher{Addr: r.Edged.Listen, ID: fmt.Sprintf("faults-pub-%d", i), Topic: topic,
			Window: r.opts.Window, Pace: r.opts.Pace, Size: r.opts.Size, Ledger: r.Ledger}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := p.Run(ctx)
				if err == nil {
					return
				}
				mu.Lock()
				failed++
				mu.Unlock()
				if !r.opts.Reconnect {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond): // not a hot loop while edged refuses
				}
			}
		}()
	}
	var once sync.Once
	return func() int {
		once.Do(func() { cancel(); wg.Wait() })
		mu.Lock()
		defer mu.Unlock()
		return failed
	}
}

// SetTopics changes the topics the next publishers use (gw/seq/<name>0, 1
// ...), so that a phase of a scenario is counted apart with FiguresOf.
func (r *Rig) SetTopics(name string) {
	for i := range r.topics {
		r.topics[i] = fmt.Sprintf("gw/seq/%s%d", name, i)
	}
}

// PublishFor publishes for d and stops.
func (r *Rig) PublishFor(d time.Duration) {
	stop := r.Publish()
	time.Sleep(d) // the length of a burst, not a wait for an event
	stop()
}

// AwaitArrival waits up to limit until one more message has reached the
// upstream broker than when it was called, and reports whether one did.
func (r *Rig) AwaitArrival(limit time.Duration) bool {
	from := r.Ledger.Arrivals()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if r.Ledger.Arrivals() > from {
			return true
		}
	}
	return false
}

// Drain restores the link, makes sure edged runs, and waits until the
// upstream broker has every acknowledged message — at most limit, and no
// longer than 10 s (45 s with Options.DefaultBackoff) after the last
// message arrived. It returns an error
// when some are still missing then (they are counted as lost).
func (r *Rig) Drain(limit time.Duration) error {
	r.T.Helper()
	r.Link.Restore()
	if !r.Edged.Running() {
		r.Start()
	}
	deadline := time.Now().Add(limit)
	arrivals, lastArrival := r.Ledger.Arrivals(), time.Now()
	for r.Ledger.Missing() > 0 {
		if err := r.collector.Err(); err != nil {
			return err
		}
		if !r.Edged.Running() {
			return fmt.Errorf("edged exited while draining:\n%s", r.Edged.Tail(30))
		}
		if n := r.Ledger.Arrivals(); n != arrivals {
			arrivals, lastArrival = n, time.Now()
		}
		if time.Now().After(deadline) || time.Since(lastArrival) > r.quiet {
			return fmt.Errorf("%d acknowledged messages still missing upstream (waited %v, the last %v with nothing arriving)",
				r.Ledger.Missing(), time.Since(deadline.Add(-limit)).Round(time.Second), time.Since(lastArrival).Round(time.Second))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Report logs a scenario's figures in the suites' one-line format and
// returns them.
func (r *Rig) Report(scenario string, extra string) Figures {
	f := r.Ledger.Figures()
	if extra != "" {
		extra += ", "
	}
	r.T.Logf("FIGURES %s: %s%s", scenario, extra, f)
	return f
}

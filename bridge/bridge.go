package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/cloudauth"
	"github.com/edged/edged/config"
	"github.com/edged/edged/liveness"
	"github.com/edged/edged/telemetry"
)

// Buffer is what the bridge needs of the durable queue (*buffer.Buffer).
type Buffer interface {
	Append(ctx context.Context, m telemetry.Message) error
	AppendAll(ctx context.Context, ms []telemetry.Message) []error
	Read(after int64, n int) ([]buffer.Entry, error)
	Ack(seq ...int64) error
	Notify() <-chan struct{}
	Stats() buffer.Stats
	// DeadLetter moves an entry into the dead-letter table: kept on
	// disk, never sent again by edged.
	DeadLetter(seq int64, reason string) error
	// DeadLetters counts the entries in the dead-letter table.
	DeadLetters() (int64, error)
}

// Local is what the bridge needs of the local broker (*broker.Broker):
// publishing downlink messages and its own status in-process, named as
// origin so that Intercept knows them when the broker hands them back.
type Local interface {
	PublishAs(part, topic string, payload []byte, qos byte, retain bool) error
}

// origin is the name the bridge publishes under in the local broker
// (telemetry.Origin.Part).
const origin = "uplink"

// ErrRefused is wrapped by Intercept's error when a message that must be
// buffered could not be (the buffer is full under the reject policy, or the
// disk is full). The daemon maps it to the broker's quota-exceeded refusal.
var ErrRefused = errors.New("bridge: message refused: buffer full")

const (
	// appendTimeout bounds how long a local publisher waits for its message
	// to be committed before it is refused.
	appendTimeout = 30 * time.Second
	// statusEvery is how often the status topic is refreshed without a change.
	statusEvery = 10 * time.Second
	// directQueue holds QoS 0 messages on their way upstream while connected;
	// beyond it they are dropped (counted) rather than stall a local publisher.
	directQueue = 1024
)

// Bridge is the uplink: it forwards matching local messages upstream
// (through the buffer), brings downlink topics into the local broker, and
// owns the connection to the upstream broker.
type Bridge struct {
	cfg      config.Uplink
	buf      Buffer
	local    Local
	log      *slog.Logger
	gateway  string
	servers  []server
	forward  []forwardRule
	downlink []downlinkRule

	clientID   string
	password   string
	keepalive  time.Duration
	minBackoff time.Duration // the first wait after a failed round; a test lengthens it
	maxBackoff time.Duration
	inflight   int
	ackTimeout time.Duration
	deadAfter  int // drops by the server before a message is set aside

	statusTopic string // upstream will/online
	uplinkTopic string // local retained status JSON

	rnd func() float64 // jitter source, replaceable in tests

	// live records the progress of the bridge's bounded operations for
	// the watchdog (Stalled): connection attempts, hand-offs to paho and
	// status publishes. Its clock is now, which tests replace before Run.
	live       *liveness.Set
	now        func() time.Time
	connecting *liveness.Loop
	statusing  *liveness.Loop

	cloud     *cloudLink // [uplink] cloud, nil without one (cloud.go)
	gathering gathering  // cloud posts gathering the points of a poll (cloud_batch.go)

	connected atomic.Bool
	direct    chan telemetry.Message
	changed   chan struct{}

	// resendUpTo is the highest sequence number ever handed to paho; an
	// entry at or below it that is published again may be a duplicate.
	// Owned by the goroutine running Run.
	resendUpTo int64
	pubs       sync.WaitGroup // sessions' goroutines that may outlive them, see drain

	// suspect is the entry that was alone in flight when the server last
	// dropped the connection, and how many drops in a row it was; skipped
	// holds entries that should have gone to the dead-letter table and
	// could not. Owned by the goroutine running Run, like careful.
	suspect suspect
	skipped map[int64]bool
	careful int64 // entries up to this seq go up one at a time (see judge)

	inproc inproc // in-process messages on their way to the buffer

	deadLetters   atomic.Int64  // entries in the dead-letter table
	unforwardable atomic.Uint64 // see Stats.Unforwardable
	topicLog      rateLog

	mu sync.Mutex
	st Stats // connection fields; counters below are atomic

	delivered, sentQoS0, droppedQoS0, refused     atomic.Uint64
	lastDelivery                                  atomic.Int64 // unix nanoseconds of the last PUBACK; 0 before one
	notForwarded, duplicates, downlinked, dlDrops atomic.Uint64
	connects, connectFailures                     atomic.Uint64
}

// Stats describe the uplink now and what it did since New.
type Stats struct {
	Connected bool
	Server    string    // the server of the current or last connection (attempt)
	Since     time.Time // when Connected last changed
	LastError string    // why the last connection ended or attempt failed
	// Subscribed is true once the upstream acknowledged every downlink
	// subscription of the current connection.
	Subscribed bool

	Connects        uint64 // connections made
	ConnectFailures uint64 // attempts that failed
	// RetryWait is the wait chosen before the latest connection attempt
	// (the backoff): it shows whether a dropped link is retried at once.
	RetryWait time.Duration `json:"-"`

	Delivered          uint64    // buffered messages confirmed by the upstream (PUBACK)
	LastDelivery       time.Time // when the last of them was confirmed; zero before the first
	SentQoS0           uint64    // QoS 0 messages sent without the buffer
	DroppedQoS0        uint64    // QoS 0 messages dropped: disconnected, or the send queue full
	Refused            uint64    // messages refused because the buffer was full
	NotForwarded       uint64    // messages that came down (or are the bridge's own) not sent back up
	DuplicatesPossible uint64    // messages sent again after a connection ended before their PUBACK
	Downlinked         uint64    // messages from upstream published locally
	DownlinkDropped    uint64    // messages from upstream no rule could map, or the local broker refused
	// Unforwardable counts messages a forward rule matched whose upstream
	// topic no broker would take (not UTF-8, a control character, longer
	// than 65535 bytes): delivered locally, never sent up.
	Unforwardable uint64
	// DeadLetters is the number of messages in the dead-letter table: ones
	// the upstream kept dropping the connection over (see judge).
	DeadLetters int64

	Buffer buffer.Stats `json:"-"` // the buffer's own section of the stats topic
}

// New prepares a bridge from a validated cfg (config.Load owns its rules:
// the inflight bound, the TLS files, password or password_file, the gateway
// id as one topic level) and logs in with the password config loaded
// (cfg.LoginPassword); it does not connect. gateway is the gateway id
// ({gateway} in topics); local receives downlink messages and the status
// topic. The TLS files are loaded again before every connection (tlsConfig),
// so that a CA file that goes bad later fails that connection rather than
// skipping verification.
func New(cfg config.Uplink, buf Buffer, gateway string, local Local, log *slog.Logger) (*Bridge, error) {
	if buf == nil || local == nil {
		return nil, errors.New("uplink: a buffer and a local broker are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	br := &Bridge{
		cfg: cfg, buf: buf, local: local, gateway: gateway,
		log:         log,
		clientID:    cfg.ClientID,
		password:    string(cfg.LoginPassword), // password or password_file, as config.Load read it
		keepalive:   cfg.Keepalive.Duration,
		minBackoff:  minBackoff,
		maxBackoff:  cfg.MaxBackoff.Duration,
		inflight:    cfg.Inflight,
		ackTimeout:  cfg.AckTimeout.Duration,
		deadAfter:   cfg.DeadLetterAfter,
		skipped:     map[int64]bool{},
		statusTopic: gateway + "/status",
		uplinkTopic: gateway + "/edged/uplink",
		rnd:         rand.Float64,
		now:         time.Now,
		direct:      make(chan telemetry.Message, directQueue),
		changed:     make(chan struct{}, 1),
	}
	br.inproc.ctx, br.inproc.cancel = context.WithCancel(context.Background())
	br.live = liveness.NewSet(func() time.Time { return br.now() })
	br.connecting = br.live.Loop("uplink connect", connectLimit)
	br.statusing = br.live.Loop("uplink status", statusLimit)
	var err error
	if br.servers, err = parseServers(cfg); err != nil {
		return nil, err
	}
	if br.forward, err = parseForward(cfg.Forward); err != nil {
		return nil, err
	}
	if br.downlink, err = parseDownlink(cfg.Downlink); err != nil {
		return nil, err
	}
	if br.clientID == "" || br.keepalive <= 0 || br.maxBackoff <= 0 || br.inflight <= 0 || br.ackTimeout <= 0 || br.deadAfter <= 0 {
		// Only a config built in code without config.DefaultUplink gets
		// here (config.Load sets and checks each); a zero would stall the
		// uplink or make it reconnect without pause.
		return nil, errors.New("uplink: client_id or a limit not set (a config from config.Load or config.DefaultUplink has them)")
	}
	if br.cloud, err = newCloud(cfg); err != nil {
		return nil, err
	}
	if err := br.cloudRules(); err != nil {
		return nil, err
	}
	br.st.Server = br.servers[0].display
	n, err := buf.DeadLetters()
	if err != nil {
		log.Warn("uplink: cannot count the dead-letter table", "err", err)
	}
	br.deadLetters.Store(n)
	return br, nil
}

// Intercept is the local broker's interceptor: it sees every local publish
// before the publisher is acknowledged. A message no forward rule matches
// costs a few string comparisons and is let through. A matching message is
// forwarded at the rule's QoS, or QoS 1 when it was published with QoS 1 or
// more, so the durability promise holds whatever the rule says. QoS 1 (and
// QoS 0 with buffer_qos0) from a network client (from.Client set) is
// committed to the buffer before Intercept returns; an error wrapping
// ErrRefused means it could not be, and the publisher must not be
// acknowledged. The same from an in-process publisher (an adapter's
// reading) is queued for the buffer and Intercept returns at once: nobody
// waits for its acknowledgement, so the poll loop does not wait for the
// disk. Other QoS 0 messages are sent straight away while connected and
// dropped (counted) while not. Messages the bridge published locally itself
// (downlink, status: from.Part is origin) return at once, before any
// forward rule, and messages whose upstream topic no broker takes are not
// forwarded (counted, logged).
func (br *Bridge) Intercept(m telemetry.Message, from telemetry.Origin) error {
	if from.Part == origin {
		return nil
	}
	r := forwardFor(br.forward, m.Topic)
	if r == nil {
		return nil
	}
	remote := r.prefix + m.Topic
	if r.format == cloudauth.Azure {
		remote = br.cloud.eventsTopic(m.Topic)
	} else if r.format != "" {
		if from.InProcess() {
			br.gather(m) // posted with the other points of its device (cloud_batch.go)
			return nil
		}
		var ok bool
		m.Retain = false
		if remote, m.Payload, ok = br.propertyPost(m); !ok {
			return nil // not a reading (a bad-quality report): logged
		}
	}
	if why := remoteTopicProblem(remote); why != "" {
		// Sent up, it would make the upstream drop the connection or
		// arrive on another topic; kept, it would stall the queue.
		br.unforwardable.Add(1)
		if n, ok := br.topicLog.allow(time.Now()); ok {
			br.log.Warn("uplink: not forwarding a message: no upstream broker takes its topic; it is delivered locally only",
				"topic", shortTopic(m.Topic), "remote_topic", shortTopic(remote), "reason", why, "more_since_last_line", n)
		}
		return nil
	}
	qos := r.qos
	if m.QoS > 0 {
		qos = 1
	}
	out := telemetry.Message{
		Topic:   remote,
		Payload: append([]byte(nil), m.Payload...),
		QoS:     qos,
		Retain:  m.Retain,
	}
	if qos == 1 || br.cfg.BufferQoS0 {
		// Whatever waits in the buffer goes up at QoS 1: it leaves the
		// buffer only on a PUBACK, which QoS 0 would never bring.
		out.QoS = 1
		if from.InProcess() {
			// In-process (an adapter's reading): nobody waits for a PUBACK,
			// so the publisher does not wait for the disk either.
			switch br.putInproc(out) {
			case queued:
				return nil
			case queueFull:
				br.refused.Add(1)
				if n, ok := br.inproc.fullLog.allow(time.Now()); ok {
					br.log.Warn("uplink: the buffer is not keeping up with in-process messages; not buffering some",
						"topic", shortTopic(m.Topic), "backlog", inprocMax, "more_since_last_line", n)
				}
				return nil
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
		defer cancel()
		if err := br.buf.Append(ctx, out); err != nil {
			br.refused.Add(1)
			if errors.Is(err, buffer.ErrFull) {
				return fmt.Errorf("%w: %s: %w", ErrRefused, m.Topic, err)
			}
			return fmt.Errorf("bridge: buffering %s: %w", m.Topic, err)
		}
		return nil
	}
	if !br.connected.Load() {
		br.droppedQoS0.Add(1)
		return nil
	}
	select {
	case br.direct <- out:
	default:
		br.droppedQoS0.Add(1)
	}
	return nil
}

// Stalled reports, for the systemd watchdog (package liveness), an
// operation of the bridge that has outlasted its own bound: a connection
// attempt, a hand-off of a publish to the connection, a publish of the
// status topic into the local broker. Waiting for the upstream's
// acknowledgements is not one of them (ack_timeout ends a silent
// connection), nor is waiting between attempts.
func (br *Bridge) Stalled() error { return br.live.Check() }

// Stats returns the uplink's state and counters.
func (br *Bridge) Stats() Stats {
	br.mu.Lock()
	s := br.st
	br.mu.Unlock()
	s.Connects = br.connects.Load()
	s.ConnectFailures = br.connectFailures.Load()
	s.Delivered = br.delivered.Load()
	if ns := br.lastDelivery.Load(); ns != 0 {
		s.LastDelivery = time.Unix(0, ns)
	}
	s.SentQoS0 = br.sentQoS0.Load()
	s.DroppedQoS0 = br.droppedQoS0.Load()
	s.Refused = br.refused.Load()
	s.NotForwarded = br.notForwarded.Load()
	s.DuplicatesPossible = br.duplicates.Load()
	s.Downlinked = br.downlinked.Load()
	s.DownlinkDropped = br.dlDrops.Load()
	s.Unforwardable = br.unforwardable.Load()
	s.DeadLetters = br.deadLetters.Load()
	s.Buffer = br.buf.Stats()
	return s
}

// publishLocal publishes into the local broker as the uplink (origin), so
// that Intercept knows the message for the bridge's own and never sends it
// back up. One that a forward rule would have taken is counted.
func (br *Bridge) publishLocal(topic string, payload []byte, qos byte, retain bool) error {
	if err := br.local.PublishAs(origin, topic, payload, qos, retain); err != nil {
		return err
	}
	if forwardFor(br.forward, topic) != nil {
		br.notForwarded.Add(1)
	}
	return nil
}

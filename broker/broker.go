package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/config"
	"github.com/edged/edged/liveness"
	"github.com/edged/edged/telemetry"
)

const (
	// connectTimeout bounds how long a new connection may take to send its
	// CONNECT; after it, mochi's keepalive deadline applies.
	connectTimeout = 10 * time.Second
	// closeTimeout bounds the wait for clients to be let go at shutdown.
	closeTimeout = 2 * time.Second
	// sweepEvery is how often queued messages are checked against message_expiry.
	sweepEvery = 5 * time.Second
)

// Broker is the embedded MQTT broker: mochi-mqtt with edged's listeners,
// authentication, persistence and limits.
type Broker struct {
	cfg   config.Broker
	log   *slog.Logger
	srv   *mqtt.Server
	lns   []*netListener
	hook  *edgeHook
	auth  *AuthHook
	store *Store
	ready chan struct{}
	// connectTimeout is connectTimeout, shorter in tests.
	connectTimeout time.Duration
	// live records the progress of the accept loops and the store's
	// writer for the watchdog (Stalled); its clock is now, which tests
	// replace before Run.
	live *liveness.Set
	now  func() time.Time

	started   atomic.Bool
	malformed atomic.Int64
	expired   atomic.Int64
	// windowDropped counts QoS 0 messages dropped behind a full MQTT 5
	// Receive Maximum window (see outWindow).
	windowDropped atomic.Int64
	badTopics     atomic.Int64
	released      atomic.Int64 // bytes of buffers of closed connections, see releaseFreeMemory
	badTopicLog   onceSet
	subIDs        atomic.Int64
}

// Stats are the broker's counters since New.
type Stats struct {
	ClientsConnected int64 // network clients connected now
	MessagesReceived int64 // PUBLISH packets received (network and in-process)
	MessagesSent     int64 // PUBLISH packets written to clients
	Dropped          int64 // DroppedQueueFull + DroppedExpired
	DroppedQueueFull int64 // a subscriber's queue (max_inflight + max_queued, or max_queued_bytes) was full
	DroppedExpired   int64 // queued longer than message_expiry
	Refused          int64 // publishes the interceptor refused
	RefusedLogins    uint64
	RefusedACL       uint64
	Malformed        int64 // connections closed for a malformed or oversized packet
	InvalidTopics    int64 // connections closed for a publish on an invalid topic name
	AcceptErrors     int64 // failed accepts (such as EMFILE), retried with backoff
	Retained         int64
	Subscriptions    int64
	Inflight         int64 // QoS 1/2 messages held for subscribers (and QoS 2 acknowledgements in progress)
	HeldPublishes    int64 // publishes whose publisher waited for a subscriber's full queue (flow control)
	StuckSubscribers int64 // times a subscriber stayed full past the hold limit, so messages for it were dropped
}

// New takes cfg as config.Load made it (every rule checked, the files it
// names loaded), sets the limits it leaves at zero to their defaults, and
// opens the store at stateDir/broker.db when persistence is on. It does not
// listen yet.
func New(cfg config.Broker, stateDir string, log *slog.Logger) (*Broker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Persist == nil || cfg.TopicAliasMaximum == nil || cfg.MaxInflight <= 0 || cfg.MaxQueued <= 0 || cfg.MaxPacketSize <= 0 {
		// Only a config built in code without config.DefaultBroker gets
		// here (config.Load sets and checks every limit); a zero limit
		// would stall every client, a nil one panic.
		return nil, errors.New("broker: limits not set (a config from config.Load or config.DefaultBroker has them)")
	}
	specs, err := listenerSpecs(cfg)
	if err != nil {
		return nil, err
	}
	byListener := make(map[string]ListenerAuth, len(specs))
	for _, s := range specs {
		byListener[s.id] = s.auth
	}

	b := &Broker{cfg: cfg, log: log, ready: make(chan struct{}), connectTimeout: connectTimeout, now: time.Now}
	b.live = liveness.NewSet(func() time.Time { return b.now() })
	drops := newDropLog(log)
	b.hook = &edgeHook{drops: drops}

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClients = int64(cfg.MaxClients)
	caps.MaximumPacketSize = uint32(cfg.MaxPacketSize)
	caps.ReceiveMaximum = uint16(cfg.MaxInflight)
	caps.MaximumInflight = uint16(cfg.MaxInflight + cfg.MaxQueued)
	caps.MaximumClientWritesPending = int32(cfg.MaxInflight + cfg.MaxQueued)
	caps.MaximumSessionExpiryInterval = uint32(min(cfg.SessionExpiry.Duration/time.Second, 1<<32-1))
	// mochi applies its message expiry to retained messages as well, so a
	// status topic that did not change for a week would vanish. edged keeps
	// retained messages until replaced and expires queued ones itself (sweep).
	caps.MaximumMessageExpiryInterval = 0
	// An acknowledgement carries none of the publisher's properties (mochi
	// copies its user properties otherwise).
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	// mochi accepts topic aliases up to this but does not advertise it;
	// edgeHook puts it in the CONNACK.
	caps.TopicAliasMaximum = uint16(*cfg.TopicAliasMaximum)
	b.hook.topicAliasMax = caps.TopicAliasMaximum
	b.hook.maxKeepalive = uint16(cfg.MaxKeepalive.Duration / time.Second)

	b.srv = mqtt.New(&mqtt.Options{
		Capabilities:             caps,
		InlineClient:             true,
		Logger:                   slog.New(&mochiLog{next: log.Handler(), drops: drops}),
		SysTopicResendInterval:   10,
		ClientNetWriteBufferSize: 16 << 10,
		// mochi reads a client through a buffer of its own, on top of the
		// guard's, which holds what the socket gave already: a small one
		// is as fast and saves 1.5 KiB per client (mochi's default is 2 KiB).
		ClientNetReadBufferSize: 512,
	})
	b.hook.info = b.srv.Info
	b.hook.flow = &flowControl{
		srv: b.srv, log: log, hold: holdLimit,
		// A little short of mochi's limit, which several publishers may
		// reach at once between their checks.
		highMsgs: max(1, (cfg.MaxInflight+cfg.MaxQueued)*3/4),
		maxBytes: int64(cfg.MaxQueuedBytes),
		drops:    drops,
	}
	b.hook.seq.renumber = func() (int, int64) { return b.hook.renumberAll(b.srv.Clients.GetAll()) }
	if err := b.srv.AddHook(b.hook, nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.auth = NewAuthHook(byListener, log)
	b.auth.withhold = b.hook.flow.withhold
	b.hook.acl = b.auth
	if err := b.srv.AddHook(b.auth, nil); err != nil {
		return nil, fmt.Errorf("broker: auth: %w", err)
	}
	if *cfg.Persist {
		if err := os.MkdirAll(stateDir, 0o750); err != nil {
			return nil, fmt.Errorf("broker: state_dir: %w", err)
		}
		st, err := newStore(filepath.Join(stateDir, "broker.db"), log, b.live, nil)
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		if err := b.srv.AddHook(st, nil); err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("broker: store: %w", err)
		}
		b.store = st
	}

	maxPacket := int(cfg.MaxPacketSize)
	for _, s := range specs {
		b.lns = append(b.lns, &netListener{
			id: s.id, proto: s.kind, addr: s.addr, tls: s.tls,
			wrap:    func(c net.Conn) net.Conn { return b.wrapConn(c, maxPacket) },
			loop:    b.live.Loop("broker "+s.id, acceptStallLimit),
			clients: &b.srv.Listeners.ClientsWg,
		})
	}
	return b, nil
}

// wrapConn guards a new client connection (guardConn) and batches what is
// written to it, keeping an MQTT 5 client's Receive Maximum (batchConn).
func (b *Broker) wrapConn(c net.Conn, maxPacket int) net.Conn {
	_ = c.SetReadDeadline(time.Now().Add(b.connectTimeout))
	g := newGuardConn(c, maxPacket, nil)
	g.onRelease = func(n int) { b.released.Add(int64(n)) }
	bc := newBatchConn(g)
	bc.win.onDrop = func() { b.windowDropped.Add(1) }
	g.dec.observe = bc.observe
	g.onReject = func(c net.Conn, err error) { b.onRejected(c, &g.dec, bc, err) }
	return bc
}

// onRejected counts and logs a connection the guard closes, and tells an
// MQTT 5 client why with a DISCONNECT, as Mosquitto does: 0x95 (packet too
// large) or 0x81 (malformed packet, which Mosquitto 2.0.11 also sends for
// a refused topic name).
func (b *Broker) onRejected(c net.Conn, dec *frameDecoder, w io.Writer, err error) {
	remote := c.RemoteAddr().String()
	if isBadTopic(err) {
		b.badTopics.Add(1)
		if b.badTopicLog.first(dec.clientID) {
			b.log.Warn("closing client connection: publish on an invalid topic name (logged once per client)",
				"client", dec.clientID, "remote", remote, "error", err)
		}
	} else {
		b.malformed.Add(1)
		b.log.Warn("closing client connection: malformed packet", "client", dec.clientID, "remote", remote, "error", err)
	}
	if dec.connected && dec.version == 5 {
		reason := packets.ErrMalformedPacket.Code
		if errors.Is(err, errTooLarge) {
			reason = packets.ErrPacketTooLarge.Code
		}
		_, _ = w.Write([]byte{packets.Disconnect << 4, 1, reason})
	}
}

// ListenerError is a listener that could not be opened, such as an address
// another program holds: the one listener problem config cannot see.
type ListenerError struct {
	Index   int // in broker.listener
	Type    string
	Address string
	Err     error
}

func (e *ListenerError) Error() string {
	return fmt.Sprintf("broker.listener[%d]: %s %s: %v", e.Index, e.Type, e.Address, e.Err)
}

func (e *ListenerError) Unwrap() error { return e.Err }

// Run opens every listener (an error if one cannot be opened, such as an
// address in use), serves until ctx ends, then disconnects the clients,
// closes the store and returns nil. A Broker runs once.
func (b *Broker) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("broker: Run called twice")
	}
	for i, l := range b.lns {
		if err := b.srv.AddListener(l); err != nil {
			for _, o := range b.lns[:i] {
				o.Close(func(string) {})
			}
			b.closeStore()
			return &ListenerError{Index: i, Type: l.proto, Address: l.addr, Err: err}
		}
	}
	if err := b.srv.Serve(); err != nil {
		_ = b.srv.Close()
		b.closeStore()
		return fmt.Errorf("broker: start: %w", err)
	}
	for _, l := range b.lns {
		b.log.Info("listening", "listener", l.id, "type", l.proto, "address", l.Address())
	}
	close(b.ready)

	var wg sync.WaitGroup
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.sweep(sweepCtx)
	}()

	<-ctx.Done()
	stopSweep()
	wg.Wait()
	b.shutdown()
	return nil
}

// shutdown stops the listeners and clients, waiting at most closeTimeout
// for them (a client that stopped reading must not hold the daemon).
func (b *Broker) shutdown() {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Conn != nil {
			_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(closeTimeout / 2))
		}
	}
	done := make(chan struct{})
	go func() {
		_ = b.srv.Close()
		b.srv.Listeners.ClientsWg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeTimeout):
		b.log.Warn("clients still closing at shutdown; not waiting longer", "waited", closeTimeout)
	}
	b.closeStore()
	b.log.Info("stopped")
}

// Close releases what New opened (the store of retained messages and
// sessions) when Run is never called, as when the daemon fails to start
// another part. After Run has started it does nothing: Run closes the
// store itself when it returns.
func (b *Broker) Close() {
	if b.started.CompareAndSwap(false, true) {
		b.closeStore()
	}
}

func (b *Broker) closeStore() {
	if b.store == nil {
		return
	}
	if err := b.store.Close(); err != nil {
		b.log.Warn("closing store", "error", err)
	}
}

// sweep drops QoS 1/2 messages that waited longer than message_expiry for
// their subscriber, counting and logging them.
func (b *Broker) sweep(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	maxAge := int64(b.cfg.MessageExpiry.Duration / time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b.releaseFreeMemory()
			for _, cl := range b.srv.Clients.GetAll() {
				if n := b.dropExpired(cl, now.Unix(), maxAge); n > 0 {
					b.expired.Add(int64(n))
					for range n {
						b.hook.drops.dropped(cl.ID, cl.Net.Listener, "expired (message_expiry)")
					}
				}
			}
		}
	}
}

// freeMemoryLimit is how much memory of closed connections the daemon may
// keep from the system between sweeps. Go gives free memory back only over
// minutes; after a burst of connections (300 clients that each sent 59KB
// of a CONNECT and stalled left 34MB resident after they closed) a board
// with 512MB wants it back now.
const freeMemoryLimit = 16 << 20

// releaseFreeMemory returns free heap memory to the system once closed
// connections left more than freeMemoryLimit of buffers behind.
func (b *Broker) releaseFreeMemory() {
	if n := b.released.Swap(0); n > freeMemoryLimit {
		debug.FreeOSMemory()
		b.log.Debug("returned the buffers of closed connections to the system", "bytes", n)
	}
}

// dropExpired deletes cl's publishes older than maxAge seconds and returns
// how many. mochi's ClearExpiredInflights would take Created for seconds,
// which the sequencer's stamps are not.
func (b *Broker) dropExpired(cl *mqtt.Client, now, maxAge int64) int {
	n := 0
	for _, pk := range cl.State.Inflight.GetAll(false) {
		if pk.FixedHeader.Type != packets.Publish || now-stampTime(pk.Created) <= maxAge {
			continue
		}
		if cl.State.Inflight.Delete(pk.PacketID) {
			atomic.AddInt64(&b.srv.Info.Inflight, -1)
			if b.store != nil {
				b.store.OnQosDropped(cl, pk)
			}
			n++
		}
	}
	return n
}

// Stalled reports, for the systemd watchdog (package liveness), a
// listener whose accepts have kept failing for longer than
// acceptStallLimit, or a commit of the store (broker.db) that has lasted
// longer than storeCommitLimit. A listener waiting for connections is
// healthy however long it waits.
func (b *Broker) Stalled() error { return b.live.Check() }

// Ready is closed once every listener is open.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// Addrs returns the listeners' addresses, the bound ones once Run has opened
// them (so a configured port 0 reads as the real port).
func (b *Broker) Addrs() []net.Addr {
	out := make([]net.Addr, 0, len(b.lns))
	for _, l := range b.lns {
		if a := l.addrNet(); a != nil {
			out = append(out, a)
		}
	}
	return out
}

// SetInterceptor installs fn to be called synchronously for every publish,
// from network clients and from Publish, before it is acknowledged or
// delivered. Returning an error refuses the message: it is not delivered,
// an MQTT 5 publisher of QoS 1/2 gets reason 0x97 (ErrQuotaExceeded) or 0x80
// (any other error), and an MQTT 3 publisher is disconnected without an
// acknowledgement. from is the network client (from.Client, its id), or
// for Publish and PublishAs an empty Client and the part's name (Part).
// Wills are not passed to fn. nil removes the interceptor.
func (b *Broker) SetInterceptor(fn func(m telemetry.Message, from telemetry.Origin) error) {
	if fn == nil {
		b.hook.intercept.Store(nil)
		return
	}
	f := Interceptor(fn)
	b.hook.intercept.Store(&f)
}

// Publish publishes a message in-process, as the broker itself, without
// ACL checks. Subscribers get it at up to the given QoS.
func (b *Broker) Publish(topic string, payload []byte, qos byte, retain bool) error {
	return b.PublishAs("", topic, payload, qos, retain)
}

// PublishAs is Publish by a part of edged that names itself: the
// interceptor sees part as the message's origin (telemetry.Origin.Part),
// which is how the uplink knows its own messages when they come back.
func (b *Broker) PublishAs(part, topic string, payload []byte, qos byte, retain bool) error {
	if topic == "" || strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("broker: publish: %q is not a valid topic name", topic)
	}
	if err := checkTopicName([]byte(topic)); err != nil {
		return fmt.Errorf("broker: publish %q: %w", topic, err)
	}
	if qos > 2 {
		return fmt.Errorf("broker: publish %s: qos %d is not 0, 1 or 2", topic, qos)
	}
	if fn := b.hook.intercept.Load(); fn != nil {
		if err := (*fn)(telemetry.Message{Topic: topic, Payload: payload, QoS: qos, Retain: retain}, telemetry.Origin{Part: part}); err != nil {
			b.hook.refused.Add(1)
			return fmt.Errorf("broker: publish %s: refused: %w", topic, err)
		}
	}
	if err := b.srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("broker: publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe calls handler, in the publisher's goroutine, for every message
// on a topic matching filter, starting with the retained ones. retained is
// true for those only, as an MQTT subscriber sees the retain flag: a message
// from the retained store handed over on subscribing, not a live publish
// (with or without the flag). handler must not block and must not keep
// payload after it returns. The returned function removes the subscription.
func (b *Broker) Subscribe(filter string, handler func(topic string, payload []byte, retained bool)) (unsubscribe func(), err error) {
	if handler == nil {
		return nil, errors.New("broker: subscribe: nil handler")
	}
	id := int(b.subIDs.Add(1))
	// mochi hands the retained store to an inline subscription inside
	// srv.Subscribe; what arrives after it returned is live.
	var live atomic.Bool
	err = b.srv.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		handler(pk.TopicName, pk.Payload, pk.FixedHeader.Retain && !live.Load())
	})
	live.Store(true)
	if err != nil {
		return nil, fmt.Errorf("broker: subscribe %q: %w", filter, err)
	}
	var once sync.Once
	return func() { once.Do(func() { _ = b.srv.Unsubscribe(filter, id) }) }, nil
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	info := b.srv.Info
	s := Stats{
		ClientsConnected: atomic.LoadInt64(&info.ClientsConnected),
		MessagesReceived: atomic.LoadInt64(&info.MessagesReceived),
		MessagesSent:     atomic.LoadInt64(&info.MessagesSent),
		DroppedQueueFull: atomic.LoadInt64(&info.MessagesDropped) + atomic.LoadInt64(&info.InflightDropped) + b.windowDropped.Load() + b.hook.flow.withheld.Load(),
		DroppedExpired:   b.expired.Load(),
		Refused:          b.hook.refused.Load(),
		Malformed:        b.malformed.Load(),
		InvalidTopics:    b.badTopics.Load(),
		Retained:         int64(b.srv.Topics.Retained.Len()),
		Subscriptions:    atomic.LoadInt64(&info.Subscriptions),
		HeldPublishes:    b.hook.flow.held.Load(),
		StuckSubscribers: b.hook.flow.stuck.Load(),
	}
	// Counted from the clients, not mochi's Info.Inflight, which goes
	// negative when a session is taken over (it subtracts the old
	// connection's messages, which moved to the new one).
	for _, cl := range b.srv.Clients.GetAll() {
		s.Inflight += int64(cl.State.Inflight.Len())
	}
	for _, l := range b.lns {
		s.AcceptErrors += l.acceptErrors.Load()
	}
	s.Dropped = s.DroppedQueueFull + s.DroppedExpired
	s.RefusedLogins, s.RefusedACL = b.auth.Refused()
	return s
}

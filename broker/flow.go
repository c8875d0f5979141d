package broker

import (
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// holdLimit is how long a publisher is held, per message, for a subscriber
// whose queue is full before that subscriber counts as stuck and messages
// for it are dropped instead (issue 14). A subscriber that reads at all
// drains a full queue in far less; one that does not must not stop its
// publishers for longer.
const holdLimit = 5 * time.Second

// flowControl pushes back on publishers instead of dropping messages for a
// subscriber that is slower than they are. mochi hands every message to each
// subscriber's outbound queue and drops it when that queue is full; here,
// before mochi delivers a network client's publish, the publisher's reading
// goroutine waits while a subscriber of the topic has its queue nearly full
// (in messages, or in bytes: max_queued_bytes). Not reading from the
// publisher is TCP flow control: its socket fills and it slows down to the
// subscriber's pace. A subscriber that stays full for holdLimit is stuck:
// publishers no longer wait for it, and mochi drops what does not fit its
// queue, counted and logged as before, until it drains.
type flowControl struct {
	srv      *mqtt.Server
	log      *slog.Logger
	highMsgs int   // a queue this long (messages, or QoS 1/2 in flight) holds publishers back
	maxBytes int64 // max_queued_bytes
	hold     time.Duration

	// subscribers caches, per topic, the ids of the clients subscribed to
	// it; any change of subscriptions or clients clears it.
	mu     sync.Mutex
	topics map[string][]string
	gen    uint64 // bumped by forget; a lookup begun before it is not cached

	// avgPublish is a running average of the size of the publishes the
	// broker takes in, bytes: what a queued message is taken to cost for a
	// client not yet sent any (clientFlow.avgPacket is 0). Without it the
	// first messages queued for a new subscriber count nothing, and a burst
	// of in-process publishes before its writer first runs fills mochi's
	// queue far past max_queued_bytes.
	avgPublish atomic.Int64

	held     atomic.Int64 // publishes that waited for a subscriber
	stuck    atomic.Int64 // subscribers found stuck past holdLimit
	withheld atomic.Int64 // messages dropped for a subscriber past max_queued_bytes
	drops    *dropLog
}

// maxCachedTopics bounds the topic cache; past it the cache starts over.
const maxCachedTopics = 4096

// forget clears the subscriber cache: subscriptions or clients changed.
func (f *flowControl) forget() {
	f.mu.Lock()
	f.gen++
	clear(f.topics)
	f.mu.Unlock()
}

// subscribers returns the ids of the clients subscribed to topic.
func (f *flowControl) subscribers(topic string) []string {
	f.mu.Lock()
	ids, ok := f.topics[topic]
	gen := f.gen
	f.mu.Unlock()
	if ok {
		return ids
	}
	subs := f.srv.Topics.Subscribers(topic)
	ids = make([]string, 0, len(subs.Subscriptions)+len(subs.Shared))
	for id := range subs.Subscriptions {
		ids = append(ids, id)
	}
	for _, group := range subs.Shared {
		for id := range group {
			ids = append(ids, id)
		}
	}
	f.mu.Lock()
	if f.gen == gen {
		if f.topics == nil || len(f.topics) >= maxCachedTopics {
			f.topics = map[string][]string{}
		}
		f.topics[topic] = ids
	}
	f.mu.Unlock()
	return ids
}

// admit returns once every network subscriber of topic other than pub has
// room for one more message, or has been found stuck.
func (f *flowControl) admit(pub *mqtt.Client, topic string) {
	var self *clientFlow
	if bc, ok := pub.Net.Conn.(*batchConn); ok {
		self = &bc.flow
	}
	for _, id := range f.subscribers(topic) {
		cl, ok := f.srv.Clients.Get(id)
		if !ok || cl == pub || cl.Net.Inline || cl.Closed() {
			continue // offline sessions keep their queue; they do not hold publishers
		}
		bc, ok := cl.Net.Conn.(*batchConn)
		if !ok {
			continue
		}
		f.wait(cl, bc, self)
	}
}

// wait holds the caller, the reader of the client whose flow is self, while
// cl's queue is full, at most f.hold. It does not wait for a client whose
// own reader is held: that reader is what handles the client's
// acknowledgements, and two clients publishing to each other would each
// wait for the other until the hold limit. The slack between three
// quarters of the queue and mochi's limit takes the messages meanwhile.
func (f *flowControl) wait(cl *mqtt.Client, bc *batchConn, self *clientFlow) {
	fl := &bc.flow
	if fl.holding.Load() > 0 {
		return
	}
	if !f.full(cl, bc) {
		if fl.stuck.Load() && fl.stuck.CompareAndSwap(true, false) {
			f.log.Info("subscriber keeps up again: its publishers wait for it again", "client", cl.ID)
		}
		return
	}
	if fl.stuck.Load() {
		return
	}
	f.held.Add(1)
	if self != nil {
		self.holding.Add(1)
		defer self.holding.Add(-1)
	}
	timer := time.NewTimer(f.hold)
	defer timer.Stop()
	for f.full(cl, bc) {
		room := fl.waitRoom()
		if !f.full(cl, bc) { // it drained before we were registered
			return
		}
		select {
		case <-room:
		case <-timer.C:
			if fl.stuck.CompareAndSwap(false, true) {
				f.stuck.Add(1)
				f.log.Warn("subscriber stuck with a full queue: no longer holding its publishers; messages beyond its queue are dropped",
					"client", cl.ID, "listener", cl.Net.Listener, "held_for", f.hold)
			}
			return
		}
	}
}

// full reports whether cl's queue has no room left for publishers to fill
// without waiting: mochi's outbound queue, its QoS 1/2 messages in flight,
// or the bytes waiting to be sent.
func (f *flowControl) full(cl *mqtt.Client, bc *batchConn) bool {
	if bc.flow.out != nil && len(bc.flow.out) >= f.highMsgs || cl.State.Inflight.Len() >= f.highMsgs {
		return true
	}
	return f.queuedBytes(bc) >= f.maxBytes
}

// queuedBytes estimates the bytes waiting to be sent to a client: those
// written to its connection and not sent, and its queued messages at the
// average size of those it was sent.
func (f *flowControl) queuedBytes(bc *batchConn) int64 {
	queued := 0
	if bc.flow.out != nil {
		queued = len(bc.flow.out)
	}
	avg := bc.flow.avgPacket.Load()
	if avg == 0 {
		avg = f.avgPublish.Load()
	}
	return bc.unsent() + int64(queued)*avg
}

// sawPublish adds a publish the broker took in to avgPublish, at about its
// size on the wire: fixed header, topic, packet id and payload.
func (f *flowControl) sawPublish(pk *packets.Packet) {
	n := int64(5 + 2 + len(pk.TopicName) + len(pk.Payload))
	if pk.FixedHeader.Qos > 0 {
		n += 2
	}
	runningAverage(&f.avgPublish, n)
}

// runningAverage moves avg an eighth of the way to n; the first n sets it.
func runningAverage(avg *atomic.Int64, n int64) {
	if a := avg.Load(); a == 0 {
		avg.Store(n)
	} else {
		avg.Store(a + (n-a)/8)
	}
}

// withhold reports whether a message must not be given to cl because its
// queue holds max_queued_bytes already: it is stuck (its publishers waited
// for it in vain), or in-process publishes, which never wait, filled it, and
// a quarter more spares those held publishers that several at once fill a
// little past the bound. The message is counted and logged as dropped. It
// is called through the ACL check, mochi's only say per subscriber, before
// mochi queues the message; a SUBSCRIBE from such a client is refused too.
func (f *flowControl) withhold(cl *mqtt.Client) bool {
	bc, ok := cl.Net.Conn.(*batchConn)
	if !ok || cl.Closed() {
		return false
	}
	q := f.queuedBytes(bc)
	if q < f.maxBytes || (!bc.flow.stuck.Load() && q < f.maxBytes+f.maxBytes/4) {
		return false
	}
	f.withheld.Add(1)
	f.drops.dropped(cl.ID, cl.Net.Listener, "max_queued_bytes")
	return true
}

// clientFlow is the flow-control state of one connection, kept on its
// batchConn, which sees the connection's writes and acknowledgements.
type clientFlow struct {
	out       chan *packets.Packet // mochi's outbound queue for the client, nil if not found
	avgPacket atomic.Int64         // a running average of the PUBLISH packets written, bytes
	stuck     atomic.Bool
	holding   atomic.Int32 // the client's own reader waits in admit (0 or 1)
	waiting   atomic.Int32 // publishers waiting for room
	mu        sync.Mutex
	room      chan struct{} // closed when room may have been made
}

// waitRoom registers a waiter and returns the channel closed when room may
// have been made.
func (fl *clientFlow) waitRoom() <-chan struct{} {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.room == nil {
		fl.room = make(chan struct{})
	}
	fl.waiting.Add(1)
	return fl.room
}

// moved wakes the waiting publishers, if any: the queue shrank.
func (fl *clientFlow) moved() {
	if fl.waiting.Load() == 0 {
		return
	}
	fl.mu.Lock()
	if fl.room != nil {
		close(fl.room)
		fl.room = nil
	}
	fl.waiting.Store(0)
	fl.mu.Unlock()
}

// observeWrite updates the average PUBLISH size from the packets in p.
func (fl *clientFlow) observeWrite(p []byte) {
	for len(p) > 0 {
		n := packetLen(p)
		if n <= 0 || n > len(p) {
			return
		}
		if p[0]>>4 == packets.Publish {
			runningAverage(&fl.avgPacket, int64(n))
		}
		p = p[n:]
	}
}

// outboundQueue returns mochi's outbound queue of cl, or nil. mochi v2.7.9
// keeps it unexported (Client.State.outbound) and offers no way to learn
// how full it is; flowControl must, to push back before mochi drops.
// TestOutboundQueueIsFound fails if a new mochi version moves it.
func outboundQueue(cl *mqtt.Client) chan *packets.Packet {
	v := reflect.ValueOf(&cl.State).Elem().FieldByName("outbound")
	if !v.IsValid() || v.Type() != reflect.TypeFor[chan *packets.Packet]() {
		return nil
	}
	return *(*chan *packets.Packet)(unsafe.Pointer(v.UnsafeAddr()))
}

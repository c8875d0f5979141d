package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/buffer"
)

const (
	connectTimeout = 10 * time.Second
	// writeTimeout bounds one write to the network (batchConn's flusher).
	writeTimeout = 10 * time.Second
	// handoffTimeout bounds how long a call into paho (Publish, Subscribe)
	// waits for paho's writer to take its packet. paho uses its write
	// timeout for this wait, and after a connection drops a call that
	// raced the drop waits all of it, for a writer that is gone: shutdown
	// must not wait on that. A hand-off that times out while the
	// connection is up (a slow link backing up) is simply tried again.
	handoffTimeout = time.Second
	// readAhead and readAheadBytes bound the entries drain holds in
	// memory beyond the window.
	readAhead      = 1024
	readAheadBytes = 1 << 20
	// ackBatch and ackDelay bound how many confirmed entries, and for how
	// long, wait to be removed from the buffer together.
	ackBatch = 1024
	ackDelay = 20 * time.Millisecond
	// stableAfter is how long a connection must last to reset the backoff
	// when it delivered nothing.
	stableAfter = 10 * time.Second
	// goodbyeTimeout bounds the "offline" publish and DISCONNECT at
	// shutdown, together.
	goodbyeTimeout = time.Second

	// The watchdog's bounds (Stalled): an operation's own bound and a
	// margin. An attempt dials (connectTimeout) and then waits for the
	// CONNACK (connectTimeout). A hand-off is retried while the
	// connection is up, and a write that stops ends the connection
	// within writeTimeout, after which paho refuses at once.
	stallMargin  = 10 * time.Second
	connectLimit = 2*connectTimeout + stallMargin
	handoffLimit = writeTimeout + handoffTimeout + stallMargin
	// statusLimit bounds a publish into the local broker, which may wait
	// for the broker's store to commit the retained status.
	statusLimit = time.Minute
)

// errLost ends a session whose connection dropped.
var errLost = errors.New("connection lost")

// errAckOverdue ends a session whose upstream went silent with a publish
// waiting for its PUBACK.
var errAckOverdue = errors.New("no acknowledgement from the server")

// Run connects to the upstream servers in turn, drains the buffer while
// connected, and reconnects with jittered exponential backoff until ctx
// ends; then it says goodbye (a retained "offline", a DISCONNECT) and
// returns nil.
func (br *Bridge) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	statusCtx, stopStatus := context.WithCancel(context.WithoutCancel(ctx))
	wg.Add(1)
	go func() {
		defer wg.Done()
		br.statusLoop(statusCtx)
	}()
	defer func() {
		br.flushGathered() // cloud posts still gathering go to the buffer first
		br.closeInproc()
		stopStatus()
		wg.Wait()
		br.pubs.Wait() // a session's helpers may still be in paho
	}()

	failures := 0 // rounds through every server that all failed
	next := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		srv := br.servers[next]
		br.connecting.Busy("a connection attempt to " + srv.display)
		s, err := br.connect(ctx, srv)
		br.connecting.Idle()
		if err == nil {
			began := time.Now()
			err = s.run(ctx)
			br.setDisconnected(srv, err, ctx.Err() != nil)
			if ctx.Err() != nil {
				return nil
			}
			br.judge(s, err)
			// A connection that is dropped at once (another client taking
			// over the same client id, a broker refusing a publish) must
			// not turn into a reconnect loop: only one that worked (it
			// delivered something, or lasted) resets the backoff, so that
			// a link that comes and goes is tried again at once.
			if s.delivered || time.Since(began) >= stableAfter {
				failures = 0
			} else {
				failures++
			}
		} else {
			if ctx.Err() != nil {
				return nil
			}
			br.connectFailed(srv, err)
			next = (next + 1) % len(br.servers)
			if next != 0 {
				continue // try the rest of the list before waiting
			}
			failures++
		}
		wait := backoff(failures, br.minBackoff, br.maxBackoff, br.rnd)
		br.mu.Lock()
		br.st.RetryWait = wait
		br.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session is one connection to the upstream broker.
type session struct {
	br     *Bridge
	srv    server
	client mqtt.Client
	conn   atomic.Pointer[batchConn] // what paho reads and writes

	renewIn time.Duration // the cloud token's renewal is due this long after connecting; 0: never

	lostOnce sync.Once
	lost     chan struct{} // closed when paho reports the connection lost
	lostErr  error         // set before lost is closed

	// Set by drain when it ends: the entries handed to paho and not
	// confirmed, in order, and whether any entry was confirmed.
	unconfirmed []flight
	delivered   bool
}

func (s *session) connectionLost(err error) {
	s.lostOnce.Do(func() {
		s.lostErr = err
		close(s.lost)
	})
}

// up reports whether the connection is still the one the session opened.
func (s *session) up() bool {
	select {
	case <-s.lost:
		return false
	default:
		return s.client.IsConnectionOpen()
	}
}

// connect opens a new paho client for one attempt at srv. Each connection
// gets a fresh client with a store that keeps nothing, and paho's own
// reconnection is off: after a drop, paho has nothing of its own to resend
// (its resend does not keep order, paho #731), and everything unconfirmed
// is sent again from the buffer, in order, by the next session.
func (br *Bridge) connect(ctx context.Context, srv server) (*session, error) {
	id, err := br.login(srv) // a cloud's token is computed afresh for every connection
	if err != nil {
		return nil, err
	}
	s := &session{br: br, srv: srv, lost: make(chan struct{}), renewIn: br.renewIn(id)}
	o := mqtt.NewClientOptions().
		AddBroker(srv.url).
		SetClientID(id.clientID).
		SetCleanSession(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetStore(nopStore{}).
		SetProtocolVersion(4).
		SetKeepAlive(br.keepalive).
		SetPingTimeout(min(br.keepalive, 10*time.Second)).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(handoffTimeout).
		SetOrderMatters(true).
		SetDefaultPublishHandler(br.onDownlink).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { s.connectionLost(err) })
	if br.statusTopic != "" { // "" where the cloud takes no topic of edged's own (cloudRules)
		o.SetWill(br.statusTopic, "offline", 1, true)
	}
	if id.username != "" {
		o.SetUsername(id.username)
	}
	if id.password != "" {
		o.SetPassword(id.password)
	}
	var tc *tls.Config
	if srv.tls {
		if tc, err = tlsConfig(br.cfg); err != nil {
			return nil, err
		}
		br.tuneTLS(tc, srv)
		if br.cfg.InsecureSkipVerify {
			br.log.Warn("uplink: TLS certificate verification is OFF (insecure_skip_verify = true): anyone on the path can read and change this connection",
				"server", srv.display)
		}
		o.SetTLSConfig(tc)
	}
	// Dial ourselves so that a shutdown does not wait for a dial or a TLS
	// handshake to time out (WebSocket: paho's dialer, bounded by
	// connectTimeout), and so that every connection is a batchConn, which
	// bounds each write and tells drain when the server last spoke.
	o.SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		var c net.Conn
		var err error
		switch {
		case srv.ws:
			c, err = mqtt.NewWebsocket(srv.url, tc, connectTimeout, nil, nil)
		case tc == nil:
			c, err = d.DialContext(dctx, "tcp", srv.host)
		default:
			c, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(dctx, "tcp", srv.host)
		}
		if err != nil {
			return nil, err
		}
		bc := newBatchConn(c, writeTimeout)
		s.conn.Store(bc)
		return bc, nil
	})
	s.client = mqtt.NewClient(o)
	tok := s.client.Connect()
	<-tok.Done() // bounded by the dial (ctx) and connectTimeout
	if err := tok.Error(); err != nil {
		s.client.Disconnect(0)
		return nil, err
	}
	return s, nil
}

// run serves one connection until it drops or ctx ends.
func (s *session) run(ctx context.Context) error {
	br := s.br
	br.setConnected(s.srv)
	if s.renewIn > 0 {
		renew := time.AfterFunc(s.renewIn, func() { s.connectionLost(errTokenRenew) })
		defer renew.Stop()
	}
	// Not waited for: a PUBACK for "online" would only delay draining.
	if br.statusTopic != "" {
		s.client.Publish(br.statusTopic, 1, true, "online")
	}
	// These helpers can be held up inside paho for up to the write or
	// connect timeout after the connection drops; Run waits for them when
	// it ends, not before reconnecting (see Bridge.pubs).
	stop := make(chan struct{})
	if len(br.downlink) > 0 {
		filters := make(map[string]byte, len(br.downlink))
		for _, r := range br.downlink {
			filters[r.raw] = r.qos
		}
		tok := s.client.SubscribeMultiple(filters, nil)
		br.pubs.Add(1)
		go func() {
			defer br.pubs.Done()
			s.subscribed(tok)
		}()
	}
	br.pubs.Add(1)
	go func() {
		defer br.pubs.Done()
		s.sendDirect(stop)
	}()
	err := s.drain(ctx)
	br.connected.Store(false)
	if errors.Is(err, errLost) {
		// The window saw the loss first; paho's reason follows shortly.
		select {
		case <-s.lost:
			err = s.lostErr
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	close(stop)

	if ctx.Err() != nil && s.up() {
		// Leaving on purpose: a DISCONNECT suppresses the will, so say
		// "offline" ourselves, within goodbyeTimeout whatever the link
		// does. Closing the connection (paho does, in Disconnect) ends
		// every write still under way.
		until := time.Now().Add(goodbyeTimeout)
		if br.statusTopic != "" {
			t := s.client.Publish(br.statusTopic, 1, true, "offline")
			t.WaitTimeout(time.Until(until))
		}
		s.client.Disconnect(uint(max(time.Until(until), time.Millisecond) / time.Millisecond))
		return nil
	}
	s.client.Disconnect(0)
	return err
}

// subscribed logs downlink subscriptions the upstream refused.
func (s *session) subscribed(tok mqtt.Token) {
	if !tok.WaitTimeout(connectTimeout) {
		s.br.log.Warn("uplink: no answer to the downlink subscription", "server", s.srv.display)
		return
	}
	if err := tok.Error(); err != nil {
		s.br.log.Warn("uplink: downlink subscription failed", "server", s.srv.display, "err", err)
		return
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code >= 0x80 {
				s.br.log.Warn("uplink: the server refused a downlink subscription", "filter", f, "server", s.srv.display)
				return
			}
		}
	}
	if s.up() {
		s.br.mu.Lock()
		s.br.st.Subscribed = true
		s.br.mu.Unlock()
	}
}

// sendDirect sends QoS 0 messages that bypass the buffer.
func (s *session) sendDirect(stop <-chan struct{}) {
	loop := s.br.live.Loop("uplink QoS 0 sender", handoffLimit)
	defer s.br.live.Remove(loop)
	for {
		select {
		case <-stop:
			return
		case m := <-s.br.direct:
			loop.Busy("handing a publish to the connection")
			tok := s.client.Publish(m.Topic, 0, m.Retain, m.Payload)
			loop.Idle()
			if failedAtOnce(tok) { // not connected any more, or paho's writer held up
				s.br.droppedQoS0.Add(1)
			} else {
				s.br.sentQoS0.Add(1)
			}
		}
	}
}

// flight is a buffered entry handed to the publisher, waiting for its
// PUBACK.
type flight struct {
	seq   int64
	topic string
	tok   mqtt.Token // nil until paho has taken the publish
	at    time.Time  // when paho took it
}

// drain sends the buffer upstream in sequence order, keeping up to
// br.inflight QoS 1 publishes outstanding, and acknowledges entries in the
// buffer only once the upstream's PUBACK has confirmed them, in order. It
// starts from the head of the buffer, so whatever an earlier connection
// left unconfirmed is sent again first.
//
// paho's Publish is called from a goroutine of its own (publisher): when
// the connection drops, a Publish already under way can block for the
// hand-off timeout, and drain must notice the loss and end at once.
//
// A server that goes silent with publishes outstanding (no byte read for
// ack_timeout since the oldest was handed over and nothing left to write)
// ends the session: a dead link is found within seconds, not after
// keepalive and the ping timeout.
func (s *session) drain(ctx context.Context) error {
	br := s.br
	acks := newAcker(br)
	defer acks.close() // waits, so the next session reads a settled buffer

	toSend := make(chan buffer.Entry, br.inflight)
	sent := make(chan mqtt.Token, br.inflight)
	quit := make(chan struct{})
	br.pubs.Add(1)
	go func() {
		defer br.pubs.Done()
		s.publisher(toSend, sent, quit)
	}()
	defer close(toSend)
	defer close(quit)

	var (
		last      int64          // highest seq read from the buffer
		queue     []buffer.Entry // read ahead, not yet handed to the publisher
		queued    int64          // bytes in queue
		win       []flight       // handed to the publisher, in order
		taken     int            // how many of win paho has taken (tok set)
		exhausted bool           // the last Read came back short: wait for Notify
	)
	defer func() { s.unconfirmed = win }()
	check := time.NewTicker(max(br.ackTimeout/4, 10*time.Millisecond))
	defer check.Stop()
	notify := br.buf.Notify()
	for {
		// Read ahead in batches: one query per few windows instead of one
		// per PUBACK. Bounded in entries and bytes. An entry the buffer
		// drops (drop-oldest, max age) after it was read ahead is still
		// sent: counted as dropped, yet delivered, never the reverse.
		for !exhausted && len(queue) < readAhead && queued < readAheadBytes {
			es, err := br.buf.Read(last, br.inflight)
			if err != nil {
				return fmt.Errorf("reading the buffer: %w", err)
			}
			for _, e := range es {
				queued += int64(len(e.Msg.Topic) + len(e.Msg.Payload))
			}
			queue = append(queue, es...)
			if len(es) > 0 {
				last = es[len(es)-1].Seq
			}
			exhausted = len(es) < br.inflight
		}
		for len(queue) > 0 && len(win) < br.inflight && !s.oneAtATime(queue[0].Seq, win) {
			e := queue[0]
			queue[0] = buffer.Entry{}
			queue = queue[1:]
			queued -= int64(len(e.Msg.Topic) + len(e.Msg.Payload))
			if br.skipped[e.Seq] {
				continue // could not be set aside; skipped until a restart
			}
			if why := storedTopicProblem(e.Msg.Topic); why != "" {
				br.setAside(e.Seq, e.Msg.Topic, why)
				continue
			}
			if e.Seq <= br.resendUpTo {
				br.duplicates.Add(1)
			}
			br.resendUpTo = max(br.resendUpTo, e.Seq)
			toSend <- e // never blocks: at most inflight are outstanding
			win = append(win, flight{seq: e.Seq, topic: e.Msg.Topic})
		}
		var head <-chan struct{}
		if taken > 0 {
			head = win[0].tok.Done()
		}
		var more <-chan struct{}
		if exhausted {
			more = notify
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.lost:
			return s.lostErr
		case <-more:
			exhausted = false
		case tok := <-sent:
			win[taken].tok, win[taken].at = tok, time.Now()
			taken++
		case <-head:
			n, err := s.confirmed(win[:taken])
			acks.add(win[:n])
			s.delivered = s.delivered || n > 0
			win = append(win[:0], win[n:]...)
			taken -= n
			if err != nil {
				return err
			}
		case now := <-check.C:
			if taken > 0 && s.silent(win[0].at, now) {
				return fmt.Errorf("%w within ack_timeout (%v) of a publish: the link looks dead", errAckOverdue, br.ackTimeout)
			}
		}
	}
}

// oneAtATime reports whether the entry seq must wait for the window to be
// empty: entries that were in flight when the server last closed the
// connection go up alone until one of them is found to be the cause (see
// judge), and nothing is sent beside one of them.
func (s *session) oneAtATime(seq int64, win []flight) bool {
	careful := s.br.careful
	if len(win) == 0 || careful == 0 {
		return false
	}
	return seq <= careful || win[len(win)-1].seq <= careful
}

// silent reports whether nothing has been read from the server for
// ack_timeout since since (the oldest publish was handed over), with
// nothing left to write: a slow link still busy sending is not silent.
func (s *session) silent(since, now time.Time) bool {
	if c := s.conn.Load(); c != nil {
		last, writing := c.activity()
		if writing {
			return false
		}
		if last.After(since) {
			since = last
		}
	}
	return now.Sub(since) > s.br.ackTimeout
}

// publisher hands entries to paho in order and passes the tokens back. A
// hand-off that timed out while the connection is still up (paho's writer
// is held up by a slow link) is tried again, so that nothing is sent out
// of order. After the connection is gone paho refuses the rest at once;
// sent has room for every outstanding entry, so it never blocks. It ends
// when toSend is closed or quit is.
func (s *session) publisher(toSend <-chan buffer.Entry, sent chan<- mqtt.Token, quit <-chan struct{}) {
	loop := s.br.live.Loop("uplink publisher", handoffLimit)
	defer s.br.live.Remove(loop)
	for e := range toSend {
		loop.Busy("handing a publish to the connection")
		for {
			select {
			case <-quit:
				return
			default:
			}
			tok := s.client.Publish(e.Msg.Topic, 1, e.Msg.Retain, e.Msg.Payload)
			if !handoffTimedOut(tok) || !s.up() {
				sent <- tok
				break
			}
		}
		loop.Idle()
	}
}

// handoffTimedOut reports whether paho gave up handing a packet to its
// writer (the token failed at once, with paho's "broken by timeout").
func handoffTimedOut(tok mqtt.Token) bool {
	return failedAtOnce(tok) && strings.Contains(tok.Error().Error(), "broken by timeout")
}

// failedAtOnce reports whether paho's Publish returned a token that has
// already failed.
func failedAtOnce(tok mqtt.Token) bool {
	select {
	case <-tok.Done():
		return tok.Error() != nil
	default:
		return false
	}
}

// confirmed counts the publishes at the front of the window that the
// upstream has acknowledged. A token that completed with an error, or
// after the connection went (paho #563: a token can complete without a
// PUBACK when the connection drops), ends the session: it and everything
// after it are sent again, in order, after the reconnect.
func (s *session) confirmed(win []flight) (int, error) {
	for n, f := range win {
		select {
		case <-f.tok.Done():
		default:
			return n, nil
		}
		if err := f.tok.Error(); err != nil {
			return n, fmt.Errorf("publish not confirmed: %w", err)
		}
		if !s.up() {
			return n, errLost
		}
	}
	return len(win), nil
}

// acker removes confirmed entries from the buffer in the background, so a
// commit does not stall the window; a burst of confirmations shares one.
type acker struct {
	br   *Bridge
	mu   sync.Mutex
	seqs []int64
	kick chan struct{}
	done chan struct{}
	stop chan struct{}
}

func newAcker(br *Bridge) *acker {
	a := &acker{br: br, kick: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{})}
	go a.run()
	return a
}

func (a *acker) add(fs []flight) {
	if len(fs) == 0 {
		return
	}
	a.mu.Lock()
	for _, f := range fs {
		a.seqs = append(a.seqs, f.seq)
	}
	a.mu.Unlock()
	a.br.delivered.Add(uint64(len(fs)))
	a.br.lastDelivery.Store(time.Now().UnixNano())
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *acker) run() {
	defer close(a.done)
	for {
		stopping := false
		select {
		case <-a.kick:
			// Let confirmations gather for a moment: one commit per
			// ackBatch or ackDelay instead of one per PUBACK burst. A crash
			// in between costs duplicates upstream, never a loss.
			t := time.NewTimer(ackDelay)
		gather:
			for a.pending() < ackBatch {
				select {
				case <-a.kick:
				case <-t.C:
					break gather
				case <-a.stop:
					stopping = true
					break gather
				}
			}
			t.Stop()
		case <-a.stop:
			stopping = true
		}
		a.mu.Lock()
		seqs := a.seqs
		a.seqs = nil
		a.mu.Unlock()
		if len(seqs) > 0 {
			if err := a.br.buf.Ack(seqs...); err != nil {
				// They stay in the buffer and go up again: a duplicate, not a loss.
				a.br.log.Warn("uplink: removing delivered messages from the buffer failed", "messages", len(seqs), "err", err)
			}
		}
		if stopping {
			return
		}
	}
}

func (a *acker) pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seqs)
}

// close flushes what is pending and waits.
func (a *acker) close() {
	close(a.stop)
	<-a.done
}

// onDownlink publishes a message from upstream into the local broker.
func (br *Bridge) onDownlink(c mqtt.Client, m mqtt.Message) {
	if br.propertySet(c, m) {
		return
	}
	topic, ok := localTopic(br.downlink, m.Topic())
	if !ok {
		br.dlDrops.Add(1)
		return
	}
	qos := min(m.Qos(), 1)
	if err := br.publishLocal(topic, m.Payload(), qos, m.Retained()); err != nil {
		br.dlDrops.Add(1)
		br.log.Warn("uplink: downlink message refused by the local broker", "topic", topic, "err", err)
		return
	}
	br.downlinked.Add(1)
}

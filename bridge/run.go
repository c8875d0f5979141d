package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/buffer"
)

const (
	connectTimeout = 10 * time.Second
	writeTimeout   = 10 * time.Second
	// readAhead and readAheadBytes bound the entries drain holds in
	// memory beyond the window.
	readAhead      = 1024
	readAheadBytes = 1 << 20
	// ackBatch and ackDelay bound how many confirmed entries, and for how
	// long, wait to be removed from the buffer together.
	ackBatch = 1024
	ackDelay = 20 * time.Millisecond
	// stableAfter is how long a connection must last to reset the backoff.
	stableAfter = 10 * time.Second
	// goodbyeTimeout bounds the "offline" publish and DISCONNECT at shutdown.
	goodbyeTimeout = 2 * time.Second
)

// errLost ends a session whose connection dropped.
var errLost = errors.New("connection lost")

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
		s, err := br.connect(ctx, srv)
		if err == nil {
			began := time.Now()
			err = s.run(ctx)
			br.setDisconnected(srv, err, ctx.Err() != nil)
			if ctx.Err() != nil {
				return nil
			}
			// A connection that is dropped at once (another client taking
			// over the same client id, a broker refusing a publish) must
			// not turn into a reconnect loop: only one that lasted resets
			// the backoff.
			if time.Since(began) < stableAfter {
				failures++
			} else {
				failures = 0
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
		t := time.NewTimer(backoff(failures, br.maxBackoff, br.rnd))
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

	lostOnce sync.Once
	lost     chan struct{} // closed when paho reports the connection lost
	lostErr  error         // set before lost is closed
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
	s := &session{br: br, srv: srv, lost: make(chan struct{})}
	o := mqtt.NewClientOptions().
		AddBroker(srv.url).
		SetClientID(br.clientID).
		SetCleanSession(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetStore(nopStore{}).
		SetProtocolVersion(4).
		SetKeepAlive(br.keepalive).
		SetPingTimeout(min(br.keepalive, 10*time.Second)).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(writeTimeout).
		SetOrderMatters(true).
		SetWill(br.statusTopic, "offline", 1, true).
		SetDefaultPublishHandler(br.onDownlink).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { s.connectionLost(err) })
	if br.cfg.Username != "" {
		o.SetUsername(br.cfg.Username)
	}
	if br.password != "" {
		o.SetPassword(br.password)
	}
	var tc *tls.Config
	if srv.tls {
		var err error
		if tc, err = tlsConfig(br.cfg); err != nil {
			return nil, err
		}
		if br.cfg.InsecureSkipVerify {
			br.log.Warn("uplink: TLS certificate verification is OFF (insecure_skip_verify = true): anyone on the path can read and change this connection",
				"server", srv.display)
		}
		o.SetTLSConfig(tc)
	}
	if !srv.ws {
		// Dial ourselves so that a shutdown does not wait for a dial or a
		// TLS handshake to time out.
		o.SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, connectTimeout)
			defer cancel()
			d := &net.Dialer{KeepAlive: 30 * time.Second}
			var c net.Conn
			var err error
			if tc == nil {
				c, err = d.DialContext(dctx, "tcp", srv.host)
			} else {
				c, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(dctx, "tcp", srv.host)
			}
			if err != nil {
				return nil, err
			}
			return newBatchConn(c, writeTimeout), nil
		})
	}
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
	// Not waited for: a PUBACK for "online" would only delay draining.
	s.client.Publish(br.statusTopic, 1, true, "online")
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
		case <-time.After(time.Second):
		}
	}
	close(stop)

	if ctx.Err() != nil && s.up() {
		// Leaving on purpose: a DISCONNECT suppresses the will, so say
		// "offline" ourselves.
		t := s.client.Publish(br.statusTopic, 1, true, "offline")
		t.WaitTimeout(goodbyeTimeout)
		s.client.Disconnect(uint(goodbyeTimeout / time.Millisecond))
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
	for {
		select {
		case <-stop:
			return
		case m := <-s.br.direct:
			s.client.Publish(m.Topic, 0, m.Retain, m.Payload)
			s.br.sentQoS0.Add(1)
		}
	}
}

// flight is a buffered entry handed to paho, waiting for its PUBACK.
type flight struct {
	seq int64
	tok mqtt.Token
}

// drain sends the buffer upstream in sequence order, keeping up to
// br.inflight QoS 1 publishes outstanding, and acknowledges entries in the
// buffer only once the upstream's PUBACK has confirmed them, in order. It
// starts from the head of the buffer, so whatever an earlier connection
// left unconfirmed is sent again first.
//
// paho's Publish is called from a goroutine of its own (publisher): when
// the connection drops, a Publish already under way can block for the whole
// write timeout, and drain must notice the loss and end at once.
func (s *session) drain(ctx context.Context) error {
	br := s.br
	acks := newAcker(br)
	defer acks.close() // waits, so the next session reads a settled buffer

	toSend := make(chan buffer.Entry, br.inflight)
	sent := make(chan flight, br.inflight)
	br.pubs.Add(1)
	go func() {
		defer br.pubs.Done()
		s.publisher(toSend, sent)
	}()
	defer close(toSend)

	var (
		last      int64          // highest seq read from the buffer
		queue     []buffer.Entry // read ahead, not yet handed to the publisher
		queued    int64          // bytes in queue
		win       []flight
		pending   int  // handed to the publisher, not yet back in win
		exhausted bool // the last Read came back short: wait for Notify
	)
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
		for len(queue) > 0 && len(win)+pending < br.inflight {
			e := queue[0]
			queue[0] = buffer.Entry{}
			queue = queue[1:]
			queued -= int64(len(e.Msg.Topic) + len(e.Msg.Payload))
			if e.Seq <= br.resendUpTo {
				br.duplicates.Add(1)
			}
			br.resendUpTo = max(br.resendUpTo, e.Seq)
			toSend <- e // never blocks: at most inflight are outstanding
			pending++
		}
		var head <-chan struct{}
		if len(win) > 0 {
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
		case f := <-sent:
			pending--
			win = append(win, f)
		case <-head:
			n, err := s.confirmed(win)
			acks.add(win[:n])
			if err != nil {
				return err
			}
			win = append(win[:0], win[n:]...)
		}
	}
}

// publisher hands entries to paho in order and passes the tokens back.
// After the connection is gone paho refuses the rest at once; sent has room
// for every outstanding entry, so it never blocks and always ends when
// toSend is closed.
func (s *session) publisher(toSend <-chan buffer.Entry, sent chan<- flight) {
	for e := range toSend {
		tok := s.client.Publish(e.Msg.Topic, 1, e.Msg.Retain, e.Msg.Payload)
		sent <- flight{seq: e.Seq, tok: tok}
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
func (br *Bridge) onDownlink(_ mqtt.Client, m mqtt.Message) {
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

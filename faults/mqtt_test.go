package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// The suites speak MQTT 3.1.1 over a bare socket (paho's packet codec, not
// its client): a PUBACK is counted when it is read off the wire and at no
// other time, which is the one thing the count must not get wrong — a full
// client may complete a publish token without one when the connection drops.

// ioLimit bounds every connect and write; a peer that takes longer is broken.
const ioLimit = 5 * time.Second

// ackWait is how long a publisher that was asked to stop waits for the
// acknowledgements still owed to it.
const ackWait = 3 * time.Second

// dial opens a clean MQTT 3.1.1 session as client id.
func dial(addr, id string) (net.Conn, error) {
	c, _, err := dialSession(addr, id, true)
	return c, err
}

// dialSession connects as client id with a clean or a persistent session
// and reports whether the broker still held a session for it.
func dialSession(addr, id string, clean bool) (c net.Conn, present bool, err error) {
	c, err = net.DialTimeout("tcp", addr, ioLimit)
	if err != nil {
		return nil, false, err
	}
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.CleanSession, cp.ClientIdentifier = "MQTT", 4, clean, id
	_ = c.SetDeadline(time.Now().Add(ioLimit))
	if err := cp.Write(c); err != nil {
		c.Close()
		return nil, false, fmt.Errorf("connect %s: %w", addr, err)
	}
	p, err := packets.ReadPacket(c)
	if err != nil {
		c.Close()
		return nil, false, fmt.Errorf("connack from %s: %w", addr, err)
	}
	ack, ok := p.(*packets.ConnackPacket)
	if !ok || ack.ReturnCode != 0 {
		c.Close()
		return nil, false, fmt.Errorf("connect %s: refused: %v", addr, p)
	}
	_ = c.SetDeadline(time.Time{})
	return c, ack.SessionPresent, nil
}

// subscribe subscribes c to filter at QoS 1 and waits for the SUBACK.
func subscribe(c net.Conn, filter string) error {
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.MessageID, sub.Topics, sub.Qoss = 1, []string{filter}, []byte{1}
	_ = c.SetDeadline(time.Now().Add(ioLimit))
	defer c.SetDeadline(time.Time{})
	if err := sub.Write(c); err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	pk, err := packets.ReadPacket(c)
	if _, ok := pk.(*packets.SubackPacket); err != nil || !ok {
		return fmt.Errorf("subscribe %s: no SUBACK: %v %v", filter, pk, err)
	}
	return nil
}

// nextMessage reads packets from c until a PUBLISH arrives (and
// acknowledges it at QoS 1), or until limit passes: then it returns nil
// and the timeout error.
func nextMessage(c net.Conn, limit time.Duration) (*packets.PublishPacket, error) {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	defer c.SetReadDeadline(time.Time{})
	for {
		pk, err := packets.ReadPacket(c)
		if err != nil {
			return nil, err
		}
		if pub, ok := pk.(*packets.PublishPacket); ok {
			if pub.Qos == 1 {
				ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
				ack.MessageID = pub.MessageID
				_ = c.SetWriteDeadline(time.Now().Add(ioLimit))
				if err := ack.Write(c); err != nil {
					return nil, err
				}
			}
			return pub, nil
		}
	}
}

// payload is a message's body: its number, a bar, then filler up to size.
func payload(seq, size int) []byte {
	b := []byte(strconv.Itoa(seq) + "|")
	for len(b) < size {
		b = append(b, '.')
	}
	return b
}

// seqOf reads the number back from a payload.
func seqOf(p []byte) (int, error) {
	n, _, ok := strings.Cut(string(p), "|")
	if !ok {
		return 0, fmt.Errorf("payload %.40q has no sequence number", p)
	}
	return strconv.Atoi(n)
}

// Publisher sends numbered QoS 1 messages on one local topic.
type Publisher struct {
	Addr   string        // edged's local listener
	ID     string        // client id
	Topic  string        // local topic
	Window int           // unacknowledged publishes at most
	Pace   time.Duration // least time between two publishes; 0: as fast as acks allow
	Size   int           // payload bytes
	Ledger *Ledger
}

// Run publishes until ctx ends or the connection fails (edged killed, a
// publish refused with a disconnect), recording every PUBACK in the ledger.
// Once ctx ends it waits up to ackWait for the acknowledgements owed, then
// disconnects. It returns nil when ctx ended it, else why it stopped.
func (p Publisher) Run(ctx context.Context) error {
	c, err := dial(p.Addr, p.ID)
	if err != nil {
		return err
	}
	defer c.Close()
	var (
		mu       sync.Mutex
		inflight = map[uint16]int{}
		drained  = make(chan struct{}, 1) // a slot came free
		readErr  error
		readDone = make(chan struct{})
	)
	go func() {
		defer close(readDone)
		for {
			pk, err := packets.ReadPacket(c)
			if err != nil {
				readErr = err
				return
			}
			ack, ok := pk.(*packets.PubackPacket)
			if !ok {
				continue
			}
			mu.Lock()
			if seq, ok := inflight[ack.MessageID]; ok {
				p.Ledger.Acked(p.Topic, seq)
				delete(inflight, ack.MessageID)
			}
			mu.Unlock()
			select {
			case drained <- struct{}{}:
			default:
			}
		}
	}()
	outstanding := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(inflight)
	}
	var id uint16
	var last time.Time
	for ctx.Err() == nil {
		if outstanding() >= p.Window {
			select {
			case <-drained:
			case <-readDone:
				return fmt.Errorf("%s: %w", p.ID, readErr)
			case <-ctx.Done():
			}
			continue
		}
		if wait := p.Pace - time.Since(last); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				continue
			}
		}
		last = time.Now()
		mu.Lock()
		for id++; id == 0 || inflight[id] != 0; id++ {
		}
		seq := p.Ledger.Next(p.Topic)
		inflight[id] = seq
		mu.Unlock()
		pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		pub.Qos, pub.TopicName, pub.MessageID, pub.Payload = 1, p.Topic, id, payload(seq, p.Size)
		_ = c.SetWriteDeadline(time.Now().Add(ioLimit))
		if err := pub.Write(c); err != nil {
			c.Close()
			<-readDone
			return fmt.Errorf("%s: publish: %w", p.ID, err)
		}
	}
	deadline := time.After(ackWait)
	for outstanding() > 0 {
		select {
		case <-drained:
		case <-readDone:
			return fmt.Errorf("%s: %w", p.ID, readErr)
		case <-deadline:
			c.Close()
			<-readDone
			return fmt.Errorf("%s: %d publishes not acknowledged within %v", p.ID, outstanding(), ackWait)
		}
	}
	_ = c.SetWriteDeadline(time.Now().Add(ioLimit))
	_ = packets.NewControlPacket(packets.Disconnect).Write(c)
	c.Close()
	<-readDone
	return nil
}

// Collector is a subscriber on the upstream broker that records every
// numbered message arriving there in a ledger.
type Collector struct {
	conn net.Conn
	done chan struct{}
	err  error
}

// Collect subscribes at QoS 1 to filter on the broker at addr; each message
// is recorded in ledger under its topic with strip removed from the front.
func Collect(addr, id, filter, strip string, ledger *Ledger) (*Collector, error) {
	c, err := dial(addr, id)
	if err != nil {
		return nil, err
	}
	if err := subscribe(c, filter); err != nil {
		c.Close()
		return nil, err
	}
	col := &Collector{conn: c, done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for {
			pub, err := nextMessage(c, 24*time.Hour) // until Close
			if err != nil {
				col.err = err
				return
			}
			if seq, err := seqOf(pub.Payload); err == nil {
				ledger.Delivered(strings.TrimPrefix(pub.TopicName, strip), seq)
			}
		}
	}()
	return col, nil
}

// Err returns why the collector stopped, or nil while it runs.
func (c *Collector) Err() error {
	select {
	case <-c.done:
		if c.err == nil {
			return errors.New("collector stopped")
		}
		return fmt.Errorf("upstream subscriber: %w", c.err)
	default:
		return nil
	}
}

// Close ends the subscription.
func (c *Collector) Close() {
	c.conn.Close()
	<-c.done
}

// publishAcked publishes one QoS 1 message and returns once its PUBACK
// arrived.
func publishAcked(addr, id, topic string, body []byte, retain bool) error {
	c, err := dial(addr, id)
	if err != nil {
		return err
	}
	defer c.Close()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.Retain, pub.TopicName, pub.MessageID, pub.Payload = 1, retain, topic, 1, body
	_ = c.SetDeadline(time.Now().Add(ioLimit))
	if err := pub.Write(c); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	for {
		pk, err := packets.ReadPacket(c)
		if err != nil {
			return fmt.Errorf("publish %s: no PUBACK: %w", topic, err)
		}
		if ack, ok := pk.(*packets.PubackPacket); ok && ack.MessageID == 1 {
			_ = packets.NewControlPacket(packets.Disconnect).Write(c)
			return nil
		}
	}
}

// Retained subscribes to filter and returns the retained messages the
// broker hands over (topic to payload), taking all that arrive until none
// has for settle.
func Retained(addr, id, filter string, settle time.Duration) (map[string]string, error) {
	c, err := dial(addr, id)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := subscribe(c, filter); err != nil {
		return nil, err
	}
	got := map[string]string{}
	for {
		pub, err := nextMessage(c, settle)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got[pub.TopicName] = string(pub.Payload)
	}
}

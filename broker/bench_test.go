package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/internal/testpeer"
)

const (
	benchPublishers = 10
	benchPayload    = 64
	benchWindow     = 16 // a publisher's messages not yet at the subscriber
)

// loadResult is one run of the load against one broker.
type loadResult struct {
	delivered int64
	dropped   int64
	elapsed   time.Duration
}

func (r loadResult) rate() float64 { return float64(r.delivered) / r.elapsed.Seconds() }

// runLoad connects one subscriber (benchSubscriber) and benchPublishers
// publishers (benchPublisher) to the broker at addr and has each publisher
// send n messages of benchPayload bytes at qos. Each publisher keeps at most
// benchWindow of its messages between its publish and the subscriber's
// receipt: neither broker pushes back on a publisher, so an open loop would
// measure only how fast each drops messages for a subscriber that cannot
// keep up. The window (10 x 16 messages) is well within both brokers'
// per-subscriber queues, so a message the subscriber misses within 30s is a
// real drop.
func runLoad(b *testing.B, addr string, run string, qos byte, n int) loadResult {
	b.Helper()
	total := int64(benchPublishers * n)
	var got atomic.Int64
	all := make(chan struct{})
	topic := "bench/" + run
	var delivered [benchPublishers]atomic.Int64
	var wake [benchPublishers]chan struct{}
	for i := range wake {
		wake[i] = make(chan struct{}, 1)
	}
	onMessage := func(t string) {
		if i, err := strconv.Atoi(t[strings.LastIndexByte(t, '/')+1:]); err == nil && i >= 0 && i < benchPublishers {
			delivered[i].Add(1)
			select {
			case wake[i] <- struct{}{}:
			default:
			}
		}
		if got.Add(1) == total {
			close(all)
		}
	}
	stopSub := benchSubscriber(b, addr, run+"-sub", topic+"/#", qos, onMessage)
	defer stopSub()
	pubs := make([]*benchPublisher, benchPublishers)
	for i := range pubs {
		pubs[i] = newBenchPublisher(b, addr, fmt.Sprintf("%s-pub%d", run, i))
		defer pubs[i].close()
	}
	payload := make([]byte, benchPayload)

	b.StartTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := fmt.Sprintf("%s/%d", topic, i)
			for sent := int64(0); sent < int64(n); sent++ {
				for sent-delivered[i].Load() >= benchWindow {
					if err := p.flush(); err != nil {
						return
					}
					select {
					case <-wake[i]:
					case <-time.After(time.Second):
						if time.Since(start) > 30*time.Second {
							return // messages were lost; the shortfall is reported
						}
					}
				}
				if err := p.publish(t, qos, payload); err != nil {
					b.Errorf("publish: %v", err)
					return
				}
			}
			_ = p.flush()
		}()
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(30 * time.Second):
	}
	elapsed := time.Since(start)
	b.StopTimer()
	return loadResult{delivered: got.Load(), dropped: total - got.Load(), elapsed: elapsed}
}

// benchPublisher is a minimal MQTT 3.1.1 publisher over a plain TCP
// connection: each publish is one write, and PUBACKs are read and
// discarded. See benchSubscriber for why the benchmark does not use paho.
type benchPublisher struct {
	rc   *rawClient
	w    *bufio.Writer
	id   uint16
	done chan struct{}
}

func newBenchPublisher(b *testing.B, addr, id string) *benchPublisher {
	b.Helper()
	rc := dialRaw(b, addr)
	rc.connect(4, id, true, func(pk *packets.Packet) { pk.Connect.Keepalive = 0 })
	_ = rc.c.SetDeadline(time.Time{})
	p := &benchPublisher{rc: rc, w: bufio.NewWriterSize(rc.c, 4096), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_, _ = io.Copy(io.Discard, rc.r)
	}()
	return p
}

func (p *benchPublisher) publish(topic string, qos byte, payload []byte) error {
	hdr := byte(0x30) | qos<<1
	rem := 2 + len(topic) + len(payload)
	if qos > 0 {
		rem += 2
	}
	buf := make([]byte, 0, 8+rem)
	buf = append(buf, hdr)
	for {
		d := byte(rem % 128)
		rem /= 128
		if rem > 0 {
			d |= 0x80
		}
		buf = append(buf, d)
		if rem == 0 {
			break
		}
	}
	buf = append(buf, byte(len(topic)>>8), byte(len(topic)))
	buf = append(buf, topic...)
	if qos > 0 {
		p.id++
		if p.id == 0 {
			p.id = 1
		}
		buf = append(buf, byte(p.id>>8), byte(p.id))
	}
	buf = append(buf, payload...)
	// One write per message, as paho and mosquitto_pub do: batching whole
	// windows into one write made bursts that starve the broker goroutine
	// reading the subscriber's PUBACKs, which is not the load being measured.
	if _, err := p.w.Write(buf); err != nil {
		return err
	}
	return p.w.Flush()
}

func (p *benchPublisher) flush() error { return p.w.Flush() }

func (p *benchPublisher) close() {
	_ = p.w.Flush()
	_ = p.rc.c.Close()
	<-p.done
}

// benchSubscriber is the benchmark's subscriber: a minimal MQTT 3.1.1
// client over a plain TCP connection that acknowledges every QoS 1 message
// and calls onMessage with its topic. The benchmark started with paho on
// both sides; its QoS 1 runs then stalled or came up short against both
// brokers alike (not diagnosed to the end), and a benchmark that must count
// every message cannot carry a client it cannot account for.
func benchSubscriber(b *testing.B, addr, id, filter string, qos byte, onMessage func(topic string)) (stop func()) {
	b.Helper()
	rc := dialRaw(b, addr)
	rc.connect(4, id, true, func(pk *packets.Packet) { pk.Connect.Keepalive = 0 })
	rc.subscribe(filter, qos)
	_ = rc.c.SetDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := bufio.NewWriterSize(rc.c, 256) // at most 64 PUBACKs wait
		// PUBACKs are written in batches, flushed whenever reading would
		// wait on the network: a broker holding back messages until it sees
		// acknowledgements must get them before we wait for more.
		pending, _ := rc.r.Peek(rc.r.Buffered())
		r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pending), flushingReader{rc.c, w}), 64<<10)
		var fh packets.FixedHeader
		for {
			hb, err := r.ReadByte()
			if err != nil {
				return
			}
			if err := fh.Decode(hb); err != nil {
				return
			}
			n, _, err := packets.DecodeLength(r)
			if err != nil {
				return
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(r, body); err != nil {
				return
			}
			if fh.Type != packets.Publish {
				continue
			}
			tl := int(body[0])<<8 | int(body[1])
			onMessage(string(body[2 : 2+tl]))
			if fh.Qos > 0 {
				// PUBACK: type 4, remaining length 2, the packet id.
				_, _ = w.Write([]byte{0x40, 0x02, body[2+tl], body[3+tl]})
			}
		}
	}()
	return func() {
		rc.c.Close()
		<-done
	}
}

// flushingReader flushes w before each read from the connection.
type flushingReader struct {
	c net.Conn
	w *bufio.Writer
}

func (f flushingReader) Read(p []byte) (int, error) {
	if f.w.Buffered() > 0 {
		if err := f.w.Flush(); err != nil {
			return 0, err
		}
	}
	return f.c.Read(p)
}

// BenchmarkBrokerVsMosquitto puts the same load through the embedded broker
// and through a mosquitto started here, in the same run: 10 publishers, one
// subscriber, 64-byte payloads, b.N messages per publisher, at QoS 0 and 1.
// It reports each broker's delivered messages per second, their ratio and
// the messages the subscriber did not get.
func BenchmarkBrokerVsMosquitto(b *testing.B) {
	// mosquitto 2.0.11 with a finite max_inflight_messages stalled in this
	// load (one publisher's messages kept flowing, the others' stopped, nothing
	// logged), so it runs unlimited: its fastest, most permissive setting.
	mosq := testpeer.StartMosquitto(b, "max_inflight_messages 0\nmax_queued_messages 0")
	_, edged := startBroker(b, loopbackCfg(), "")
	runs := 0
	for _, qos := range []byte{0, 1} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			b.StopTimer()
			runs++
			e := runLoad(b, edged, fmt.Sprintf("e%d", runs), qos, b.N)
			m := runLoad(b, mosq.Addr, fmt.Sprintf("m%d", runs), qos, b.N)
			b.ReportMetric(e.rate(), "edged-msgs/s")
			b.ReportMetric(m.rate(), "mosquitto-msgs/s")
			b.ReportMetric(e.rate()/m.rate(), "ratio")
			b.ReportMetric(float64(e.dropped), "edged-drops")
			b.ReportMetric(float64(m.dropped), "mosquitto-drops")
		})
	}
}

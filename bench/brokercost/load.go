package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// load is one traffic pattern, put through each broker by the same clients:
// mosquitto_sub processes subscribe, paho clients in this process publish.
type load struct {
	name  string
	pubs  int     // publishing clients
	subs  int     // mosquitto_sub processes, each subscribed to every message
	qos   byte    // publish and subscribe QoS
	rate  float64 // messages per second, all publishers together; 0: as fast as they can
	burst int     // messages per publisher when rate is 0
}

func (l load) steady() bool { return l.rate > 0 }

const payloadSize = 64

// result is what one run of a load measured on one broker.
type result struct {
	cpu       float64 // broker CPU seconds during the run
	cpuSys    float64 // of which in the kernel
	rss       int64   // broker peak RSS, bytes
	anon      int64   // broker anonymous RSS at the end of the run (heap, stacks: not the program's own pages), bytes
	sent      int64   // messages published
	delivered int64   // messages received, all subscribers together
	expected  int64   // sent x subscribers
	elapsed   time.Duration
	switches  int64 // broker context switches during the run
	reads     int64 // broker read system calls during the run
	writes    int64 // broker write system calls during the run
}

func (r result) cpuPer100k() float64 {
	if r.delivered == 0 {
		return 0
	}
	return r.cpu / float64(r.sent) * 100_000
}

// perMsg is n per message published.
func (r result) perMsg(n int64) float64 { return float64(n) / float64(max(r.sent, 1)) }
func (r result) fraction() float64      { return float64(r.delivered) / float64(r.expected) }
func (r result) throughput() float64    { return float64(r.delivered) / r.elapsed.Seconds() }

// subscriber is one mosquitto_sub, its output (one line per message)
// counted as it arrives.
type subscriber struct {
	cmd   *exec.Cmd
	lines atomic.Int64
	last  atomic.Int64 // unix nanoseconds of the latest line
	done  chan struct{}
}

func startSubscriber(addr, id string, qos byte) (*subscriber, error) {
	host, port, _ := net.SplitHostPort(addr)
	s := &subscriber{done: make(chan struct{})}
	s.cmd = exec.Command("mosquitto_sub", "-h", host, "-p", port, "-i", id, "-q", fmt.Sprint(qos), "-t", "bench/#")
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("mosquitto_sub: %w", err)
	}
	go func() {
		defer close(s.done)
		r := bufio.NewReaderSize(out, 64<<10)
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			if c := bytes.Count(buf[:n], []byte{'\n'}); c > 0 {
				s.lines.Add(int64(c))
				s.last.Store(time.Now().UnixNano())
			}
			if err != nil {
				return
			}
		}
	}()
	return s, nil
}

func (s *subscriber) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
	_ = s.cmd.Wait()
}

func connectPublisher(addr, id string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetAutoReconnect(false).SetCleanSession(true).SetKeepAlive(60 * time.Second).
		SetOrderMatters(false).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s: %v", id, tok.Error())
	}
	return c, nil
}

// run puts l through the broker at p, lasting about dur when steady.
func run(p *brokerProc, l load, dur time.Duration) (result, error) {
	var res result
	subs := make([]*subscriber, 0, l.subs)
	defer func() {
		for _, s := range subs {
			s.stop()
		}
	}()
	for i := range l.subs {
		s, err := startSubscriber(p.addr, fmt.Sprintf("sub%d", i), l.qos)
		if err != nil {
			return res, err
		}
		subs = append(subs, s)
	}
	pubs := make([]paho.Client, 0, l.pubs)
	defer func() {
		for _, c := range pubs {
			c.Disconnect(0)
		}
	}()
	for i := range l.pubs {
		c, err := connectPublisher(p.addr, fmt.Sprintf("pub%d", i))
		if err != nil {
			return res, err
		}
		pubs = append(pubs, c)
	}
	// mosquitto_sub says nothing when it has subscribed: probe until every
	// one has seen a message, then count from there.
	base, err := probe(pubs[0], subs)
	if err != nil {
		return res, err
	}

	user0, sys0, err := p.cpuSeconds()
	if err != nil {
		return res, err
	}
	sw0, _ := p.switches()
	r0, w0, _ := p.syscalls()
	start := time.Now()
	sent := publish(pubs, l, dur)
	res.sent = sent
	res.expected = sent * int64(len(subs))
	// Wait for delivery: until every message arrived, or nothing arrived
	// for a second (the rest was dropped).
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got int64
		latest := start.UnixNano()
		for i, s := range subs {
			got += s.lines.Load() - base[i]
			latest = max(latest, s.last.Load())
		}
		res.delivered = got
		res.elapsed = time.Duration(latest - start.UnixNano())
		if got >= res.expected || time.Since(time.Unix(0, latest)) > time.Second || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	user1, sys1, err := p.cpuSeconds()
	if err != nil {
		return res, err
	}
	sw1, _ := p.switches()
	r1, w1, _ := p.syscalls()
	res.cpu = user1 - user0 + sys1 - sys0
	res.cpuSys = sys1 - sys0
	res.switches = sw1 - sw0
	res.reads, res.writes = r1-r0, w1-w0
	if res.anon, err = procStatusKB(p.pid(), "RssAnon:"); err != nil {
		return res, err
	}
	res.rss, err = p.peakRSS()
	return res, err
}

// probe publishes on a probe topic until every subscriber has printed a
// line, and returns the line counts at that point.
func probe(c paho.Client, subs []*subscriber) ([]int64, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.Publish("bench/probe", 1, false, "probe").WaitTimeout(time.Second)
		ready := true
		for _, s := range subs {
			ready = ready && s.lines.Load() > 0
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("subscribers not receiving after 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Let the probes still in flight arrive before counting from here.
	time.Sleep(300 * time.Millisecond)
	base := make([]int64, len(subs))
	for i, s := range subs {
		base[i] = s.lines.Load()
	}
	return base, nil
}

// publish sends l's messages from every publisher and returns how many were
// sent once every publisher is done (QoS 1: acknowledged).
func publish(pubs []paho.Client, l load, dur time.Duration) int64 {
	payload := strings.Repeat("x", payloadSize)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i, c := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("bench/%d", i)
			n := l.burst
			var every time.Duration
			if l.steady() {
				every = time.Duration(float64(time.Second) * float64(len(pubs)) / l.rate)
				n = int(dur / every)
				// Spread the publishers' ticks over one interval.
				time.Sleep(every * time.Duration(i) / time.Duration(len(pubs)))
			}
			var last paho.Token
			first := time.Now()
			for k := range n {
				if every > 0 {
					if d := time.Until(first.Add(every * time.Duration(k))); d > 0 {
						time.Sleep(d)
					}
				}
				last = c.Publish(topic, l.qos, false, payload)
				sent.Add(1)
			}
			if last != nil {
				last.WaitTimeout(30 * time.Second)
			}
		}()
	}
	wg.Wait()
	return sent.Load()
}

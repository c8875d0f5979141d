package bridge

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/telemetry"
)

// stuckLocal is a local broker whose Publish does not return until gate is
// closed; entered receives each time one begins.
type stuckLocal struct {
	entered chan string
	gate    chan struct{}
}

func (l *stuckLocal) PublishAs(_, topic string, _ []byte, _ byte, _ bool) error {
	select {
	case l.entered <- topic:
	default:
	}
	<-l.gate
	return nil
}

// plainUplink is an uplink config to a plain TCP server at addr.
func plainUplink(addr string) config.Uplink {
	return config.Uplink{
		URL:        "mqtt://" + addr,
		MaxBackoff: config.Duration{Duration: time.Second},
		Forward:    []config.Forward{{Local: "gw/#", RemotePrefix: "sites/a/"}},
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTheWatchdogSeesAStatusPublishThatNeverEnds(t *testing.T) {
	local := &stuckLocal{entered: make(chan string, 16), gate: make(chan struct{})}
	log, _ := testLogger(t)
	br, err := testNew(plainUplink(closedAddr(t)), openBuffer(t, buffer.Options{}), "gw", local, log)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testpeer.Clock{}
	br.now = clock.Now
	stop := runBridge(t, br)
	defer stop()
	defer close(local.gate) // before stop: Run waits for the status loop

	select {
	case topic := <-local.entered:
		if topic != "gw/edged/uplink" {
			t.Fatalf("first local publish on %q", topic)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the status was never published")
	}
	if err := br.Stalled(); err != nil && strings.Contains(err.Error(), "uplink status") {
		t.Fatalf("a status publish within its limit was reported stuck: %v", err)
	}
	clock.Add(statusLimit + time.Second)
	err = br.Stalled()
	if err == nil || !strings.Contains(err.Error(), "uplink status: stuck in publishing the status") {
		t.Fatalf("Stalled() = %v, want the status publish stuck", err)
	}
}

// hangingServer accepts TCP connections and never answers: an upstream
// whose broker process hangs. accepted receives once per connection;
// hangUp closes the listener and every connection.
func hangingServer(t *testing.T) (addr string, accepted <-chan struct{}, hangUp func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	var once sync.Once
	hangUp = func() { once.Do(func() { ln.Close(); <-done }) }
	t.Cleanup(hangUp)
	return ln.Addr().String(), ch, hangUp
}

func TestTheWatchdogSeesAConnectionAttemptThatNeverEnds(t *testing.T) {
	addr, accepted, hangUp := hangingServer(t)
	log, _ := testLogger(t)
	br, err := testNew(plainUplink(addr), openBuffer(t, buffer.Options{}), "gw", nopLocal{}, log)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testpeer.Clock{}
	br.now = clock.Now
	stop := runBridge(t, br)

	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge never dialled")
	}
	if err := br.Stalled(); err != nil {
		t.Fatalf("an attempt within its limit was reported stuck: %v", err)
	}
	clock.Add(connectLimit + time.Second)
	err = br.Stalled()
	if err == nil || !strings.Contains(err.Error(), "uplink connect: stuck in a connection attempt to mqtt://"+addr) {
		t.Fatalf("Stalled() = %v, want the connection attempt stuck", err)
	}
	// The server hangs up: the attempt ends, and waiting to try again is
	// not being stuck.
	hangUp()
	testpeer.Eventually(t, 20*time.Second, "the attempt to end", func() bool { return br.Stats().ConnectFailures > 0 })
	stop()
	if err := br.Stalled(); err != nil {
		t.Fatalf("after the attempt ended: %v", err)
	}
}

// handClient is a paho client whose Publish waits until the test lets it
// go: paho's writer held up.
type handClient struct {
	mqtt.Client
	entered chan struct{}
	gate    chan struct{}
}

func (c *handClient) Publish(string, byte, bool, any) mqtt.Token {
	c.entered <- struct{}{}
	<-c.gate
	return doneToken{}
}

func (c *handClient) IsConnectionOpen() bool { return true }

// doneToken is a token that has completed without error.
type doneToken struct{}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (doneToken) Wait() bool                     { return true }
func (doneToken) WaitTimeout(time.Duration) bool { return true }
func (doneToken) Done() <-chan struct{}          { return closedCh }
func (doneToken) Error() error                   { return nil }

func TestTheWatchdogSeesAHandOffThatNeverEnds(t *testing.T) {
	log, _ := testLogger(t)
	br, err := testNew(plainUplink(closedAddr(t)), nopBuffer{}, "gw", nopLocal{}, log)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testpeer.Clock{}
	br.now = clock.Now
	client := &handClient{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	s := &session{br: br, client: client, lost: make(chan struct{})}
	toSend := make(chan buffer.Entry, 1)
	sent := make(chan mqtt.Token, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.publisher(toSend, sent, make(chan struct{}))
	}()
	defer wg.Wait()
	defer close(toSend)

	toSend <- buffer.Entry{Seq: 1, Msg: telemetry.Message{Topic: "sites/a/gw/m/v", Payload: []byte("1"), QoS: 1}}
	select {
	case <-client.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the publisher never called Publish")
	}
	if err := br.Stalled(); err != nil {
		t.Fatalf("a hand-off within its limit was reported stuck: %v", err)
	}
	clock.Add(handoffLimit + time.Second)
	err = br.Stalled()
	if err == nil || !strings.Contains(err.Error(), "uplink publisher: stuck in handing a publish to the connection") {
		t.Fatalf("Stalled() = %v, want the hand-off stuck", err)
	}
	close(client.gate)
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("the token was not passed back")
	}
	testpeer.Eventually(t, 10*time.Second, "the publisher to be healthy again", func() bool { return br.Stalled() == nil })
}

package broker

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// lines returns "0\n1\n...n-1\n", the input of mosquitto_pub -l.
func lines(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// receiveNumbers takes n messages on topic from sub and returns their
// payloads as numbers.
func receiveNumbers(t *testing.T, sub *testpeer.MosquittoSub, topic string, n int) []int {
	t.Helper()
	got := make([]int, 0, n)
	for len(got) < n {
		m := sub.Next(t, 10*time.Second)
		p, ok := strings.CutPrefix(m, topic+" ")
		if !ok {
			t.Fatalf("message %q is not on %s", m, topic)
		}
		v, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("payload %q: %v", p, err)
		}
		got = append(got, v)
	}
	return got
}

// inversions counts the messages that arrived after a later one.
func inversions(got []int) int {
	n := 0
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			n++
		}
	}
	return n
}

// wantInOrder fails unless got is exactly 0..n-1.
func wantInOrder(t *testing.T, got []int, what string) {
	t.Helper()
	for i, v := range got {
		if v != i {
			t.Fatalf("%s: %d inversions; message %d is %d (first 40: %v)", what, inversions(got), i, v, got[:min(40, len(got))])
		}
	}
}

// TestQoS1MessagesReachASubscriberInPublishOrder pins MQTT's ordering rule
// (4.6: a server forwards messages of one topic in the order it received
// them) against mochi's in-flight map, which orders by creation time in
// whole seconds cut to 16 bits with an unstable sort.
func TestQoS1MessagesReachASubscriberInPublishOrder(t *testing.T) {
	t.Run("a burst of 300 reaches a live mosquitto_sub -V 5 -q 1 in order", func(t *testing.T) {
		_, addr := startBroker(t, loopbackCfg(), "")
		h, p := hostPort(t, addr)
		sub := testpeer.StartMosquittoSub(t, "-h", h, "-p", p, "-V", "mqttv5", "-q", "1", "-t", "order/live")
		const n = 300
		if out, err := testpeer.MosquittoPubInput(t, lines(n), "-h", h, "-p", p, "-V", "mqttv5", "-q", "1", "-t", "order/live", "-l"); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
		wantInOrder(t, receiveNumbers(t, sub, "order/live", n), "live burst")
	})

	t.Run("messages queued for a persistent session arrive in order after each of 10 reconnects", func(t *testing.T) {
		_, addr := startBroker(t, loopbackCfg(), "")
		h, p := hostPort(t, addr)
		subArgs := []string{"-h", h, "-p", p, "-V", "mqttv5", "-q", "1", "-t", "order/queued", "-c", "-i", "order-sub", "-x", "3600"}
		sub := testpeer.StartMosquittoSub(t, subArgs...)
		const n = 100
		for round := range 10 {
			sub.Stop()
			if out, err := testpeer.MosquittoPubInput(t, lines(n), "-h", h, "-p", p, "-V", "mqttv5", "-q", "1", "-t", "order/queued", "-l"); err != nil {
				t.Fatalf("mosquitto_pub: %v: %s", err, out)
			}
			sub = testpeer.StartMosquittoSub(t, subArgs...)
			wantInOrder(t, receiveNumbers(t, sub, "order/queued", n), fmt.Sprintf("reconnect %d", round+1))
		}
	})
}

func TestQueuedMessagesKeepTheirOrderAcrossTheStampCounterWrap(t *testing.T) {
	b, addr := startBroker(t, loopbackCfg(), "")
	h, p := hostPort(t, addr)
	subArgs := []string{"-h", h, "-p", p, "-V", "mqttv5", "-q", "1", "-t", "order/wrap", "-c", "-i", "wrap-sub", "-x", "3600"}
	testpeer.StartMosquittoSub(t, subArgs...).Stop()

	// Half the messages are stamped before the 16-bit counter wraps, half after.
	const n = 40
	b.hook.seq.mu.Lock()
	b.hook.seq.counter = 0xffff - n/2
	b.hook.seq.mu.Unlock()
	if out, err := testpeer.MosquittoPubInput(t, lines(n), "-h", h, "-p", p, "-V", "mqttv5", "-q", "1", "-t", "order/wrap", "-l"); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	b.hook.seq.mu.Lock()
	wraps := b.hook.seq.renumbers
	b.hook.seq.mu.Unlock()
	if wraps != 1 {
		t.Fatalf("counter wrapped %d times, want 1", wraps)
	}
	sub := testpeer.StartMosquittoSub(t, subArgs...)
	wantInOrder(t, receiveNumbers(t, sub, "order/wrap", n), "after the wrap")
}

func TestQueuedMessagesKeepTheirOrderAcrossARestart(t *testing.T) {
	state := t.TempDir()
	b1, err := New(loopbackCfg(), state, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	stop1 := runBroker(t, b1)
	h, p := hostPort(t, b1.Addrs()[0].String())
	subArgs := func(h, p string) []string {
		return []string{"-h", h, "-p", p, "-V", "mqttv5", "-q", "1", "-t", "order/restart", "-c", "-i", "restart-sub", "-x", "3600"}
	}
	testpeer.StartMosquittoSub(t, subArgs(h, p)...).Stop()
	testpeer.Eventually(t, 30*time.Second, "the subscriber gone", func() bool { return b1.Stats().ClientsConnected == 0 })

	// The counter wraps half way: the stored stamps straddle it.
	const n = 40
	b1.hook.seq.mu.Lock()
	b1.hook.seq.counter = 0xffff - n/2
	b1.hook.seq.mu.Unlock()
	if out, err := testpeer.MosquittoPubInput(t, lines(n), "-h", h, "-p", p, "-V", "mqttv5", "-q", "1", "-t", "order/restart", "-l"); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	stop1()

	b2, err := New(loopbackCfg(), state, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runBroker(t, b2))
	h, p = hostPort(t, b2.Addrs()[0].String())
	sub := testpeer.StartMosquittoSub(t, subArgs(h, p)...)
	wantInOrder(t, receiveNumbers(t, sub, "order/restart", n), "after the restart")
}

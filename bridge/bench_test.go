package bridge

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

// benchOutage is how many QoS 1 messages are queued during the outage.
const benchOutage = 10000

// BenchmarkOutageDrain queues the same outage (benchOutage QoS 1 messages
// while the upstream is cut off by a TCP proxy) through edged's bridge and
// through a Mosquitto bridge (a second mosquitto with a connection section,
// cleansession false, the same mutual TLS, the same in-flight window), then
// restores the path and times, at a subscriber on the upstream, how long
// each takes to drain: from the first to the last message arriving
// (drain_s), and from the restore to the last (restore_to_done_s, which
// adds each side's reconnect delay: max_backoff 1s vs restart_timeout 1).
// ratio = Mosquitto's drain time / edged's (≥ 1 means edged is as fast or
// faster); figures are medians over the iterations, which alternate who
// goes first.
//
//	go test -run '^$' -bench BenchmarkOutageDrain -benchtime 5x ./bridge/
func BenchmarkOutageDrain(b *testing.B) {
	u := startUpstream(b, true)
	var edged, mosq, edgedTotal, mosqTotal []float64
	var edgedDups, mosqDups, mosqDisorder int
	round := 0
	for b.Loop() {
		round++
		var e, m drainResult
		// Alternate who goes first, so that neither always drains into
		// the fresher upstream.
		if round%2 == 1 {
			e = drainEdged(b, u, round)
			m = drainMosquitto(b, u, round)
		} else {
			m = drainMosquitto(b, u, round)
			e = drainEdged(b, u, round)
		}
		edged = append(edged, e.drain.Seconds())
		mosq = append(mosq, m.drain.Seconds())
		edgedTotal = append(edgedTotal, e.total.Seconds())
		mosqTotal = append(mosqTotal, m.total.Seconds())
		if !e.inOrder {
			b.Errorf("round %d: edged delivered out of order: %s", round, e.outOfOrder)
		}
		if !m.inOrder {
			mosqDisorder++
			b.Logf("round %d: the Mosquitto bridge delivered out of order: %s", round, m.outOfOrder)
		}
		edgedDups += e.dups
		mosqDups += m.dups
		b.Logf("round %d: edged drain %v (restore to done %v, %d dups), mosquitto bridge drain %v (restore to done %v, %d dups), ratio %.2f",
			round, e.drain.Round(time.Millisecond), e.total.Round(time.Millisecond), e.dups,
			m.drain.Round(time.Millisecond), m.total.Round(time.Millisecond), m.dups, m.drain.Seconds()/e.drain.Seconds())
	}
	b.ReportMetric(median(edged), "edged_drain_s")
	b.ReportMetric(median(mosq), "mosquitto_drain_s")
	b.ReportMetric(median(mosq)/median(edged), "ratio")
	b.ReportMetric(median(edgedTotal), "edged_restore_to_done_s")
	b.ReportMetric(median(mosqTotal), "mosquitto_restore_to_done_s")
	b.ReportMetric(median(mosqTotal)/median(edgedTotal), "ratio_restore_to_done")
	b.ReportMetric(float64(benchOutage)/median(edged), "edged_msg/s")
	b.ReportMetric(float64(benchOutage)/median(mosq), "mosquitto_msg/s")
	b.ReportMetric(float64(edgedDups), "edged_dups")
	b.ReportMetric(float64(mosqDups), "mosquitto_dups")
	b.ReportMetric(float64(mosqDisorder), "mosquitto_rounds_out_of_order")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type drainResult struct {
	drain, total time.Duration
	dups         int
	inOrder      bool
	outOfOrder   string // the first message that arrived after a later one
}

// measure restores the path and waits for every message under prefix.
func measure(b *testing.B, col *collector, prefix string, restore func()) drainResult {
	b.Helper()
	// Garbage from queueing the outage is not the drain's to collect.
	runtime.GC()
	start := time.Now()
	restore()
	deadline := time.After(120 * time.Second)
	for col.distinct(prefix+"v") < benchOutage {
		select {
		case <-col.kick:
		case <-deadline:
			b.Fatalf("%d of %d messages on %s arrived within 120s", col.distinct(prefix+"v"), benchOutage, prefix)
		}
	}
	tl := count(col.all(), prefix+"v")
	at := col.arrivals(prefix)
	var first time.Time
	for _, t := range at {
		if t.After(start) {
			first = t
			break
		}
	}
	return drainResult{drain: at[len(at)-1].Sub(first), total: at[len(at)-1].Sub(start), dups: tl.dups,
		inOrder: tl.inOrder, outOfOrder: tl.firstOutOfOrder}
}

func drainEdged(b *testing.B, u *upstream, round int) drainResult {
	b.Helper()
	col := collectQoS(b, u.plain, fmt.Sprintf("bench/edged/%d/#", round), 0)
	defer col.c.Disconnect(0)
	proxy := testpeer.StartProxy(b, u.tlsAddr)
	cfg := uplinkCfg(u, proxy.Addr)
	cfg.ClientID = fmt.Sprintf("edged-bench-%d", round)
	cfg.Forward = []config.Forward{{Local: "v", RemotePrefix: fmt.Sprintf("bench/edged/%d/", round)}}
	cfg.Downlink = nil
	log, _ := testLogger(b)
	buf := openBuffer(b, buffer.Options{Log: log})
	local := &testLocal{}
	br, err := testNew(cfg, buf, "gw", local, log)
	if err != nil {
		b.Fatal(err)
	}
	local.intercept = br.Intercept
	stop := runBridge(b, br)
	defer stop()
	testpeer.Eventually(b, 15*time.Second, "edged connected", connected(br))
	proxy.Cut()
	testpeer.Eventually(b, 15*time.Second, "edged noticed the cut", func() bool { return !br.Stats().Connected })

	// One publisher, so that the whole outage is one ordered stream, as
	// with the Mosquitto bridge below.
	for i := range benchOutage {
		if err := local.Publish("v", fmt.Appendf(nil, "%06d", i), 1, false); err != nil {
			b.Fatal(err)
		}
	}
	settle(br)
	if n := buf.Stats().Messages; n != benchOutage {
		b.Fatalf("%d buffered, want %d", n, benchOutage)
	}
	return measure(b, col, fmt.Sprintf("bench/edged/%d/", round), proxy.Restore)
}

// mosquittoBridgeConf is the edge mosquitto's configuration: a bridge to
// addr with the same TLS, window and persistent session as edged's.
func mosquittoBridgeConf(u *upstream, addr, remote string, round int, extra string) string {
	return fmt.Sprintf(`max_queued_messages 0
max_inflight_messages %d
%s%s
connection up
address %s
topic v out 1 "" %s
cleansession false
remote_clientid mosq-bench-%d
bridge_protocol_version mqttv311
bridge_cafile %s
bridge_certfile %s
bridge_keyfile %s
restart_timeout 1
try_private false
notifications false
`, config.DefaultUplink(config.Uplink{}, "gw").Inflight, asRoot(), extra, addr, remote, round, u.ca.File, u.clientCP.CertFile, u.clientCP.KeyFile)
}

// BenchmarkMosquittoBridgeSIGKILL measures what a Mosquitto bridge with
// persistence on (its default autosave) still delivers when it is killed
// with messages queued for an unreachable upstream and started again: the
// store-and-forward case edged's buffer is built for.
//
//	go test -run '^$' -bench BenchmarkMosquittoBridgeSIGKILL -benchtime 1x ./bridge/
func BenchmarkMosquittoBridgeSIGKILL(b *testing.B) {
	const queued = 1000
	u := startUpstream(b, true)
	var delivered []float64
	round := 0
	for b.Loop() {
		round++
		proxy := testpeer.StartProxy(b, u.tlsAddr)
		remote := fmt.Sprintf("bench/kill/%d/", round)
		col := collectQoS(b, u.plain, remote+"#", 1)
		store := b.TempDir()
		conf := mosquittoBridgeConf(u, proxy.Addr, remote, round, fmt.Sprintf("persistence true\npersistence_location %s/\n", store))
		proxy.Cut()
		edge := testpeer.StartMosquitto(b, conf)
		pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + edge.Addr).
			SetClientID(fmt.Sprintf("kill-pub-%d", round)).SetAutoReconnect(false))
		if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect to the edge mosquitto: %v", tok.Error())
		}
		for i := range queued {
			if tok := pub.Publish("v", 1, false, fmt.Appendf(nil, "%06d", i)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				b.Fatalf("publish %d: %v", i, tok.Error())
			}
		}
		pub.Disconnect(0)
		edge.Stop() // SIGKILL, every message acknowledged to its publisher
		edge = testpeer.StartMosquitto(b, conf)
		proxy.Restore()
		// Wait for the bridge to be back (a probe goes through), then for
		// whatever it still had to arrive before the probe.
		probe := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + edge.Addr).
			SetClientID(fmt.Sprintf("kill-probe-%d", round)).SetAutoReconnect(false))
		if tok := probe.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect to the restarted edge mosquitto: %v", tok.Error())
		}
		probe.Publish("v", 1, false, "probe").WaitTimeout(10 * time.Second)
		probe.Disconnect(0)
		col.waitFor(b, 60*time.Second, "the probe after the restart", func(ms []mqttMessage) bool {
			for _, m := range ms {
				if string(m.Payload()) == "probe" {
					return true
				}
			}
			return false
		})
		n := col.distinct(remote+"v") - 1 // not the probe
		delivered = append(delivered, float64(n))
		b.Logf("round %d: Mosquitto bridge delivered %d of %d messages it had acknowledged before SIGKILL", round, n, queued)
		edge.Stop()
		col.c.Disconnect(0)
	}
	b.ReportMetric(median(delivered), "delivered")
	b.ReportMetric(queued, "acknowledged")
}

func drainMosquitto(b *testing.B, u *upstream, round int) drainResult {
	b.Helper()
	col := collectQoS(b, u.plain, fmt.Sprintf("bench/mosq/%d/#", round), 0)
	defer col.c.Disconnect(0)
	proxy := testpeer.StartProxy(b, u.tlsAddr)
	remote := fmt.Sprintf("bench/mosq/%d/", round)
	conf := mosquittoBridgeConf(u, proxy.Addr, remote, round, "")
	edge := testpeer.StartMosquitto(b, conf)
	defer edge.Stop()

	// Wait for the bridge to be up: a probe goes through.
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + edge.Addr).
		SetClientID(fmt.Sprintf("bench-pub-%d", round)).SetAutoReconnect(false).SetMaxResumePubInFlight(0))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect to the edge mosquitto: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	pub.Publish("v", 1, false, "probe").Wait()
	col.waitFor(b, 15*time.Second, "the probe through the mosquitto bridge", func(ms []mqttMessage) bool {
		for _, m := range ms {
			if m.Topic() == remote+"v" {
				return true
			}
		}
		return false
	})
	connects := strings.Count(edge.Log(), "Connecting bridge")
	proxy.Cut()
	testpeer.Eventually(b, 15*time.Second, "the mosquitto bridge noticed the cut", func() bool {
		return strings.Count(edge.Log(), "Connecting bridge") > connects
	})

	var wg sync.WaitGroup
	toks := make(chan mqtt.Token, 64) // a window like edged's
	var pubErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for tok := range toks {
			if tok.Wait(); tok.Error() != nil && pubErr == nil {
				pubErr = tok.Error()
			}
		}
	}()
	for i := range benchOutage {
		toks <- pub.Publish("v", 1, false, fmt.Appendf(nil, "%06d", i))
	}
	close(toks)
	wg.Wait()
	if pubErr != nil {
		b.Fatalf("publishing into the edge mosquitto: %v", pubErr)
	}
	return measure(b, col, remote, proxy.Restore)
}

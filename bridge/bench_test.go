package bridge

import (
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
// ratio = Mosquitto's drain time / edged's (≥ 1 means edged is as fast or faster).
//
//	go test -run '^$' -bench BenchmarkOutageDrain -benchtime 1x -count 3 ./bridge/
func BenchmarkOutageDrain(b *testing.B) {
	u := startUpstream(b, true)
	col := collectQoS(b, u.plain, "bench/#", 0)
	var edged, mosq, ratio, edgedTotal, mosqTotal []float64
	var edgedDups, mosqDups int
	round := 0
	for b.Loop() {
		round++
		e := drainEdged(b, u, col, round)
		m := drainMosquitto(b, u, col, round)
		edged = append(edged, e.drain.Seconds())
		mosq = append(mosq, m.drain.Seconds())
		edgedTotal = append(edgedTotal, e.total.Seconds())
		mosqTotal = append(mosqTotal, m.total.Seconds())
		ratio = append(ratio, m.drain.Seconds()/e.drain.Seconds())
		edgedDups += e.dups
		mosqDups += m.dups
		b.Logf("round %d: edged drain %v (restore to done %v, %d dups), mosquitto bridge drain %v (restore to done %v, %d dups), ratio %.2f",
			round, e.drain, e.total, e.dups, m.drain, m.total, m.dups, m.drain.Seconds()/e.drain.Seconds())
	}
	b.ReportMetric(mean(edged), "edged_drain_s")
	b.ReportMetric(mean(mosq), "mosquitto_drain_s")
	b.ReportMetric(mean(edgedTotal), "edged_restore_to_done_s")
	b.ReportMetric(mean(mosqTotal), "mosquitto_restore_to_done_s")
	b.ReportMetric(mean(ratio), "ratio")
	b.ReportMetric(float64(benchOutage)/mean(edged), "edged_msg/s")
	b.ReportMetric(float64(benchOutage)/mean(mosq), "mosquitto_msg/s")
	b.ReportMetric(float64(edgedDups), "edged_dups")
	b.ReportMetric(float64(mosqDups), "mosquitto_dups")
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

type drainResult struct {
	drain, total time.Duration
	dups         int
}

// measure restores the path and waits for every message under prefix.
func measure(b *testing.B, col *collector, prefix string, restore func()) drainResult {
	b.Helper()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
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
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if os.Getenv("BENCH_GAPS") != "" {
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		b.Logf("%s: test process CPU %v during the drain", prefix, cpu)
	}
	tl := count(col.all(), prefix+"v")
	if !tl.inOrder {
		b.Errorf("%s: out of order: %s", prefix, tl.firstOutOfOrder)
	}
	at := col.arrivals(prefix)
	var first time.Time
	for _, t := range at {
		if t.After(start) {
			first = t
			break
		}
	}
	if os.Getenv("BENCH_GAPS") != "" {
		var gaps []time.Duration
		for i := 1; i < len(at); i++ {
			if at[i-1].After(start) {
				gaps = append(gaps, at[i].Sub(at[i-1]))
			}
		}
		slices.Sort(gaps)
		slices.Reverse(gaps)
		b.Logf("%s: largest gaps %v", prefix, gaps[:min(8, len(gaps))])
		var hist []int
		for _, t := range at {
			if !t.After(first) && t != first {
				continue
			}
			i := int(t.Sub(first) / (20 * time.Millisecond))
			for len(hist) <= i {
				hist = append(hist, 0)
			}
			hist[i]++
		}
		b.Logf("%s: per 20ms %v", prefix, hist)
	}
	return drainResult{drain: at[len(at)-1].Sub(first), total: at[len(at)-1].Sub(start), dups: tl.dups}
}

func drainEdged(b *testing.B, u *upstream, col *collector, round int) drainResult {
	b.Helper()
	proxy := testpeer.StartProxy(b, u.tlsAddr)
	cfg := uplinkCfg(u, proxy.Addr)
	cfg.ClientID = fmt.Sprintf("edged-bench-%d", round)
	cfg.Forward = []config.Forward{{Local: "v", RemotePrefix: fmt.Sprintf("bench/edged/%d/", round)}}
	cfg.Downlink = nil
	if v, _ := strconv.Atoi(os.Getenv("BENCH_INFLIGHT")); v > 0 {
		cfg.Inflight = v
	}
	log, _ := testLogger(b)
	buf := openBuffer(b, buffer.Options{Log: log})
	local := &testLocal{}
	br, err := New(cfg, buf, "gw", local, log)
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
	if n := buf.Stats().Messages; n != benchOutage {
		b.Fatalf("%d buffered, want %d", n, benchOutage)
	}
	if f := os.Getenv("BENCH_PROF"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	return measure(b, col, fmt.Sprintf("bench/edged/%d/", round), proxy.Restore)
}

func drainMosquitto(b *testing.B, u *upstream, col *collector, round int) drainResult {
	b.Helper()
	proxy := testpeer.StartProxy(b, u.tlsAddr)
	remote := fmt.Sprintf("bench/mosq/%d/", round)
	conf := fmt.Sprintf(`max_queued_messages 0
max_inflight_messages %d
%s
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
`, defaultInflight, asRoot(), proxy.Addr, remote, round, u.ca.File, u.clientCP.CertFile, u.clientCP.KeyFile)
	edge := testpeer.StartMosquitto(b, conf)

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

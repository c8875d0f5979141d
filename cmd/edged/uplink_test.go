package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/internal/testpeer"
)

func uplinkConfig(t *testing.T, stateDir, listen, upstream string) string {
	return writeConfig(t, fmt.Sprintf(`
[gateway]
id = "gw"
state_dir = %q

[[broker.listener]]
address = %q

[uplink]
url = "mqtt://%s"
client_id = "edged-e2e"
max_backoff = "500ms"
forward = [ { local = "gw/#", remote_prefix = "up/", qos = 1 } ]
downlink = [ { remote = "up/gw/cmd/#", strip_prefix = "up/" } ]
`, stateDir, listen, upstream))
}

func localClient(t *testing.T, addr, id string) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to edged at %s: %v", addr, tok.Error())
	}
	return c
}

// TestUplinkLosesNothingWhenEdgedIsKilled publishes a numbered stream at
// QoS 1 into edged, kills edged with SIGKILL halfway, restarts it and checks
// at the upstream Mosquitto that every acknowledged message arrived, in
// order; duplicates are allowed and reported.
func TestUplinkLosesNothingWhenEdgedIsKilled(t *testing.T) {
	const total = 400
	up := testpeer.StartMosquitto(t, "")
	upHost, upPort, _ := net.SplitHostPort(up.Addr)
	sub := testpeer.StartMosquittoSub(t, "-h", upHost, "-p", upPort, "-q", "1", "-t", "up/gw/seq")

	state := t.TempDir()
	listen := testpeer.FreePort(t)
	cfg := uplinkConfig(t, state, listen, up.Addr)

	acked := 0 // highest number edged acknowledged
	publish := func(p *proc, killAt int) {
		c := localClient(t, listen, "publisher")
		defer c.Disconnect(0)
		var killed atomic.Bool
		for i := acked + 1; i <= total; i++ {
			if i == killAt {
				// Kill while the next publish is on the wire.
				go func() { killed.Store(true); _ = p.cmd.Process.Signal(syscall.SIGKILL) }()
			}
			tok := c.Publish("gw/seq", 1, false, strconv.Itoa(i))
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				if killed.Load() {
					return
				}
				t.Fatalf("publish %d: %v", i, tok.Error())
			}
			if killed.Load() {
				// Acknowledged before the kill landed, or by nobody: paho
				// may complete a token when the connection drops, so only
				// count it when the process was still alive to ack it.
				select {
				case <-p.done:
					return
				default:
				}
			}
			acked = i
		}
	}

	first := startEdged(t, nil, "run", "-c", cfg)
	testpeer.WaitListening(t, listen, 10*time.Second)
	publish(first, total/2)
	select {
	case <-first.done:
	case <-time.After(10 * time.Second):
		t.Fatal("edged survived SIGKILL")
	}
	if acked >= total {
		t.Fatalf("the kill came too late: all %d acknowledged", acked)
	}
	t.Logf("edged killed after %d acknowledged messages", acked)

	second := startEdged(t, nil, "run", "-c", cfg)
	testpeer.WaitListening(t, listen, 10*time.Second)
	publish(second, 0)
	if acked != total {
		t.Fatalf("only %d of %d acknowledged after the restart", acked, total)
	}

	seen := map[int]int{}
	last, dups := 0, 0
	for len(seen) < total {
		_, payload, _ := strings.Cut(sub.Next(t, 20*time.Second), " ")
		n, err := strconv.Atoi(payload)
		if err != nil {
			t.Fatalf("unexpected payload %q", payload)
		}
		if seen[n]++; seen[n] > 1 {
			dups++
			continue
		}
		if n < last {
			t.Fatalf("order broken: %d arrived after %d", n, last)
		}
		last = n
	}
	t.Logf("upstream received all %d messages in order, %d duplicates", total, dups)
	if code := second.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestDownlinkReachesLocalSubscribersAndIsNotSentBack sends a command from
// the upstream; it must reach a local subscriber, and although the forward
// rule gw/# matches its local topic, it must not come back up.
func TestDownlinkReachesLocalSubscribersAndIsNotSentBack(t *testing.T) {
	up := testpeer.StartMosquitto(t, "")
	upHost, upPort, _ := net.SplitHostPort(up.Addr)
	listen := testpeer.FreePort(t)
	p := startEdged(t, nil, "run", "-c", uplinkConfig(t, filepath.Join(t.TempDir(), "state"), listen, up.Addr))
	testpeer.WaitListening(t, listen, 10*time.Second)
	host, port, _ := net.SplitHostPort(listen)

	upSub := testpeer.StartMosquittoSub(t, "-h", upHost, "-p", upPort, "-t", "up/#", "-t", "gw/status")
	// The uplink is connected once its retained status says so.
	for {
		topic, payload, _ := strings.Cut(upSub.Next(t, 20*time.Second), " ")
		if topic == "gw/status" && payload == "online" {
			break
		}
	}
	localSub := testpeer.StartMosquittoSub(t, "-h", host, "-p", port, "-t", "gw/cmd/#")
	// A marker published locally afterwards proves the forward path works
	// and bounds the wait for a looped command.
	if out, err := testpeer.MosquittoPub(t, "-h", upHost, "-p", upPort, "-q", "1", "-t", "up/gw/cmd/relay/set", "-m", "on"); err != nil {
		t.Fatalf("mosquitto_pub upstream: %v %s", err, out)
	}
	if got := localSub.Next(t, 20*time.Second); got != "gw/cmd/relay/set on" {
		t.Fatalf("local subscriber got %q", got)
	}
	if out, err := testpeer.MosquittoPub(t, "-h", host, "-p", port, "-q", "1", "-t", "gw/marker", "-m", "m"); err != nil {
		t.Fatalf("mosquitto_pub local: %v %s", err, out)
	}
	// upSub sees the command once as it is published upstream; a second
	// copy before the marker would be edged sending it back.
	copies := 0
	for {
		topic, payload, _ := strings.Cut(upSub.Next(t, 20*time.Second), " ")
		if topic == "up/gw/cmd/relay/set" {
			if copies++; copies > 1 {
				t.Fatalf("the downlink command was forwarded back up: %s", payload)
			}
		}
		if topic == "up/gw/marker" {
			break
		}
	}
	stats := testpeer.StartMosquittoSub(t, "-h", host, "-p", port, "-t", "gw/edged/stats")
	if _, payload, _ := strings.Cut(stats.Next(t, 20*time.Second), " "); !strings.Contains(payload, `"uplink":{`) ||
		!strings.Contains(payload, `"dead_letters":0`) || !strings.Contains(payload, `"unforwardable":0`) {
		t.Errorf("the stats topic lacks the uplink's counters: %s", payload)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestSIGTERMWithASilentUplinkExitsCleanly stops edged while its uplink is
// blackholed with publishes stuck on the way: edged must exit 0 within its
// stop limit, not 1 after waiting for a network write to time out.
func TestSIGTERMWithASilentUplinkExitsCleanly(t *testing.T) {
	up := testpeer.StartMosquitto(t, "")
	proxy := testpeer.StartProxy(t, up.Addr)
	upHost, upPort, _ := net.SplitHostPort(up.Addr)
	upSub := testpeer.StartMosquittoSub(t, "-h", upHost, "-p", upPort, "-t", "gw/status")
	listen := testpeer.FreePort(t)
	cfg := writeConfig(t, fmt.Sprintf(`
[gateway]
id = "gw"
state_dir = %q

[[broker.listener]]
address = %q

[uplink]
url = "mqtt://%s"
keepalive = "2m"
ack_timeout = "1m"
forward = [ { local = "gw/#", remote_prefix = "up/" } ]
`, t.TempDir(), listen, proxy.Addr))
	p := startEdged(t, nil, "run", "-c", cfg)
	testpeer.WaitListening(t, listen, 10*time.Second)
	for upSub.Next(t, 20*time.Second) != "gw/status online" {
	}
	proxy.Blackhole()
	c := localClient(t, listen, "publisher")
	defer c.Disconnect(0)
	payload := strings.Repeat("x", 128<<10)
	for i := range 200 { // 25 MiB: more than the socket buffers on the way hold
		tok := c.Publish(fmt.Sprintf("gw/big/%d", i), 1, false, payload)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; log:\n%s", code, p.output())
	}
}

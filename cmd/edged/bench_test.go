package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/internal/testpeer"
)

// BenchmarkDaemonBuffering runs the built edged with an uplink that cannot
// connect, publishes 100 000 QoS 1 messages of 64 bytes into it through its
// broker (each acknowledged only once committed to the buffer), and reports
// the durable enqueue rate through the whole daemon and its peak RSS.
//
//	go test -run '^$' -bench DaemonBuffering -benchtime 1x ./cmd/edged
func BenchmarkDaemonBuffering(b *testing.B) {
	const total, window = 100_000, 256
	for _, durability := range []string{"full", "power-loss-unsafe"} {
		b.Run(durability, func(b *testing.B) {
			for range b.N {
				dead := testpeer.FreePort(b) // nothing listens: the uplink stays down
				listen := testpeer.FreePort(b)
				cfgPath := fmt.Sprintf("%s/edged.toml", b.TempDir())
				cfg := fmt.Sprintf(`
[gateway]
id = "gw"
state_dir = %q
[[broker.listener]]
address = %q
[uplink]
url = "mqtt://%s"
forward = [ { local = "gw/#", qos = 1 } ]
[buffer]
durability = %q
`, b.TempDir(), listen, dead, durability)
				if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
					b.Fatal(err)
				}
				p := startEdgedB(b, cfgPath)
				testpeer.WaitListening(b, listen, 10*time.Second)

				o := mqtt.NewClientOptions().AddBroker("tcp://" + listen).SetClientID("bench").
					SetAutoReconnect(false).SetMaxResumePubInFlight(window)
				c := mqtt.NewClient(o)
				if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					b.Fatalf("connect: %v", tok.Error())
				}
				payload := strings.Repeat("x", 64)
				toks := make(chan mqtt.Token, window)
				errs := make(chan error, 1)
				go func() {
					for tok := range toks {
						if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
							select {
							case errs <- fmt.Errorf("publish: %v", tok.Error()):
							default:
							}
						}
					}
					close(errs)
				}()
				start := time.Now()
				for i := range total {
					toks <- c.Publish("gw/bench/"+strconv.Itoa(i%10), 1, false, payload)
				}
				close(toks)
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
				elapsed := time.Since(start)
				c.Disconnect(100)
				rss := vmHWM(b, p.Pid)
				_ = p.Signal(syscall.SIGTERM)
				_, _ = p.Wait()
				b.ReportMetric(float64(total)/elapsed.Seconds(), "enqueued-msgs/s")
				b.ReportMetric(float64(rss)/1024, "peak-RSS-MiB")
			}
		})
	}
}

func startEdgedB(b *testing.B, cfg string) *os.Process {
	b.Helper()
	p, err := os.StartProcess(edgedBin, []string{edgedBin, "run", "-c", cfg}, &os.ProcAttr{Files: []*os.File{nil, nil, nil}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Kill(); _, _ = p.Wait() })
	return p
}

// vmHWM is a process's peak resident set size in KiB.
func vmHWM(b *testing.B, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

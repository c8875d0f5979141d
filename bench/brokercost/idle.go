package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// idleKinds are what the idle measurement compares: Mosquitto with no
// clients, edged's broker with no clients and no devices, and edged demo,
// which also polls its simulated devices (in the same process) once a
// second. The demo's figure less edged's is the polling itself.
var idleKinds = []string{"mosquitto", "edged", "demo"}

// idleSettle is how long a broker runs before an idle measurement starts:
// its start-up (opening its files, the first polls) is not idling.
const idleSettle = 3 * time.Second

// idleResult is what one idle run measured, per minute.
type idleResult struct {
	cpuMs   float64 // CPU milliseconds, all threads (schedstat)
	wakeups float64 // context switches, all threads: each a wake-up or a preemption
}

// runIdle measures each of idleKinds, no client connected, for dur per
// round, alternating the order, and prints a table of medians and ranges.
func runIdle(edged string, rounds int, oneCore bool, dur time.Duration) error {
	results := map[string][]idleResult{}
	for r := range rounds {
		k := r % len(idleKinds)
		order := slices.Concat(idleKinds[k:], idleKinds[:k])
		for _, kind := range order {
			res, err := idleOnce(kind, edged, oneCore, dur)
			if err != nil {
				return fmt.Errorf("idle round %d, %s: %w", r+1, kind, err)
			}
			fmt.Fprintf(os.Stderr, "idle round %d  %-9s  %7.1f CPU ms/min  %7.0f wake-ups/min\n", r+1, kind, res.cpuMs, res.wakeups)
			results[kind] = append(results[kind], res)
		}
	}
	fmt.Printf("\nIdle: no client connected, %s per round, %d rounds alternating the order; per minute, median [min - max]\n\n", dur, rounds)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "broker\tCPU ms per minute\twake-ups per minute\t\n")
	names := map[string]string{"mosquitto": "Mosquitto 2.0.11", "edged": "edged run (broker, no devices)", "demo": "edged demo (2 simulated devices polled)"}
	for _, kind := range idleKinds {
		var cpu, wake []float64
		for _, r := range results[kind] {
			cpu, wake = append(cpu, r.cpuMs), append(wake, r.wakeups)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", names[kind], spread(cpu, "%.1f"), spread(wake, "%.0f"))
	}
	var cpuRatio, wakeRatio []float64
	for i := range min(len(results["edged"]), len(results["mosquitto"])) {
		e, m := results["edged"][i], results["mosquitto"][i]
		if m.cpuMs > 0 {
			cpuRatio = append(cpuRatio, e.cpuMs/m.cpuMs)
		}
		if m.wakeups > 0 {
			wakeRatio = append(wakeRatio, e.wakeups/m.wakeups)
		}
	}
	fmt.Fprintf(tw, "edged run / Mosquitto\t%s\t%s\t\n", spread(cpuRatio, "%.2fx"), spread(wakeRatio, "%.2fx"))
	return tw.Flush()
}

func idleOnce(kind, edged string, oneCore bool, dur time.Duration) (idleResult, error) {
	p, err := startBroker(kind, edged, oneCore)
	if err != nil {
		return idleResult{}, err
	}
	defer p.stop()
	time.Sleep(idleSettle)
	cpu0, err := p.cpuNanos()
	if err != nil {
		return idleResult{}, err
	}
	sw0, _ := p.switches()
	time.Sleep(dur)
	cpu1, err := p.cpuNanos()
	if err != nil {
		return idleResult{}, err
	}
	sw1, _ := p.switches()
	perMin := time.Minute.Seconds() / dur.Seconds()
	return idleResult{cpuMs: float64(cpu1-cpu0) / 1e6 * perMin, wakeups: float64(sw1-sw0) * perMin}, nil
}

// cpuNanos is the CPU time of the broker's threads so far, in nanoseconds
// (/proc/PID/task/TID/schedstat): finer than /proc/PID/stat's 10 ms ticks,
// which an idle broker uses a handful of in a minute.
func (p *brokerProc) cpuNanos() (int64, error) {
	var n int64
	err := p.eachThread("schedstat", func(b []byte) error {
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return nil
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return fmt.Errorf("schedstat: %w", err)
		}
		n += v
		return nil
	})
	return n, err
}

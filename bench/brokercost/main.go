// Command brokercost measures what each message costs edged's broker next to
// Mosquitto's, in one run (make bench-broker). Both brokers run as processes
// of their own on their defaults (edged as `edged run` with a minimal config);
// the same clients load both: mosquitto_sub subscribes, paho publishes. Rounds
// alternate the brokers, and the table gives edged / Mosquitto ratios of the
// broker's CPU seconds per 100k messages (/proc/PID/stat), peak RSS (VmHWM),
// the fraction of messages delivered and the throughput: medians and ranges.
// Then each broker idles with no client connected, beside edged demo (its
// simulated devices polled), for CPU time and wake-ups per minute.
//
//	go run ./bench/brokercost -edged ./edged [-rounds 5] [-one-core]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

var loads = []load{
	{name: "10 pub -> 1 sub, 10k msg/s, QoS 0", pubs: 10, subs: 1, qos: 0, rate: 10_000},
	{name: "10 pub -> 1 sub, 10k msg/s, QoS 1", pubs: 10, subs: 1, qos: 1, rate: 10_000},
	{name: "200 clients x 10 msg/s, QoS 0", pubs: 200, subs: 1, qos: 0, rate: 2_000},
	{name: "200 clients x 10 msg/s, QoS 1", pubs: 200, subs: 1, qos: 1, rate: 2_000},
	{name: "burst: 10 pub as fast as they can, QoS 0", pubs: 10, subs: 1, qos: 0, burst: 10_000},
	{name: "burst: 10 pub as fast as they can, QoS 1", pubs: 10, subs: 1, qos: 1, burst: 10_000},
	{name: "1 pub -> 20 sub, QoS 0", pubs: 1, subs: 20, qos: 0, burst: 5_000},
	{name: "1 pub -> 20 sub, QoS 1", pubs: 1, subs: 20, qos: 1, burst: 5_000},
}

func main() {
	edged := flag.String("edged", "./edged", "the built edged `binary`")
	vs := flag.String("vs", "", "compare with this other edged `binary` (a baseline build) instead of Mosquitto")
	rounds := flag.Int("rounds", 5, "rounds; each runs every load on both brokers, alternating which goes first")
	oneCore := flag.Bool("one-core", false, "pin both brokers to CPU 0 (taskset -c 0), edged with GOMAXPROCS=1")
	dur := flag.Duration("dur", 3*time.Second, "how long a steady load publishes")
	only := flag.String("load", "", "run only the loads whose name contains this (\"idle\": only the idle measurement)")
	profile := flag.String("profile", "", "instead of comparing, profile edged's broker (run alone in a process of its own) under each load into `dir`")
	serveAddr := flag.String("serve", "", "run edged's broker alone at `address` (used by -profile)")
	cpuFile := flag.String("cpuprofile", "", "with -serve: CPU profile `file`")
	memFile := flag.String("memprofile", "", "with -serve: allocations profile `file`")
	idle := flag.Duration("idle", 30*time.Second, "also measure each broker idle (no client) this long per round, and edged demo beside them; 0: not")
	flag.Parse()
	if *serveAddr != "" {
		if err := serve(*serveAddr, *cpuFile, *memFile); err != nil {
			fmt.Fprintln(os.Stderr, "brokercost -serve:", err)
			os.Exit(1)
		}
		return
	}
	if *profile != "" {
		self, err := os.Executable()
		if err == nil {
			err = profileAll(self, *profile, choose(*only), *dur)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "brokercost -profile:", err)
			os.Exit(1)
		}
		return
	}
	for _, bin := range []*string{edged, vs} {
		if abs, err := filepath.Abs(*bin); err == nil && *bin != "" {
			*bin = abs // brokers run in a directory of their own
		}
	}
	if len(choose(*only)) > 0 {
		if err := runAll(*edged, *vs, *rounds, *oneCore, *dur, *only); err != nil {
			fmt.Fprintln(os.Stderr, "brokercost:", err)
			os.Exit(1)
		}
	}
	if *idle > 0 && *vs == "" && (*only == "" || *only == "idle") {
		if err := runIdle(*edged, *rounds, *oneCore, *idle); err != nil {
			fmt.Fprintln(os.Stderr, "brokercost:", err)
			os.Exit(1)
		}
	}
}

// choose returns the loads whose name contains only.
func choose(only string) []load {
	var chosen []load
	for _, l := range loads {
		if strings.Contains(l.name, only) {
			chosen = append(chosen, l)
		}
	}
	return chosen
}

func runAll(edged, vs string, rounds int, oneCore bool, dur time.Duration, only string) error {
	chosen := choose(only)
	brokers := []string{"edged", "mosquitto"}
	if vs != "" {
		brokers[1] = "baseline"
	}
	results := map[string]map[string][]result{} // load -> broker -> rounds
	for _, l := range chosen {
		results[l.name] = map[string][]result{}
	}
	for r := range rounds {
		order := brokers
		if r%2 == 1 {
			order = []string{brokers[1], brokers[0]}
		}
		for _, l := range chosen {
			for _, kind := range order {
				bin := edged
				if kind == "baseline" {
					bin = vs
				}
				res, err := runOnce(kind, bin, oneCore, l, dur)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", r+1, l.name, kind, err)
				}
				fmt.Fprintf(os.Stderr, "round %d  %-42s %-9s cpu %6.3fs/100k (%2.0f%% sys)  rss %5.1fMB (anon %4.1fMB)  delivered %6.2f%%  %8.0f msg/s  per msg: %.2f switches, %.2f reads, %.2f writes\n",
					r+1, l.name, kind, res.cpuPer100k(), 100*res.cpuSys/max(res.cpu, 0.01), float64(res.rss)/(1<<20), float64(res.anon)/(1<<20), 100*res.fraction(), res.throughput(), res.perMsg(res.switches), res.perMsg(res.reads), res.perMsg(res.writes))
				results[l.name][kind] = append(results[l.name][kind], res)
			}
		}
	}
	printTable(os.Stdout, chosen, brokers[1], results, rounds, oneCore)
	return nil
}

func runOnce(kind, bin string, oneCore bool, l load, dur time.Duration) (result, error) {
	if kind == "baseline" {
		kind = "edged"
	}
	p, err := startBroker(kind, bin, oneCore)
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	return run(p, l, dur)
}

// printTable prints, per load, the edged / Mosquitto ratio of each round's
// figures: median [min - max].
func printTable(w *os.File, chosen []load, other string, results map[string]map[string][]result, rounds int, oneCore bool) {
	title := map[string]string{"mosquitto": "Mosquitto", "baseline": "baseline"}[other]
	cores := "both brokers free to use every core"
	if oneCore {
		cores = "both brokers pinned to CPU 0, edged with GOMAXPROCS=1"
	}
	against := "Mosquitto 2.0.11"
	if other == "baseline" {
		against = "baseline edged (-vs)"
	}
	fmt.Fprintf(w, "\nedged / %s, %d alternating rounds, %s; median [min - max] of the per-round ratios\n\n", against, rounds, cores)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "load\tCPU s per 100k msgs\tpeak RSS\tanonymous RSS (end)\tdelivered\tthroughput\tcontext switches per msg\tread+write syscalls per msg\tedged CPU s/100k\t%[1]s CPU s/100k\tedged delivered\t%[1]s delivered\t\n", title)
	for _, l := range chosen {
		e, m := results[l.name]["edged"], results[l.name][other]
		ratio := func(f func(result) float64) string {
			var rs []float64
			for i := range min(len(e), len(m)) {
				if d := f(m[i]); d > 0 {
					rs = append(rs, f(e[i])/d)
				}
			}
			return spread(rs, "%.2fx")
		}
		abs := func(rs []result, f func(result) float64, format string) string {
			var vs []float64
			for _, r := range rs {
				vs = append(vs, f(r))
			}
			return spread(vs, format)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.name,
			ratio(result.cpuPer100k),
			ratio(func(r result) float64 { return float64(r.rss) }),
			ratio(func(r result) float64 { return float64(r.anon) }),
			ratio(result.fraction),
			ratio(result.throughput),
			ratio(func(r result) float64 { return r.perMsg(r.switches) }),
			ratio(func(r result) float64 { return r.perMsg(r.reads + r.writes) }),
			abs(e, result.cpuPer100k, "%.3f"), abs(m, result.cpuPer100k, "%.3f"),
			abs(e, func(r result) float64 { return 100 * r.fraction() }, "%.1f%%"),
			abs(m, func(r result) float64 { return 100 * r.fraction() }, "%.1f%%"))
	}
	_ = tw.Flush()
}

// spread formats the median and range of vs.
func spread(vs []float64, format string) string {
	if len(vs) == 0 {
		return "-"
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return fmt.Sprintf(format+" ["+format+" - "+format+"]", med, s[0], s[len(s)-1])
}

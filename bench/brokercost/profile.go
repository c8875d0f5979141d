package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/edged/edged/broker"
	"github.com/edged/edged/config"
)

// serve runs edged's broker alone in this process, on its defaults with one
// tcp listener at addr, profiling CPU into cpuFile and writing the
// allocations profile to memFile when it is told to stop (SIGTERM), and
// the heap in use to memFile.inuse when told SIGUSR1. The
// profile runs of the harness start it as their broker (-profile).
func serve(addr, cpuFile, memFile string) error {
	dir, err := os.MkdirTemp("", "brokercost-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := broker.New(config.DefaultBroker(config.Broker{Listeners: []config.Listener{{Type: "tcp", Address: addr}}}), dir, nil)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// SIGUSR1: the heap in use now, while the load's clients are connected.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			if h, err := os.Create(memFile + ".inuse"); err == nil {
				_ = pprof.Lookup("heap").WriteTo(h, 0)
				_ = h.Close()
			}
			// Then again after two collections, which shrink stacks
			// grown by a moment's deep call and free the garbage.
			var out []byte
			for i := range 2 {
				if i == 1 {
					runtime.GC()
					runtime.GC()
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				out = fmt.Appendf(out,
					"heap in use %d KiB, heap idle not released %d KiB, stacks %d KiB, goroutines %d, runtime other %d KiB, collections %d\n",
					ms.HeapInuse>>10, (ms.HeapIdle-ms.HeapReleased)>>10, ms.StackInuse>>10, runtime.NumGoroutine(),
					(ms.MSpanInuse+ms.MCacheInuse+ms.BuckHashSys+ms.GCSys+ms.OtherSys)>>10, ms.NumGC)
			}
			_ = os.WriteFile(memFile+".memstats", out, 0o644)
		}
	}()
	f, err := os.Create(cpuFile)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	err = b.Run(ctx)
	pprof.StopCPUProfile()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	m, merr := os.Create(memFile)
	if merr != nil {
		return merr
	}
	defer m.Close()
	if err := pprof.Lookup("allocs").WriteTo(m, 0); err != nil {
		return err
	}
	return err
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// profileAll runs each chosen load once against the in-process broker (see
// serve) and leaves dir/<load>.cpu.pprof and dir/<load>.allocs.pprof.
func profileAll(self, dir string, chosen []load, dur time.Duration) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for _, l := range chosen {
		base := filepath.Join(dir, unsafeName.ReplaceAllString(l.name, "_"))
		p, err := startServe(self, base+".cpu.pprof", base+".allocs.pprof")
		if err != nil {
			return err
		}
		// Halfway through a steady load every client is connected.
		snap := time.AfterFunc(2*time.Second+dur/2, func() { _ = p.cmd.Process.Signal(syscall.SIGUSR1) })
		res, err := run(p, l, dur)
		snap.Stop()
		p.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
		fmt.Fprintf(os.Stderr, "profiled %-42s cpu %6.3fs/100k  delivered %6.2f%%  -> %s.*.pprof\n", l.name, res.cpuPer100k(), 100*res.fraction(), base)
	}
	return nil
}

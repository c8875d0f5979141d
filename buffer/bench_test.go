package buffer

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edged/edged/telemetry"
)

// appendsPerOp is how many messages one benchmark iteration appends, so that
// even `-benchtime 1x` (make bench) measures a rate over a real stream.
const appendsPerOp = 2000

// BenchmarkAppend measures durable enqueue: every counted message had its
// Append return nil, i.e. was committed. Concurrent appenders share commits.
func BenchmarkAppend(b *testing.B) {
	payload := []byte(strings.Repeat("x", 64))
	for _, d := range []Durability{Full, PowerLossUnsafe} {
		for _, appenders := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("durability=%s/appenders=%d", d, appenders), func(b *testing.B) {
				buf := openT(b, Options{Durability: d})
				total := int64(b.N) * appendsPerOp
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for g := range appenders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						m := telemetry.Message{Topic: fmt.Sprintf("pi-01/meter%d/voltage", g), Payload: payload, QoS: 1}
						for next.Add(1) <= total {
							if err := buf.Append(context.Background(), m); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				st := buf.Stats()
				b.ReportMetric(float64(total)/elapsed.Seconds(), "msgs/s")
				b.ReportMetric(float64(st.Appended)/float64(max(st.Commits, 1)), "msgs/commit")
			})
		}
	}
}

// BenchmarkBufferedMemory reports the peak RSS of a fresh process that has
// buffered 100 000 messages with 64-byte payloads from 100 appenders. A
// separate process keeps the figure clean of the benchmarks run before it.
func BenchmarkBufferedMemory(b *testing.B) {
	for range b.N {
		path := filepath.Join(b.TempDir(), "buffer.db")
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=memory", helperPathEnv+"="+path, helperDurEnv+"=power-loss-unsafe")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("memory helper: %v", err)
		}
		vals := map[string]int64{}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			var k string
			var v int64
			if _, err := fmt.Sscanf(sc.Text(), "%s %d", &k, &v); err == nil {
				vals[k] = v
			}
		}
		if vals["messages"] != 100000 {
			b.Fatalf("helper buffered %d messages, want 100000 (output %q)", vals["messages"], out)
		}
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(vals["vmhwm_kib"])/1024, "peak_rss_MiB")
		b.ReportMetric(float64(vals["vmrss_kib"])/1024, "rss_MiB")
		b.ReportMetric(float64(fi.Size())/(1<<20), "db_MiB")
		b.ReportMetric(float64(vals["commits"]), "commits")
	}
}

// BenchmarkDrain measures the buffer's side of draining: Read a window of 64,
// Ack it, repeat, over 10 000 stored messages (no network), so the bridge's
// drain time can be split into buffer and upstream.
func BenchmarkDrain(b *testing.B) {
	const stored, window = 10000, 64
	payload := []byte(strings.Repeat("x", 64))
	for _, d := range []Durability{Full, PowerLossUnsafe} {
		b.Run("durability="+d.String(), func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				buf, err := Open(Options{Path: filepath.Join(b.TempDir(), "buffer.db"), Durability: d})
				if err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				for g := range 100 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						m := telemetry.Message{Topic: fmt.Sprintf("pi-01/meter%d/voltage", g), Payload: payload, QoS: 1}
						for range stored / 100 {
							if err := buf.Append(context.Background(), m); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StartTimer()
				start := time.Now()
				after, n := int64(0), 0
				for n < stored {
					es, err := buf.Read(after, window)
					if err != nil || len(es) == 0 {
						b.Fatalf("Read after %d: %d entries, %v", after, len(es), err)
					}
					seqs := make([]int64, len(es))
					for i, e := range es {
						seqs[i] = e.Seq
					}
					if err := buf.Ack(seqs...); err != nil {
						b.Fatal(err)
					}
					after, n = seqs[len(seqs)-1], n+len(es)
				}
				elapsed += time.Since(start)
				b.StopTimer()
				buf.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*stored)/elapsed.Seconds(), "msgs/s")
		})
	}
}

package modbus

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/config"
	"github.com/edged/edged/config/configtest"
	"github.com/edged/edged/internal/testpeer"
)

// The benchmarks poll the Eastron SDM120 profile plus a few holding
// registers and coils (a typical meter-and-relay device) from pymodbus
// over Modbus TCP on loopback:
//
//	go test -run '^$' -bench . -benchtime 1x ./adapters/modbus/
//
// BenchmarkPlan reports requests and bytes per poll cycle for edged's plan,
// for one request per point, and the lower bound (every point of a table
// in ceil(registers/125) requests carrying only the points' registers).
// BenchmarkReadRate reports reads per second of edged's client and of
// pymodbus's own synchronous client doing the same reads (the plan's
// requests, round-robin, one at a time) against the same pymodbus server in
// the same run, taking turns over five rounds; each reports its median.

func benchPoints(t testing.TB) []config.Point {
	p := loadProfile(t, "eastron-sdm120").Points
	return append(p,
		config.Point{Name: "setpoint", Table: "holding", Address: 0, Type: "uint16", Scale: ptr(0.1)},
		config.Point{Name: "mode", Table: "holding", Address: 1, Type: "uint16"},
		config.Point{Name: "limit", Table: "holding", Address: 4, Type: "float32"},
		config.Point{Name: "relay1", Table: "coil", Address: 0, Type: "bool"},
		config.Point{Name: "relay2", Table: "coil", Address: 3, Type: "bool"},
	)
}

// benchDevice serves every register and coil the points touch (and the
// holes between them, so merged reads are accepted).
func benchDevice(points []config.Point) map[string]map[string]map[string]any {
	tables := map[string]map[string]any{"holding": {}, "input": {}, "coil": {}, "discrete": {}}
	for _, p := range points {
		n := 1
		if typ, err := parseType(p.Type); err == nil {
			n = typ.words(p.Length)
		}
		for a := max(0, p.Address-12); a < p.Address+n+12; a++ {
			if p.Table == "coil" || p.Table == "discrete" {
				tables[p.Table][strconv.Itoa(a)] = a%2 == 0
			} else {
				tables[p.Table][strconv.Itoa(a)] = a
			}
		}
	}
	return map[string]map[string]map[string]any{"1": tables}
}

// lowerBound is the fewest requests and bytes any plan could use: per
// table, the points' registers (or bits) packed into full-size requests.
func lowerBound(points []*point, overhead int) (requests, bytes int) {
	regs := map[Table]int{}
	for _, p := range points {
		regs[p.table] += p.span()
	}
	for t, n := range regs {
		limit := maxReadRegs
		if t.isBits() {
			limit = maxReadBits
		}
		r := (n + limit - 1) / limit
		requests += r
		data := 2 * n
		if t.isBits() {
			data = (n + 7) / 8
		}
		bytes += r*(5+2+2*overhead) + data
	}
	return requests, bytes
}

func BenchmarkPlan(b *testing.B) {
	points := benchPoints(b)
	dev := testpeer.StartPyModbus(b, testpeer.PyModbusOptions{Script: deviceScript, Map: benchDevice(points)})
	for _, mode := range []struct {
		name   string
		maxGap int
	}{{"edged plan", 10}, {"one request per point", -1}} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := config.Bus{Name: "b", Address: dev.Addr, Devices: []config.Device{{Name: "m", Unit: 1, Points: points, MaxGap: ptr(max(mode.maxGap, 0))}}}
			bus, err := New(configtest.Bus(b, cfg), "gw", testpeer.NewRecorder(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			d := bus.devices[0]
			if mode.maxGap < 0 {
				d.reads = nil
				for _, p := range d.points {
					d.reads = append(d.reads, &read{table: p.table, start: p.addr, count: uint16(p.span()), points: []*point{p}})
				}
			}
			l := newLink(bus)
			defer l.closeAll()
			before := dev.Stats(b).Total
			for i := 0; i < b.N; i++ {
				bus.pollDevice(context.Background(), l, d)
			}
			s := bus.Stats().Devices[0]
			atDevice := dev.Stats(b).Total - before
			minReq, minBytes := lowerBound(d.points, l.overhead)
			b.ReportMetric(float64(atDevice)/float64(b.N), "requests/cycle")
			b.ReportMetric(float64(s.BytesOut+s.BytesIn)/float64(b.N), "bytes/cycle")
			b.ReportMetric(float64(minReq), "min-requests/cycle")
			b.ReportMetric(float64(minBytes), "min-bytes/cycle")
			b.ReportMetric(float64(len(d.points)), "points")
		})
	}
}

func BenchmarkReadRate(b *testing.B) {
	points := benchPoints(b)
	dev := testpeer.StartPyModbus(b, testpeer.PyModbusOptions{Script: deviceScript, Map: benchDevice(points)})
	bus, err := New(configtest.Bus(b, config.Bus{Name: "b", Address: dev.Addr, Devices: []config.Device{{Name: "m", Unit: 1, Points: points}}}), "gw", testpeer.NewRecorder(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	d := bus.devices[0]
	const reads = 1000
	var args []string
	fc := map[Table]int{Coil: 1, Discrete: 2, Holding: 3, Input: 4}
	for _, r := range d.reads {
		args = append(args, "--read", fmt.Sprintf("%d:%d:%d", fc[r.table], r.start, r.count))
	}
	// The two clients take turns in rounds so that load from elsewhere on
	// the machine falls on both; each side reports its median round.
	const rounds = 5
	var edged, pym []float64
	l := newLink(bus)
	defer l.closeAll()
	py := testpeer.NeedPyModbus(b)
	for round := 0; round < rounds; round++ {
		start := time.Now()
		for i := 0; i < b.N*reads; i++ {
			r := d.reads[i%len(d.reads)]
			if _, _, class, err := bus.readOnce(l, d, r); class != classOK {
				b.Fatalf("read %s: %v", r, err)
			}
		}
		edged = append(edged, float64(b.N*reads)/time.Since(start).Seconds())

		cmd := exec.Command(py, append([]string{"testdata/pymodbus_client.py", "--port", strconv.Itoa(testpeer.Port(b, dev.Addr)),
			"--count", strconv.Itoa(b.N * reads)}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("pymodbus client: %v: %s", err, out)
		}
		var n int
		var secs, rate float64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "reads=%d seconds=%f rate=%f", &n, &secs, &rate); err != nil {
			b.Fatalf("pymodbus client said %q: %v", out, err)
		}
		pym = append(pym, rate)
	}
	b.ReportMetric(median(edged), "edged-reads/s")
	b.ReportMetric(median(pym), "pymodbus-reads/s")
	b.ReportMetric(float64(reads*b.N), "reads/round")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

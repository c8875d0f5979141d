package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edged/edged/adapters/modbus"
	"github.com/edged/edged/config"
	"github.com/edged/edged/telemetry"
)

func cmdPoll(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("poll", "[-c FILE] [--device NAME] [--once]", `
Poll the config's Modbus devices and print what edged would publish: topic,
value, unit and quality of every point. No broker and no uplink are
started, so it runs beside the service against a Modbus TCP device (a
serial port can have one user: stop the service first).

With --once it polls every device once, prints one line per point and
exits 1 if any point failed. Without it, it keeps polling at each device's
interval and prints every publish as it happens, until Ctrl-C.`, stderr)
	path := configFlag(fs)
	device := fs.String("device", "", "poll only this [[modbus.device]] `name`")
	once := fs.Bool("once", false, "poll every device once, print a table and exit")
	if code := parse(fs, args, 0); code >= 0 {
		return code
	}
	cfg := loadConfig(*path, stderr)
	if cfg == nil {
		return exitError
	}
	buses, err := pollBuses(cfg, *device)
	if err != nil {
		fmt.Fprintf(stderr, "edged poll: %v\n", err)
		return exitError
	}
	if *device == "" {
		var skipped []string
		for _, s := range cfg.Serial {
			skipped = append(skipped, "[[serial]] "+s.Name)
		}
		for _, a := range cfg.AT {
			skipped = append(skipped, "[[at]] "+a.Name)
		}
		if len(skipped) > 0 {
			fmt.Fprintf(stderr, "not polled (they talk when they like; watch them under edged run): %s\n", strings.Join(skipped, ", "))
		}
	}
	out := &pollPrinter{last: map[string]pollReading{}}
	if !*once {
		out.live = stdout
	}
	var parts []*modbus.Bus
	log := newLogger(stderr, "warn", "text", false)
	for _, bc := range buses {
		b, err := modbus.New(bc, cfg.Gateway.ID, out, nil, log)
		if err != nil {
			fmt.Fprintf(stderr, "edged poll: modbus bus %q: %v\n", bc.Name, err)
			return exitError
		}
		parts = append(parts, b)
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, b := range parts {
		if *once {
			g.Go(func() error { return b.PollOnce(gctx) })
		} else {
			g.Go(func() error { return b.Run(gctx) })
		}
	}
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "edged poll: %v\n", err)
		return exitError
	}
	if !*once {
		return exitOK
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "edged poll: interrupted")
		return exitError
	}
	return out.table(stdout, cfg.Gateway.ID, buses)
}

// pollBuses is the config's buses with only the named device (all when
// name is empty) and JSON payloads, which the printer reads.
func pollBuses(cfg *config.Config, name string) ([]config.Bus, error) {
	var buses []config.Bus
	var names []string
	for _, b := range cfg.Modbus {
		var keep []config.Device
		for _, d := range b.Devices {
			names = append(names, d.Name)
			if name == "" || d.Name == name {
				d.Payload = "json"
				keep = append(keep, d)
			}
		}
		if len(keep) > 0 {
			b.Devices = keep
			buses = append(buses, b)
		}
	}
	if len(buses) > 0 {
		return buses, nil
	}
	if name == "" {
		return nil, fmt.Errorf("%s has no [[modbus.device]] to poll", cfg.File)
	}
	for _, s := range cfg.Serial {
		if s.Name == name {
			return nil, fmt.Errorf("%q is a [[serial]] device, which talks when it likes: watch it under edged run with mosquitto_sub", name)
		}
	}
	for _, a := range cfg.AT {
		if a.Name == name {
			return nil, fmt.Errorf("%q is an [[at]] module: its queries run under edged run; try a command with mosquitto_pub on %s/%s/at", name, cfg.Gateway.ID, name)
		}
	}
	return nil, fmt.Errorf("%s has no [[modbus.device]] %q (it has %s)", cfg.File, name, strings.Join(names, ", "))
}

// pollReading is one published payload, as the printer shows it.
type pollReading struct {
	Value   json.RawMessage `json:"value"`
	Unit    string          `json:"unit"`
	Quality string          `json:"quality"`
	Error   string          `json:"error"`
}

// pollPrinter is the buses' Publisher: it keeps the last payload of every
// topic and, when live is set, prints each as it comes.
type pollPrinter struct {
	live io.Writer
	mu   sync.Mutex
	last map[string]pollReading
}

func (p *pollPrinter) Publish(topic string, payload []byte, _ byte, _ bool) error {
	var r pollReading
	if json.Unmarshal(payload, &r) != nil || (r.Value == nil && r.Quality == "") {
		r = pollReading{Value: json.RawMessage(payload)} // a status: online, offline
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[topic] = r
	if p.live != nil {
		fmt.Fprintf(p.live, "%s  %s  %s\n", time.Now().Format("15:04:05.000"), topic, r.describe())
	}
	return nil
}

// describe is the reading as one line: value and unit, or why it is bad.
func (r pollReading) describe() string {
	if r.Quality == "bad" {
		return "bad: " + r.Error
	}
	s := string(bytes.TrimSpace(r.Value))
	if r.Unit != "" {
		s += " " + r.Unit
	}
	return s
}

// table prints one row per configured point, in config order, and returns
// exitError if any point failed or was not read.
func (p *pollPrinter) table(w io.Writer, gateway string, buses []config.Bus) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "topic\tvalue\tunit\tquality")
	failed := 0
	for _, b := range buses {
		for _, d := range b.Devices {
			for _, pt := range d.Points {
				topic := telemetry.Template(d.Topic).Expand(gateway, d.Name, pt.Name)
				r, ok := p.last[topic]
				switch {
				case !ok:
					failed++
					fmt.Fprintf(tw, "%s\t-\t%s\tnot read\n", topic, pt.Unit)
				case r.Quality == "bad":
					failed++
					fmt.Fprintf(tw, "%s\t-\t%s\tbad: %s\n", topic, pt.Unit, r.Error)
				default:
					fmt.Fprintf(tw, "%s\t%s\t%s\tgood\n", topic, bytes.TrimSpace(r.Value), pt.Unit)
				}
			}
		}
	}
	tw.Flush()
	if failed > 0 {
		fmt.Fprintf(w, "\n%d point(s) failed\n", failed)
		return exitError
	}
	return exitOK
}

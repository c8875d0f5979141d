package main

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/bridge"
	"github.com/edged/edged/broker"
	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/homeassistant"
	"github.com/edged/edged/internal/testpeer"
)

// example is a config a user may copy: a file in configs/, a valid file in
// config/testdata, or a TOML block of the README.
type example struct {
	name string
	text string
}

func examples(t *testing.T) []example {
	t.Helper()
	var out []example
	files, _ := filepath.Glob("../../configs/*.toml")
	more, _ := filepath.Glob("../../config/testdata/*.toml")
	for _, f := range append(files, more...) {
		if _, err := os.Stat(strings.TrimSuffix(f, ".toml") + ".golden"); err == nil {
			continue // a file of mistakes, with the errors it must give
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, example{strings.TrimPrefix(f, "../../"), string(data)})
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?ms)^```toml\n(.*?)^```").FindAllSubmatchIndex(readme, -1)
	for _, b := range blocks {
		line := 1 + strings.Count(string(readme[:b[0]]), "\n")
		text := string(readme[b[2]:b[3]])
		name := "README.md:" + strconv.Itoa(line)
		if strings.HasPrefix(strings.TrimSpace(text), "[[modbus.device]]") {
			// A device shown alone goes on a bus, as the reader would put it.
			text = "[[modbus]]\nname = \"bus\"\nport = \"/dev/ttyUSB0\"\n" + text
			name += " (on a bus; lines +3)"
		}
		out = append(out, example{name, text})
	}
	if len(files) < 2 || len(blocks) < 3 {
		t.Fatalf("found %d configs and %d README blocks: the globs or the README's fences changed", len(files), len(blocks))
	}
	return out
}

// TestEveryExampleChecksAndRuns puts every example through `edged check`
// and then starts every part with it: `check` accepts it and `run` starts
// with it. Where an example names a place on a real gateway, the test puts
// a place of its own: files under /etc/edged/ are rewritten to a temporary
// directory holding a valid file of each name (testpeer.NewEtcEdged), after
// the check as before it; state_dir is a temporary directory; listeners
// bind 127.0.0.1 port 0; serial ports are paths that do not exist and
// Modbus TCP servers closed loopback ports (adapters retry both); the
// uplink goes to a Mosquitto started for the test, with TLS from the same
// CA for mqtts://, and the test waits until that Mosquitto accepted it.
func TestEveryExampleChecksAndRuns(t *testing.T) {
	for _, ex := range examples(t) {
		t.Run(ex.name, func(t *testing.T) {
			etc := testpeer.NewEtcEdged(t)
			cfg, err := config.ParseWith(ex.name, []byte(etc.Rewrite(ex.text)), config.Options{ProfileDirs: []string{"../../configs/profiles"}})
			if err != nil {
				t.Fatalf("edged check refuses it:\n%v", err)
			}
			for _, w := range cfg.Warnings {
				t.Logf("warning: %v", w)
			}
			served := placeAndServe(t, cfg, true)
			var upstreams []*testpeer.Mosquitto
			if cfg.Uplink != nil {
				upstreams = upstreamForTest(t, cfg, etc)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := make(chan struct{})
			errc := make(chan error, 1)
			notify := newNotifier(func(string) string { return "" })
			status := make(chan string, 100)
			go func() {
				errc <- serve(ctx, cfg, testpeer.Logger(t), notify, func(brk *broker.Broker) {
					for _, topic := range served {
						if _, err := brk.Subscribe(topic, func(topic string, payload []byte, _ bool) {
							status <- topic + " " + string(payload)
						}); err != nil {
							t.Error(err)
						}
					}
					close(ready)
				})
			}()
			select {
			case <-ready:
			case err := <-errc:
				t.Fatalf("edged run stopped before it was ready: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("edged run not ready within 20s")
			}
			if len(upstreams) > 0 {
				// A cloud takes no status topic, so the sign is the upstream's
				// own: it logs the connection it accepted.
				testpeer.Eventually(t, 20*time.Second, "the uplink connected to the upstream Mosquitto", func() bool {
					for _, m := range upstreams {
						if strings.Contains(m.Log(), "New client connected") {
							return true
						}
					}
					return false
				})
			}
			for waiting := len(served); waiting > 0; {
				select {
				case s := <-status:
					if strings.HasSuffix(s, " online") {
						waiting--
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("%d Modbus TCP devices not online within 20s", waiting)
				}
			}
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("edged run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("edged run did not stop within 10s")
			}
		})
	}
}

// placeForTest moves what a config binds, opens and writes to places of
// the test's own.
func placeForTest(t *testing.T, cfg *config.Config) {
	placeAndServe(t, cfg, false)
}

// placeAndServe is placeForTest that, with serve, also starts a pymodbus
// device serving every point of each Modbus TCP bus, and returns the status
// topics of the devices it serves.
func placeAndServe(t *testing.T, cfg *config.Config, serve bool) []string {
	t.Helper()
	cfg.Gateway.StateDir = t.TempDir()
	for i := range cfg.Broker.Listeners {
		cfg.Broker.Listeners[i].Address = "127.0.0.1:0"
	}
	if cfg.HTTP.Address != "" {
		cfg.HTTP.Address = "127.0.0.1:0"
	}
	noPort := filepath.Join(t.TempDir(), "no-such-tty")
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	var served []string
	for i := range cfg.Modbus {
		b := &cfg.Modbus[i]
		switch {
		case b.Port != "":
			b.Port = noPort
		case serve:
			dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{
				Script: "../../adapters/modbus/testdata/pymodbus_device.py", Map: registerMap(b), RTUOverTCP: b.Transport == "rtu-over-tcp"})
			b.Address = dev.Addr
			for _, d := range b.Devices {
				served = append(served, cfg.Gateway.ID+"/"+d.Name+"/status")
			}
		default:
			b.Address = closed()
		}
	}
	for i := range cfg.Serial {
		cfg.Serial[i].Port = noPort
	}
	for i := range cfg.AT {
		cfg.AT[i].Port = noPort
	}
	return served
}

// registerMap is a pymodbus device map holding every register and bit the
// bus's points read, as zeros.
func registerMap(b *config.Bus) map[string]map[string]map[string]any {
	units := map[string]map[string]map[string]any{}
	for _, d := range b.Devices {
		unit := strconv.Itoa(d.Unit)
		if units[unit] == nil {
			units[unit] = map[string]map[string]any{}
		}
		for _, p := range d.Points {
			table := units[unit][p.Table]
			if table == nil {
				table = map[string]any{}
				units[unit][p.Table] = table
			}
			n := max(4, p.Length) // the widest number takes 4 registers
			for a := p.Address; a < p.Address+n && a <= 65535; a++ {
				if p.Table == "coil" || p.Table == "discrete" {
					table[strconv.Itoa(a)] = false
				} else {
					table[strconv.Itoa(a)] = 0
				}
			}
		}
	}
	return units
}

// upstreamForTest starts a Mosquitto for each scheme the uplink uses and
// points the uplink's URLs at it (a cloud's default URL too: config has
// filled it in), trusting the test's CA, and returns the Mosquittos.
func upstreamForTest(t *testing.T, cfg *config.Config, etc *testpeer.EtcEdged) []*testpeer.Mosquitto {
	t.Helper()
	u := cfg.Uplink
	var ups []*testpeer.Mosquitto
	started := map[string]string{}
	point := func(raw string) string {
		pu, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		addr, ok := started[pu.Scheme]
		if !ok {
			var extra []string
			switch pu.Scheme {
			case "mqtt":
			case "mqtts":
				dir := etc.Dir
				extra = append(extra, "cafile "+dir+"/ca.pem", "certfile "+dir+"/server.pem", "keyfile "+dir+"/server.key")
				if u.CAFile == "" {
					u.CAFile = dir + "/ca.pem" // the example trusts the system's roots
				}
			default:
				t.Fatalf("the test has no upstream for %s:// yet", pu.Scheme)
			}
			m := testpeer.StartMosquitto(t, strings.Join(extra, "\n"))
			ups = append(ups, m)
			addr = m.Addr
			started[pu.Scheme] = addr
		}
		pu.Host = addr
		return pu.String()
	}
	if u.URL != "" {
		u.URL = point(u.URL)
	}
	for i := range u.URLs {
		u.URLs[i] = point(u.URLs[i])
	}
	return ups
}

// buildParts builds every part as `edged run` does (serve, in daemon.go:
// keep the two in step), starting none, and
// returns the first refusal. Buffers are shared by their settings, so that
// many variants of one config open few databases.
func buildParts(t *testing.T, cfg *config.Config, bufs map[config.Buffer]*buffer.Buffer) error {
	t.Helper()
	placeForTest(t, cfg)
	off := false
	cfg.Broker.Persist = &off // broker.db is opened by New and closed only by Run
	log := slog.New(slog.DiscardHandler)
	brk, err := broker.New(cfg.Broker, cfg.Gateway.StateDir, log)
	if err != nil {
		return err
	}
	parts, _, err := newAdapters(cfg, brk, log)
	if err != nil {
		return err
	}
	if _, err := homeassistant.New(cfg, brk, brk, homeassistant.Options{Version: version, Log: log}); err != nil {
		return err
	}
	var br *bridge.Bridge
	if cfg.Uplink != nil {
		buf, ok := bufs[cfg.Buffer]
		if !ok {
			if buf, err = openBuffer(cfg, log); err != nil {
				return err
			}
			t.Cleanup(func() { _ = buf.Close() })
			bufs[cfg.Buffer] = buf
		}
		if br, err = bridge.New(*cfg.Uplink, buf, cfg.Gateway.ID, brk, log); err != nil {
			return err
		}
	}
	if cfg.HTTP.Address != "" {
		if _, err := newObserver(cfg, brk, br, nil, &progress{parts: watched(brk, nil, parts), log: log}, time.Now(), log); err != nil {
			return err
		}
	}
	return nil
}

// TestCheckAndRunAgreeOnEveryVariant takes config/testdata/every-key.toml,
// changes one value at a time to each of a list of edge values (0, -1,
// 65536, "", wildcards, NaN ...) and drops one line at a time, and for
// every variant the check accepts, builds every part: none may refuse it.
func TestCheckAndRunAgreeOnEveryVariant(t *testing.T) {
	data, err := os.ReadFile("../../config/testdata/every-key.toml")
	if err != nil {
		t.Fatal(err)
	}
	base := testpeer.NewEtcEdged(t).Rewrite(string(data))
	if _, err := config.ParseWith("every-key.toml", []byte(base), config.Options{ProfileDirs: []string{"../../configs/profiles"}}); err != nil {
		t.Fatalf("every-key.toml itself is refused:\n%v", err)
	}
	var variants []string
	values := []string{`0`, `-1`, `1`, `8`, `247`, `248`, `255`, `256`, `65535`, `65536`, `4294967296`, `999999999999`,
		`0.0`, `nan`, `inf`, `true`, `false`, `""`, `"x"`, `"a b"`, `"#"`, `"+"`, `"a/#"`, `"0"`, `"0B"`, `"1B"`, `"16MiB"`, `"1GiB"`,
		`"0s"`, `"1ns"`, `"-1s"`, `"99999999h"`, `"N"`, `"E"`, `"ABCD"`, `"tcp"`, `"rtu"`, `"rtu-over-tcp"`, `"string"`, `"bool"`,
		`"coil"`, `"discrete"`, `"value"`, `"{gateway}/{point}"`, `"localhost:1"`, `"[::1]:1"`, `"ws://127.0.0.1:1"`, `"wss://127.0.0.1:1"`,
		// Strings an AT command must not be (blank once trimmed, a NUL,
		// longer than a command line): the AT adapter once refused them
		// after the check had passed them.
		`"  "`, `"AT\u0000"`, `"AT+` + strings.Repeat("X", 300) + `"`}
	for _, at := range regexp.MustCompile(`= ("[^"]*"|-?[0-9][0-9.]*|true|false)`).FindAllStringSubmatchIndex(base, -1) {
		for _, v := range values {
			variants = append(variants, base[:at[2]]+v+base[at[3]:])
		}
	}
	for _, at := range regexp.MustCompile("(?m)^.+$").FindAllStringIndex(base, -1) {
		variants = append(variants, base[:at[0]]+base[at[1]:])
	}
	bufs := map[config.Buffer]*buffer.Buffer{}
	accepted := 0
	for _, text := range variants {
		cfg, err := config.ParseWith("every-key.toml", []byte(text), config.Options{ProfileDirs: []string{"../../configs/profiles"}})
		if err != nil {
			continue
		}
		accepted++
		if err := buildParts(t, cfg, bufs); err != nil {
			t.Errorf("edged check accepts this variant, edged run refuses it: %v\n%s", err, text)
		}
	}
	t.Logf("%d variants, %d accepted by the check", len(variants), accepted)
}

// FuzzCheckAgreesWithTheParts feeds configs to the loader `edged check`
// uses and, for every one it accepts, builds each part as `edged run` does:
// none may refuse what the check accepted. The seeds are the examples and
// the files of mistakes; `go test -fuzz FuzzCheckAgreesWithTheParts
// ./cmd/edged` looks for more.
func FuzzCheckAgreesWithTheParts(f *testing.F) {
	files, _ := filepath.Glob("../../configs/*.toml")
	more, _ := filepath.Glob("../../config/testdata/*.toml")
	for _, file := range append(files, more...) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	etc := testpeer.NewEtcEdged(f)
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := config.ParseWith("edged.toml", []byte(etc.Rewrite(text)), config.Options{ProfileDirs: []string{"../../configs/profiles"}})
		if err != nil {
			return
		}
		if err := buildParts(t, cfg, map[config.Buffer]*buffer.Buffer{}); err != nil {
			t.Fatalf("edged check accepts it, edged run refuses: %v", err)
		}
	})
}

package main

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/broker"
	"github.com/edged/edged/config"
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
		out = append(out, example{"README.md:" + strconv.Itoa(line), string(readme[b[2]:b[3]])})
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
// CA for mqtts://, and the test waits until edged's "online" arrives there.
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
			placeForTest(t, cfg)
			var online *testpeer.MosquittoSub
			if cfg.Uplink != nil {
				online = upstreamForTest(t, cfg, etc)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := make(chan struct{})
			errc := make(chan error, 1)
			notify := newNotifier(func(string) string { return "" })
			go func() {
				errc <- serve(ctx, cfg, testpeer.Logger(t), notify, func(*broker.Broker) { close(ready) })
			}()
			select {
			case <-ready:
			case err := <-errc:
				t.Fatalf("edged run stopped before it was ready: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("edged run not ready within 20s")
			}
			if online != nil {
				if got, want := online.Next(t, 20*time.Second), cfg.Gateway.ID+"/status online"; got != want {
					t.Fatalf("upstream got %q, want %q", got, want)
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
	t.Helper()
	cfg.Gateway.StateDir = t.TempDir()
	for i := range cfg.Broker.Listeners {
		cfg.Broker.Listeners[i].Address = "127.0.0.1:0"
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
	for i := range cfg.Modbus {
		if cfg.Modbus[i].Port != "" {
			cfg.Modbus[i].Port = noPort
		}
		if cfg.Modbus[i].Address != "" {
			cfg.Modbus[i].Address = closed()
		}
	}
	for i := range cfg.Serial {
		cfg.Serial[i].Port = noPort
	}
	for i := range cfg.AT {
		cfg.AT[i].Port = noPort
	}
}

// upstreamForTest starts a Mosquitto for each scheme the uplink uses,
// points the uplink's URLs at it and returns a subscriber to the gateway's
// status topic there.
func upstreamForTest(t *testing.T, cfg *config.Config, etc *testpeer.EtcEdged) *testpeer.MosquittoSub {
	t.Helper()
	u := cfg.Uplink
	var sub *testpeer.MosquittoSub
	started := map[string]string{}
	point := func(raw string) string {
		pu, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		addr, ok := started[pu.Scheme]
		if !ok {
			var extra []string
			var subArgs []string
			switch pu.Scheme {
			case "mqtt":
			case "mqtts":
				dir := etc.Dir
				extra = append(extra, "cafile "+dir+"/ca.pem", "certfile "+dir+"/server.pem", "keyfile "+dir+"/server.key")
				subArgs = append(subArgs, "--cafile", dir+"/ca.pem")
			default:
				t.Fatalf("the test has no upstream for %s:// yet", pu.Scheme)
			}
			m := testpeer.StartMosquitto(t, strings.Join(extra, "\n"))
			addr = m.Addr
			started[pu.Scheme] = addr
			if sub == nil {
				host, port, _ := net.SplitHostPort(addr)
				sub = testpeer.StartMosquittoSub(t, append(subArgs, "-h", host, "-p", port, "-t", cfg.Gateway.ID+"/status")...)
			}
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
	return sub
}

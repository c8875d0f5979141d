package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edged/edged/adapters/modbus/modbussim"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/observe"
)

// A real Prometheus scrapes edged polling a simulated meter, with an uplink
// that cannot connect so that readings wait in the buffer, and its query
// API answers with the meter's request counter and the buffer's depth.
func TestPrometheusScrapesADevicesRequestsAndTheBufferDepth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	meter, err := modbussim.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := testpeer.FreePort(t)
	cfg := writeConfig(t, fmt.Sprintf(`
[gateway]
id = "gw"
state_dir = %q

[[broker.listener]]
address = %q

[[modbus]]
name = "line1"
address = %q

  [[modbus.device]]
  name = "meter"
  interval = "200ms"
  points = [ { name = "voltage", table = "input", address = 0, type = "float32", unit = "V" } ]

[uplink]
url = "mqtt://%s"
max_backoff = "500ms"
forward = [ { local = "gw/#", remote_prefix = "up/", qos = 1 } ]

[http]
address = %q
`, t.TempDir(), testpeer.FreePort(t), meter, testpeer.FreePort(t), web))
	p := startEdged(t, nil, "run", "-c", cfg)
	p.waitLine(t, "http listening", 15*time.Second)

	prom := testpeer.StartPrometheus(t, web)
	var requests, depth map[string]float64
	ok := func() bool {
		requests = prom.Query(t, `edged_modbus_requests_total{bus="line1",device="meter"}`)
		depth = prom.Query(t, `edged_buffer_messages`)
		return len(requests) == 1 && len(depth) == 1 && first(requests) > 0 && first(depth) > 0
	}
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("prometheus has requests %v and buffer depth %v; targets: %s", requests, depth, prom.Targets(t))
		}
		time.Sleep(200 * time.Millisecond) // Prometheus scrapes every second; poll its API meanwhile
	}
	t.Logf("prometheus: edged_modbus_requests_total %v, edged_buffer_messages %v", requests, depth)

	// The histogram and the busy seconds arrive too, under the bus label.
	if got := prom.Query(t, `edged_modbus_request_duration_seconds_count{bus="line1"}`); len(got) != 1 || first(got) <= 0 {
		t.Errorf("latency histogram count %v", got)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func first(m map[string]float64) float64 {
	for _, v := range m {
		return v
	}
	return 0
}

// The status page of `edged demo -http`, loaded in headless Chromium,
// shows the simulated meter's voltage, fetched by the page's own script
// from /api/status after it loaded.
func TestTheStatusPageShowsASimulatedDevicesLiveValueInChromium(t *testing.T) {
	testpeer.Need(t, "chromium", "chromium")
	web := testpeer.FreePort(t)
	p := startEdged(t, nil, "demo", "-listen", testpeer.FreePort(t), "-http", web)
	p.waitLine(t, "http listening", 15*time.Second)
	testpeer.Eventually(t, 15*time.Second, "a voltage reading in /api/status", func() bool {
		return strings.Contains(get(t, "http://"+web+"/api/status"), `"name":"voltage","value":`)
	})

	dom := testpeer.Chromium(t, "http://"+web+"/", 5*time.Second, "--dump-dom")
	row := regexp.MustCompile(`<td>voltage</td><td class="v">([0-9.]+) V</td>`).FindStringSubmatch(dom)
	if row == nil {
		t.Fatalf("no voltage row with a value in the rendered page:\n%s", dom)
	}
	v, err := strconv.ParseFloat(row[1], 64)
	if err != nil || v < 200 || v > 260 {
		t.Errorf("voltage %q on the page; the simulated meter reads about 230 V", row[1])
	}
	if !strings.Contains(dom, `<span class="mute" id="seen">live</span>`) {
		t.Errorf("the page does not say it is live:\n%s", dom)
	}
	if !strings.Contains(dom, `<b>meter</b><span class="badge on">online</span>`) {
		t.Errorf("the meter is not shown online:\n%s", dom)
	}

	// A phone-sized picture of the same page; EDGED_SCREENSHOT_DIR keeps it.
	dir := os.Getenv("EDGED_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "status-page-phone.png")
	testpeer.Chromium(t, "http://"+web+"/", 5*time.Second, "--window-size=412,915", "--screenshot="+shot)
	if b, err := os.ReadFile(shot); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("no PNG screenshot at %s: %v", shot, err)
	} else {
		t.Logf("screenshot: %s (%d bytes)", shot, len(b))
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// /healthz reads the same list of stalled parts as the systemd watchdog:
// while a part is stuck both say so, and both recover with it.
func TestHealthzFailsWhileAPartIsStalledAsTheWatchdogDoes(t *testing.T) {
	stuck := &stuckPart{}
	alive := &progress{parts: []staller{&stuckPart{}, stuck}, log: slog.New(slog.DiscardHandler)}
	srv, err := observe.New(config.DefaultHTTP(config.HTTP{Address: "127.0.0.1:0"}), observe.Sources{Liveness: alive.stalled}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testpeer.Go(t, srv.Run)
	<-srv.Listening()
	url := "http://" + srv.Addr().String() + "/healthz"

	health := func() (int, string) {
		r, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	if code, body := health(); code != 200 || body != `{"status":"ok"}`+"\n" {
		t.Fatalf("healthy parts: %d %s", code, body)
	}
	stuck.set(errors.New(`modbus bus "rs485" device "meter": stuck in read holding 0..9 for 1m0s (limit 2s)`))
	code, body := health()
	if code != http.StatusServiceUnavailable ||
		body != `{"status":"fail","problems":["modbus bus \"rs485\" device \"meter\": stuck in read holding 0..9 for 1m0s (limit 2s)"]}`+"\n" {
		t.Errorf("stalled part: %d %s", code, body)
	}
	if alive.ok() {
		t.Error("the watchdog's check says healthy while /healthz does not")
	}
	stuck.set(nil)
	if code, body := health(); code != 200 {
		t.Errorf("recovered part: %d %s", code, body)
	}
}

// edged run with [http] cert_file and key_file serves HTTPS with the pair
// config.Load loaded and checked: the server does not load it again.
func TestTheHTTPServerServesTheCertificateConfigLoaded(t *testing.T) {
	ca := testpeer.NewCA(t, "edged-http")
	pair := ca.Server(t, "gateway")
	web := testpeer.FreePort(t)
	cfg := writeConfig(t, fmt.Sprintf(`
[gateway]
id = "gw"
state_dir = %q

[broker]
listener = []

[http]
address = %q
cert_file = %q
key_file = %q
`, t.TempDir(), web, pair.CertFile, pair.KeyFile))
	p := startEdged(t, nil, "run", "-c", cfg)
	p.waitLine(t, "http listening", 15*time.Second)
	pem, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	r, err := client.Get("https://" + web + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Errorf("https /healthz: status %d", r.StatusCode)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

package testpeer

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Prometheus is a Prometheus server (Debian's prometheus package) started
// for one test, scraping one target every second.
type Prometheus struct {
	Addr string // its HTTP API, 127.0.0.1:port
	cmd  *exec.Cmd
	log  *Output
}

// StartPrometheus runs Prometheus on a free loopback port with its data in
// a temporary directory, scraping http://target/metrics every second. It is
// stopped when the test ends, and skips the test when prometheus is not
// installed (fails it when EDGED_REQUIRE_PEERS=1).
func StartPrometheus(t testing.TB, target string) *Prometheus {
	t.Helper()
	bin := Need(t, "prometheus", "prometheus")
	dir := t.TempDir()
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: edged
    static_configs:
      - targets: [%q]
`, target)
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{Addr: FreePort(t), log: &Output{}}
	p.cmd = exec.Command(bin, "--config.file="+path, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.Addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.log.String())
		}
	})
	Eventually(t, 30*time.Second, "prometheus ready", func() bool {
		r, err := http.Get("http://" + p.Addr + "/-/ready")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
	return p
}

// Query evaluates a PromQL expression now and returns each series' value
// by its labels' text (e.g. `{bus="demo",device="meter",...}`). An error
// from the API fails the test; an empty result is an empty map.
func (p *Prometheus) Query(t testing.TB, expr string) map[string]float64 {
	t.Helper()
	r, err := http.Get("http://" + p.Addr + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		t.Fatalf("prometheus query %s: %v", expr, err)
	}
	defer r.Body.Close()
	var doc struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
		t.Fatalf("prometheus query %s: %v", expr, err)
	}
	if doc.Status != "success" {
		t.Fatalf("prometheus query %s: %s", expr, doc.Error)
	}
	out := map[string]float64{}
	for _, s := range doc.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("prometheus query %s: value %v: %v", expr, s.Value[1], err)
		}
		b, _ := json.Marshal(s.Metric)
		out[string(b)] = v
	}
	return out
}

// Targets returns the health and last error of each scrape target, for
// failure messages.
func (p *Prometheus) Targets(t testing.TB) string {
	t.Helper()
	r, err := http.Get("http://" + p.Addr + "/api/v1/targets")
	if err != nil {
		return err.Error()
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(r.Body, 8<<10))
	return string(b)
}

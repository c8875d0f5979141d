package observe

import (
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edged/edged/adapters/modbus"
	"github.com/edged/edged/bridge"
	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
	"github.com/edged/edged/mqttauth"
	"github.com/edged/edged/tlsfiles"
)

// start runs a server on a random loopback port and returns its base URL.
func start(t *testing.T, cfg config.HTTP, src Sources) (*Server, string) {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	s, err := New(config.DefaultHTTP(cfg), src, testpeer.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	testpeer.Go(t, s.Run)
	select {
	case <-s.Listening():
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not listen")
	}
	return s, "http://" + s.Addr().String()
}

func fetch(t *testing.T, req *http.Request) (int, http.Header, string) {
	t.Helper()
	r, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip: the test sees the wire
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode, r.Header, string(b)
}

func getReq(t *testing.T, url string) *http.Request {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestALoginFromTheUsersFileIsRequiredWhenOneIsSet(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	if err := mqttauth.SetPassword(file, "ops", "s3cret"); err != nil {
		t.Fatal(err)
	}
	users, err := mqttauth.LoadUsers(file)
	if err != nil {
		t.Fatal(err)
	}
	srv, base := start(t, config.HTTP{Address: "127.0.0.1:0", UsersFile: file, Users: users}, Sources{})
	for _, c := range []struct {
		name       string
		user, pass string
		want       int
	}{
		{"no login is refused", "", "", 401},
		{"a wrong password is refused", "ops", "guess", 401},
		{"an unknown user is refused", "root", "s3cret", 401},
		{"the right login is served", "ops", "s3cret", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := getReq(t, base+"/healthz")
			if c.user != "" {
				req.SetBasicAuth(c.user, c.pass)
			}
			code, h, _ := fetch(t, req)
			if code != c.want {
				t.Errorf("status %d, want %d", code, c.want)
			}
			if code == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %q", h.Get("WWW-Authenticate"))
			}
		})
	}
	if got := srv.refusedLogins.Load(); got != 3 {
		t.Errorf("refused logins counted %d, want 3", got)
	}
}

func TestAnonymousAccessIsRefusedUnlessAllowed(t *testing.T) {
	no := false
	_, base := start(t, config.HTTP{AllowAnonymous: &no}, Sources{})
	if code, _, _ := fetch(t, getReq(t, base+"/metrics")); code != 401 {
		t.Errorf("status %d, want 401", code)
	}
}

func TestTheStatusCarriesEachPointsLastReading(t *testing.T) {
	rec := testpeer.NewRecorder()
	src := Sources{
		Gateway: "gw", Version: "v1", Started: time.Now().Add(-time.Minute),
		Subscriber: rec,
		Devices: []Device{
			{Name: "meter", Kind: "modbus", Bus: "rs485", Topic: "{gateway}/{device}/{point}",
				Points: []Point{{Name: "voltage", Unit: "V"}, {Name: "relay"}, {Name: "energy", Unit: "kWh"}}},
			{Name: "weather", Kind: "serial", Topic: "site/{gateway}/{point}-of-{device}/now"},
		},
		Modbus: []func() modbus.Stats{func() modbus.Stats {
			return modbus.Stats{Bus: "rs485", Devices: []modbus.DeviceStats{{Device: "meter", Online: true}}}
		}},
		Uplink: func() bridge.Stats {
			return bridge.Stats{Server: "tcp://up:1883", LastError: "refused",
				Buffer: buffer.Stats{Messages: 3, Bytes: 300, Oldest: time.Now().Add(-90 * time.Second)}}
		},
		BufferMaxBytes: 1 << 20,
	}
	_, base := start(t, config.HTTP{}, src)
	testpeer.Eventually(t, 30*time.Second, "the subscriptions", func() bool { return len(rec.Filters()) == 2 })
	if f := rec.Filters(); !(f[0] == "gw/meter/+" && f[1] == "site/gw/+/now") {
		t.Fatalf("filters %q", f)
	}
	rec.Inject(t, "gw/meter/voltage", []byte(`{"value":230.5,"unit":"V","ts":"`+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)+`"}`))
	rec.Inject(t, "gw/meter/relay", []byte(`{"quality":"bad","error":"timeout","ts":"2026-11-22T10:00:00.123Z"}`))
	rec.Inject(t, "gw/meter/status", []byte(`online`))
	rec.Inject(t, "site/gw/temperature-of-weather/now", []byte(`21.5`))
	rec.Inject(t, "site/gw/raw-of-weather/now", []byte(`T=21.5 garbage`))
	rec.Inject(t, "site/gw/x-of-other/now", []byte(`1`)) // another device's topic shape

	req := getReq(t, base+"/api/status")
	req.Header.Set("Accept-Encoding", "gzip")
	code, h, body := fetch(t, req)
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %q: %s", code, h.Get("Content-Type"), body)
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	type row struct{ name, value, unit, quality, err string }
	var got []row
	for _, d := range doc.Devices {
		for _, p := range d.Points {
			got = append(got, row{d.Name + "/" + p.Name, string(p.Value), p.Unit, p.Quality, p.Error})
		}
	}
	want := []row{
		{"meter/voltage", "230.5", "V", "good", ""},
		{"meter/relay", "", "", "bad", "timeout"},
		{"meter/energy", "", "kWh", "none", ""},
		{"weather/temperature", "21.5", "", "good", ""},
		{"weather/raw", `"T=21.5 garbage"`, "", "good", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("points %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("point %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if age := doc.Devices[0].Points[0].AgeS; age < 3599 || age > 3700 {
		t.Errorf("a reading stamped an hour ago is %vs old", age)
	}
	if age := doc.Devices[1].Points[0].AgeS; age < 0 || age > 60 {
		t.Errorf("a bare value received now is %vs old", age)
	}
	if !doc.Devices[0].Online || doc.Devices[1].Online || doc.Devices[0].Bus != "rs485" {
		t.Errorf("devices %+v", doc.Devices)
	}
	if u := doc.Uplink; u == nil || u.Connected || u.Buffered != 3 || u.OldestAgeS < 89 || u.BufferMaxBytes != 1<<20 {
		t.Errorf("uplink %+v", doc.Uplink)
	}
	if doc.Gateway != "gw" || doc.UptimeS < 59 || !doc.Healthy {
		t.Errorf("status %+v", doc)
	}
}

func TestReadyzFailsWhileTheUplinkIsDownAndTheBufferFull(t *testing.T) {
	var bytes atomic.Int64
	src := Sources{
		Listening: func() error { return nil },
		Uplink: func() bridge.Stats {
			return bridge.Stats{LastError: "connection refused", Buffer: buffer.Stats{Bytes: bytes.Load()}}
		},
		BufferMaxBytes: 1000,
	}
	_, base := start(t, config.HTTP{}, src)
	bytes.Store(10)
	if code, _, body := fetch(t, getReq(t, base+"/readyz")); code != 200 {
		t.Errorf("buffering with room: %d %s", code, body)
	}
	bytes.Store(1000)
	code, _, body := fetch(t, getReq(t, base+"/readyz"))
	if code != 503 || body != `{"status":"fail","problems":["uplink: disconnected (connection refused) and the buffer is full (1000 of 1000 bytes)"]}`+"\n" {
		t.Errorf("full buffer: %d %s", code, body)
	}
}

func TestThePageLoadsNothingFromElsewhere(t *testing.T) {
	_, base := start(t, config.HTTP{}, Sources{})
	code, h, body := fetch(t, getReq(t, base+"/"))
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d %q", code, h.Get("Content-Type"))
	}
	for _, bad := range []string{"http://", "https://", "<link", " src=", "@import", "url("} {
		if strings.Contains(body, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("no CSP: %q", h.Get("Content-Security-Policy"))
	}
	if code, _, _ := fetch(t, getReq(t, base+"/nothing")); code != 404 {
		t.Errorf("an unknown path: %d", code)
	}
}

func TestWithACertificateTheServerSpeaksOnlyHTTPS(t *testing.T) {
	ca := testpeer.NewCA(t, "edged-test")
	pair := ca.Server(t, "gateway")
	cert, err := tlsfiles.LoadKeyPair(pair.CertFile, pair.KeyFile) // as config.Load does
	if err != nil {
		t.Fatal(err)
	}
	_, base := start(t, config.HTTP{CertFile: pair.CertFile, KeyFile: pair.KeyFile, Certificate: &cert}, Sources{})
	pem, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	r, err := client.Get(strings.Replace(base, "http://", "https://", 1) + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Errorf("https: status %d", r.StatusCode)
	}
	if r, err := http.Get(base + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("plain http was served too")
		}
	}
}

// TestACertificateNotLoadedStopsNew: a bad cert_file is config's to
// refuse (cmd/edged's TestCheckRefusesWhatRunRefuses); a config that names
// one without the loaded pair never serves plain HTTP instead.
func TestACertificateNotLoadedStopsNew(t *testing.T) {
	_, err := New(config.DefaultHTTP(config.HTTP{Address: "127.0.0.1:0", CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}), Sources{}, nil)
	if err == nil || !strings.Contains(err.Error(), "not loaded") {
		t.Errorf("err = %v", err)
	}
}

// TestNewTakesAccessAsConfigLoadedIt: the users file and the anonymous
// default are config's (config.Load loads users_file into cfg.Users and sets
// allow_anonymous); New refuses a config that skipped them rather than guess.
func TestNewTakesAccessAsConfigLoadedIt(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  config.HTTP
		want string
	}{
		{"allow_anonymous left unset", config.HTTP{Address: "127.0.0.1:0"}, "allow_anonymous not set"},
		{"users_file not loaded", config.DefaultHTTP(config.HTTP{Address: "127.0.0.1:0", UsersFile: "/etc/edged/passwd"}), "no users were loaded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfg, Sources{}, nil); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestMetricsSayHowLongAgoTheUpstreamLastAcknowledged(t *testing.T) {
	var last atomic.Int64
	src := Sources{
		Listening: func() error { return nil },
		Uplink: func() bridge.Stats {
			s := bridge.Stats{Connected: true, Delivered: 7}
			if ns := last.Load(); ns != 0 {
				s.LastDelivery = time.Unix(0, ns)
			}
			return s
		},
	}
	_, base := start(t, config.HTTP{}, src)
	_, _, body := fetch(t, getReq(t, base+"/metrics"))
	if strings.Contains(body, "edged_uplink_seconds_since_last_puback") {
		t.Errorf("a PUBACK age before the first PUBACK:\n%s", body)
	}
	last.Store(time.Now().Add(-90 * time.Second).UnixNano())
	_, _, body = fetch(t, getReq(t, base+"/metrics"))
	var age float64
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "edged_uplink_seconds_since_last_puback "); ok {
			if err := json.Unmarshal([]byte(v), &age); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		}
	}
	if age < 90 || age > 3600 {
		t.Errorf("seconds since the last PUBACK = %v, want about 90:\n%s", age, body)
	}
	if !strings.Contains(body, "edged_uplink_last_puback_timestamp_seconds ") {
		t.Errorf("no timestamp of the last PUBACK:\n%s", body)
	}
}

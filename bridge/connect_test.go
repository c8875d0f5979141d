package bridge

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/config"
	"github.com/edged/edged/internal/testpeer"
)

func TestConnecting(t *testing.T) {
	t.Run("urls are tried in turn until one answers", func(t *testing.T) {
		u := startUpstream(t, false)
		cfg := uplinkCfg(u, u.tlsAddr)
		dead := testpeer.FreePort(t) // nothing listens there
		cfg.URL = ""
		cfg.URLs = []string{"mqtts://" + dead, "mqtts://" + u.tlsAddr}
		br, _, _, _ := newBridge(t, cfg, buffer.Options{})
		runBridge(t, br)
		testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
		if s := br.Stats(); s.Server != "mqtts://"+u.tlsAddr || s.ConnectFailures == 0 {
			t.Errorf("connected to %s after %d failures; want the second url after the first failed", s.Server, s.ConnectFailures)
		}
	})

	t.Run("a refused login says not authorized and is logged once", func(t *testing.T) {
		dir := t.TempDir()
		pwfile := filepath.Join(dir, "passwd")
		testpeer.MosquittoPasswd(t, pwfile, "gw", "right")
		ca := testpeer.NewCA(t, "upstream")
		srv := ca.Server(t, "server")
		m := testpeer.StartMosquitto(t, fmt.Sprintf("allow_anonymous false\npassword_file %s\ncafile %s\ncertfile %s\nkeyfile %s\n%s",
			pwfile, ca.File, srv.CertFile, srv.KeyFile, asRoot()))
		cfg := config.Uplink{URL: "mqtts://" + m.Addr, CAFile: ca.File, Username: "gw", Password: "wrong-password-value",
			MaxBackoff: config.Duration{Duration: 600 * time.Millisecond}}
		br, _, _, lb := newBridge(t, cfg, buffer.Options{})
		runBridge(t, br)
		testpeer.Eventually(t, 15*time.Second, "three refused attempts", func() bool { return br.Stats().ConnectFailures >= 3 })
		if s := br.Stats(); !strings.Contains(s.LastError, "not authorized") {
			t.Errorf("last error %q does not say not authorized", s.LastError)
		}
		if n := lb.Count("uplink connect failed"); n != 1 {
			t.Errorf("%d log lines for the same refusal, want 1:\n%s", n, lb)
		}
		if strings.Contains(lb.String(), "wrong-password-value") {
			t.Errorf("the password was logged")
		}
	})

	t.Run("the status topic tells connected, server and buffer state", func(t *testing.T) {
		u := startUpstream(t, false)
		br, local, _, _ := newBridge(t, uplinkCfg(u, u.tlsAddr), buffer.Options{})
		runBridge(t, br)
		testpeer.Eventually(t, 15*time.Second, "a connected status", func() bool {
			var st map[string]any
			if json.Unmarshal(local.Retained("gw/edged/uplink"), &st) != nil {
				return false
			}
			return st["connected"] == true && st["server"] == "mqtts://"+u.tlsAddr
		})
		var st map[string]any
		_ = json.Unmarshal(local.Retained("gw/edged/uplink"), &st)
		for _, k := range []string{"buffered", "buffered_bytes", "oldest_age_s", "dropped", "duplicates_possible"} {
			if _, ok := st[k]; !ok {
				t.Errorf("status has no %q: %v", k, st)
			}
		}
		if br.Stats().NotForwarded == 0 {
			t.Errorf("the status topic matches the forward rule gw/# and must not have gone up")
		}
	})
}

// TestRunLeavesNoGoroutines stops a bridge after an outage and checks that
// neither its goroutines nor paho's outlive Run.
func TestRunLeavesNoGoroutines(t *testing.T) {
	u := startUpstream(t, false)
	proxy := testpeer.StartProxy(t, u.tlsAddr)
	br, local, _, _ := newBridge(t, uplinkCfg(u, proxy.Addr), buffer.Options{})
	stop := runBridge(t, br)
	testpeer.Eventually(t, 15*time.Second, "the bridge connected", connected(br))
	for i := range 100 {
		if err := local.Publish("gw/m/p", []byte(fmt.Sprint(i)), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Cut()
	testpeer.Eventually(t, 10*time.Second, "the bridge noticed the cut", func() bool { return !br.Stats().Connected })
	proxy.Restore()
	testpeer.Eventually(t, 15*time.Second, "the bridge reconnected", connected(br))
	stop()
	testpeer.Eventually(t, 10*time.Second, "no bridge or paho goroutine left", func() bool {
		buf := make([]byte, 1<<20)
		s := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(s, "edged/bridge.(*") && !strings.Contains(s, "paho")
	})
}

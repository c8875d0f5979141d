package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// TestACloudSeesReadingsAndWritesThroughEdged runs edged with [uplink]
// cloud against a broker that checks the cloud's published login rule and a
// pymodbus meter: edged logs in, the meter's readings arrive as the cloud's
// property posts (the points of a poll in one), and a property-set message from the cloud becomes Modbus
// writes on the meter, answered with code 200 on the reply topic.
func TestACloudSeesReadingsAndWritesThroughEdged(t *testing.T) {
	const key = "c2VjcmV0LWRldmljZS1rZXktZm9yLXRlc3RzLW9ubHk="
	for _, c := range []struct {
		cloud, keys, post, set string
		verify                 testpeer.CloudVerifier
	}{
		{"onenet", `product_id = "Pq1x"`, "$sys/Pq1x/gw1/thing/property/post", "$sys/Pq1x/gw1/thing/property/set",
			testpeer.VerifyOneNET("Pq1x", "gw1", key, time.Now)},
		{"aliyun", `product_key = "a1Bc"`, "/sys/a1Bc/gw1/thing/event/property/post", "/sys/a1Bc/gw1/thing/service/property/set",
			testpeer.VerifyAliyun("a1Bc", "gw1", key)},
	} {
		t.Run(c.cloud, func(t *testing.T) {
			dev := testpeer.StartPyModbus(t, testpeer.PyModbusOptions{Script: deviceScript, Map: map[string]map[string]map[string]any{
				"1": {"input": {"0": 17254, "1": 32768}, "coil": {"0": false}, "holding": {"10": 200}},
			}})
			cloud := testpeer.StartCloudBroker(t, c.verify, nil)
			keyFile := filepath.Join(t.TempDir(), "device.key")
			if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			listen := testpeer.FreePort(t)
			cfg := writeConfig(t, fmt.Sprintf(`
[gateway]
id = "gw"
state_dir = %q

[[broker.listener]]
address = %q

[uplink]
cloud = %q
%s
device_name = "gw1"
device_key_file = %q
url = "mqtt://%s"
max_backoff = "500ms"
forward = [ { local = "gw/meter/#", format = %[3]q } ]
downlink = [ { format = %[3]q, local_prefix = "gw/meter/" } ]

[[modbus]]
name = "bus"
address = %[7]q
timeout = "2s"

  [[modbus.device]]
  name = "meter"
  unit = 1
  interval = "300ms"
  points = [
    { name = "voltage", table = "input", address = 0, type = "float32", unit = "V", precision = 1 },
    { name = "relay", table = "coil", address = 0, writable = true },
    { name = "setpoint", table = "holding", address = 10, type = "int16", scale = 0.1, writable = true },
  ]
`, t.TempDir(), listen, c.cloud, c.keys, keyFile, cloud.Addr, dev.Addr))
			if out, code := runEdged(t, "", "check", "-c", cfg); code != 0 {
				t.Fatalf("edged check: %d %s", code, out)
			}
			startEdged(t, nil, "run", "-c", cfg)

			var voltage float64
			cloud.WaitFor(t, 20*time.Second, "the voltage posted", func(_ []testpeer.CloudConnect, ms []testpeer.CloudMessage) bool {
				for _, m := range ms {
					var post struct {
						Params map[string]struct {
							Value any   `json:"value"`
							Time  int64 `json:"time"`
						} `json:"params"`
					}
					if m.Topic == c.post && json.Unmarshal(m.Payload, &post) == nil {
						v, ok := post.Params["voltage"]
						_, relay := post.Params["relay"]
						if ok && relay && v.Time > 0 { // the points of a poll in one post
							voltage, _ = v.Value.(float64)
							return true
						}
					}
				}
				return false
			})
			if voltage != 230.5 {
				t.Errorf("voltage %v, want 230.5", voltage)
			}
			for _, x := range cloud.Connects() {
				if x.Refused != "" {
					t.Errorf("a login was refused: %s", x.Refused)
				}
			}

			if err := cloud.Publish(c.set, []byte(`{"id":"42","version":"1.0","params":{"relay":true,"setpoint":42.5}}`)); err != nil {
				t.Fatal(err)
			}
			r := cloud.Message(t, 15*time.Second, c.set+"_reply")
			if !strings.Contains(string(r.Payload), `"id":"42"`) || !strings.Contains(string(r.Payload), `"code":200`) {
				t.Errorf("reply %s", r.Payload)
			}
			testpeer.Eventually(t, 10*time.Second, "the meter took both writes", func() bool {
				w := fmt.Sprint(dev.Stats(t).Writes)
				return strings.Contains(w, "{1 5 0 [true]}") && strings.Contains(w, "{1 6 10 [425]}")
			})
		})
	}
}

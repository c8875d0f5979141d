package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func keyFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "device.key")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckNamesEachCloudsMissingAndMisplacedKeys(t *testing.T) {
	bad := keyFile(t, "this is not base64 SECRETVALUE\n")
	cases := []struct {
		name, text string
		want       []string
	}{
		{"onenet without product or key", `[uplink]
cloud = "onenet"
device_name = "gw1"
`, []string{
			`edged.toml:1: uplink.product_id: missing (cloud = "onenet" needs it; see the README's section on onenet)`,
			`edged.toml:1: uplink.device_key_file: missing (cloud = "onenet" needs it; see the README's section on onenet)`,
		}},
		{"a key that is not base64, and a password beside the cloud", `[uplink]
cloud = "azure"
hub = "myhub"
device_name = "gw1"
device_key_file = "` + bad + `"
username = "me"
`, []string{
			"edged.toml:5: uplink.device_key_file: " + bad + ": device key: not base64 (copy it from the console as it is shown)",
			`edged.toml:6: uplink.username: must not be set with cloud = "azure": edged computes the login at every connect`,
		}},
		{"aliyun without a region or url, and a format for another cloud", `[uplink]
cloud = "aliyun"
product_key = "a1B"
device_name = "gw1"
device_key_file = "` + keyFile(t, "s3cret") + `"
forward = [ { local = "gw/#", format = "onenet" } ]
`, []string{
			`edged.toml:1: uplink.region: missing (the region of the product, e.g. "cn-shanghai"; or set url to the instance's MQTT endpoint)`,
			`edged.toml:6: uplink.forward[0].format: "onenet" needs cloud = "onenet" (the device the properties belong to)`,
		}},
		{"aws over plain MQTT", `[uplink]
cloud = "aws"
url = "mqtt://x.iot.eu-west-1.amazonaws.com:8883"
device_name = "thing"
`, []string{
			`edged.toml:1: uplink.cert_file: missing (cloud = "aws" needs it; see the README's section on aws)`,
			"edged.toml:3: uplink.url: AWS IoT Core takes MQTT over TLS with a client certificate: write mqtts:// (port 8883, or 443 with ALPN)",
		}},
		{"cloud keys without a cloud", `[uplink]
url = "mqtt://127.0.0.1:1883"
hub = "myhub"
`, []string{
			"edged.toml:3: uplink.hub: is a cloud setting, but cloud is not set (onenet, aliyun, azure or aws)",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := errorLines(t, c.text)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			if strings.Contains(strings.Join(got, "\n"), "SECRETVALUE") {
				t.Error("an error shows the key")
			}
		})
	}
}

func TestACloudSetsItsDefaultURLAndLifetime(t *testing.T) {
	c, err := parseTest(t, `[uplink]
cloud = "azure"
hub = "myhub"
device_name = "gw1"
device_key_file = "`+keyFile(t, "c2VjcmV0\n")+`"
forward = [ { local = "gw/#" } ]
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Uplink.URL != "mqtts://myhub.azure-devices.net:8883" || c.Uplink.TokenLifetime.Hours() != 1 {
		t.Fatalf("url %q lifetime %v", c.Uplink.URL, c.Uplink.TokenLifetime)
	}
}

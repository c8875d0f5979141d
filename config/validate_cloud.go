package config

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/edged/edged/cloudauth"
)

// cloudFormats are the downlink formats, each a cloud's thing model;
// forward rules also take azure (IoT Hub's device-to-cloud topic).
var (
	cloudFormats   = []string{cloudauth.OneNET, cloudauth.Aliyun}
	forwardFormats = []string{cloudauth.OneNET, cloudauth.Aliyun, cloudauth.Azure}
)

// cloud checks the keys of [uplink] cloud: each cloud's required keys, the
// keys it computes itself (which the file must leave out), and the form of
// the device key, read from device_key_file (never shown).
func (v *validator) cloud(u *Uplink) {
	if !v.set["uplink.cloud"] {
		for _, k := range []string{"product_id", "product_key", "device_name", "device_key_file", "region", "hub", "token_lifetime"} {
			if v.set["uplink."+k] {
				v.errorf("uplink."+k, "is a cloud setting, but cloud is not set (onenet, aliyun, azure or aws)")
			}
		}
		return
	}
	if !v.oneOf("uplink.cloud", u.Cloud, cloudauth.Clouds...) {
		return
	}
	for _, k := range []string{"client_id", "username", "password", "password_file"} {
		if v.set["uplink."+k] {
			v.errorf("uplink."+k, "must not be set with cloud = %q: edged computes the login at every connect", u.Cloud)
		}
	}
	need := map[string][]string{
		cloudauth.OneNET: {"product_id", "device_key_file"},
		cloudauth.Aliyun: {"product_key", "device_key_file"},
		cloudauth.Azure:  {"hub", "device_key_file"},
		cloudauth.AWS:    {"cert_file"},
	}[u.Cloud]
	val := map[string]string{"product_id": u.ProductID, "product_key": u.ProductKey, "device_key_file": u.DeviceKeyFile, "hub": u.Hub, "cert_file": u.CertFile}
	for _, k := range need {
		if val[k] == "" && !v.set["uplink."+k] {
			v.errorf("uplink."+k, "missing (cloud = %q needs it; see the README's section on %s)", u.Cloud, u.Cloud)
		}
	}
	v.required("uplink.device_name", u.DeviceName, "the device's name in the cloud console")
	if strings.ContainsAny(u.DeviceName, "/+#") {
		v.errorf("uplink.device_name", "%q must not contain /, + or #", u.DeviceName)
	}
	notFor := func(key string, set bool, clouds ...string) {
		if set && !strings.Contains(strings.Join(clouds, ","), u.Cloud) {
			v.errorf("uplink."+key, "is not used by cloud = %q", u.Cloud)
		}
	}
	notFor("product_id", u.ProductID != "", cloudauth.OneNET)
	notFor("product_key", u.ProductKey != "", cloudauth.Aliyun)
	notFor("region", u.Region != "", cloudauth.Aliyun)
	notFor("hub", u.Hub != "", cloudauth.Azure)
	notFor("device_key_file", u.DeviceKeyFile != "", cloudauth.OneNET, cloudauth.Aliyun, cloudauth.Azure)
	notFor("token_lifetime", v.set["uplink.token_lifetime"], cloudauth.OneNET, cloudauth.Azure)
	if v.set["uplink.token_lifetime"] && (u.TokenLifetime.Duration < time.Minute || u.TokenLifetime.Duration > 365*24*time.Hour) {
		v.errorf("uplink.token_lifetime", "%v is outside 1m..8760h", u.TokenLifetime.Duration)
	}
	if u.Cloud == cloudauth.Aliyun && u.URL == "" && len(u.URLs) == 0 {
		v.errorf("uplink.region", `missing (the region of the product, e.g. "cn-shanghai"; or set url to the instance's MQTT endpoint)`)
	}
	if u.Cloud == cloudauth.AWS && u.URL == "" && len(u.URLs) == 0 {
		v.errorf("uplink.url", `missing (the device data endpoint, e.g. "mqtts://abc123-ats.iot.eu-west-1.amazonaws.com:8883")`)
	}
	if u.Cloud == cloudauth.AWS {
		for i, s := range append([]string{u.URL}, u.URLs...) {
			if pu, err := url.Parse(s); err == nil && s != "" && pu.Scheme != "mqtts" {
				p := "uplink.url"
				if u.URL == "" || i > 0 {
					p = index("uplink.urls", i-btoi(u.URL != ""))
				}
				v.errorf(p, "AWS IoT Core takes MQTT over TLS with a client certificate: write mqtts:// (port 8883, or 443 with ALPN)")
			}
		}
	}
	if u.DeviceKeyFile != "" {
		v.deviceKey(u.Cloud, u.DeviceKeyFile)
	}
}

// deviceKey reads the key file and checks its form. A file edged check
// may not read (it is the daemon's, mode 0600) is a warning, not an error.
func (v *validator) deviceKey(cloud, path string) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrPermission):
		v.warnf("uplink.device_key_file", "%s cannot be read by this user, so its form was not checked", path)
		return
	case err != nil:
		v.errorf("uplink.device_key_file", "cannot read %s: %v", path, unwrapPath(err))
		return
	}
	if err := cloudauth.CheckKey(cloud, strings.TrimSpace(string(b))); err != nil {
		v.errorf("uplink.device_key_file", "%s: %v", path, err)
	}
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// defaultCloudURL is the address a cloud's devices connect to when the
// file names none.
func defaultCloudURL(u *Uplink) string {
	switch u.Cloud {
	case cloudauth.OneNET:
		return "mqtts://mqttstls.heclouds.com:8883"
	case cloudauth.Aliyun:
		if u.ProductKey != "" && u.Region != "" {
			return "mqtts://" + u.ProductKey + ".iot-as-mqtt." + u.Region + ".aliyuncs.com:1883"
		}
	case cloudauth.Azure:
		if h := AzureHost(u.Hub); h != "" {
			return "mqtts://" + h + ":8883"
		}
	}
	return ""
}

// AzureHost is the IoT Hub host name for hub, which may be the hub's name
// or already its host name.
func AzureHost(hub string) string {
	if hub == "" || strings.Contains(hub, ".") {
		return hub
	}
	return hub + ".azure-devices.net"
}

package cloudauth

import (
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// Aliyun IoT Platform's worked example of an MQTT signature (device
// light1983432 of product a14Xib5kdYd, client id SN1928339, hmacsha1), as
// published with the signing rule ("三元组接入示例"): see
// https://help.aliyun.com/document_detail/63656.html, reproduced at
// https://553668.com/manong/261125.html.
func TestAliyunPasswordReproducesThePublishedExample(t *testing.T) {
	got, err := AliyunPassword("hmacsha1", "oLyaKqVxtRvjH284LdhqVgVUx1UPy6zq", "SN1928339", "light1983432", "a14Xib5kdYd", 1539421321846)
	if err != nil {
		t.Fatal(err)
	}
	if want := "b2488041f64f425016b467ee1c94959ebd592ad1"; got != want {
		t.Fatalf("password = %s, want the published %s", got, want)
	}
}

// OneNET publishes the text its signature covers for et = 1537255523,
// method = sha1, res = products/123123 (its token page:
// https://open.iot.10086.cn/doc/mqtt/book/manual/auth/token.html). Its
// sample sign is a placeholder, so the signature itself is checked against
// Python's hmac, an implementation independent of edged's.
func TestOneNETTokenFollowsThePublishedRule(t *testing.T) {
	if got, want := OneNETStringToSign("products/123123", 1537255523, "sha1"), "1537255523\nsha1\nproducts/123123\n2018-10-31"; got != want {
		t.Fatalf("string to sign = %q, want the published %q", got, want)
	}
	key := "KuF3NT/jUBJ62LNBB/A8XZA9CqS3Cu79B/ABmfA1UCw="
	tok, err := OneNETToken(key, "products/123123/devices/mydev", 1537255523, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	q, err := url.ParseQuery(tok)
	if err != nil {
		t.Fatalf("token %q is not key=value&...: %v", tok, err)
	}
	if q.Get("version") != "2018-10-31" || q.Get("res") != "products/123123/devices/mydev" || q.Get("et") != "1537255523" || q.Get("method") != "sha256" {
		t.Fatalf("token fields = %v", q)
	}
	if !strings.Contains(tok, "res=products%2F123123%2Fdevices%2Fmydev") {
		t.Fatalf("res is not URL-encoded in %q", tok)
	}
	want := pythonHMAC(t, "sha256", key, "1537255523\nsha256\nproducts/123123/devices/mydev\n2018-10-31")
	if q.Get("sign") != want {
		t.Fatalf("sign = %s, want %s", q.Get("sign"), want)
	}
}

// Azure IoT Hub's rule (https://learn.microsoft.com/azure/iot-hub/authenticate-authorize-sas):
// the signature is HMAC-SHA256, keyed with the base64-decoded device key,
// over the URL-encoded resource URI and the expiry on two lines; the token
// is "SharedAccessSignature sr=...&sig=...&se=...". Checked against Python.
func TestAzureSASFollowsThePublishedRule(t *testing.T) {
	key := "c2VjcmV0LWRldmljZS1rZXktZm9yLXRlc3RzLW9ubHk="
	sas, err := AzureSAS(key, "myHub.azure-devices.net/devices/device1", 1456971697)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "SharedAccessSignature "
	if !strings.HasPrefix(sas, prefix) {
		t.Fatalf("%q does not start with %q", sas, prefix)
	}
	q, err := url.ParseQuery(strings.TrimPrefix(sas, prefix))
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("sr") != "myHub.azure-devices.net/devices/device1" || q.Get("se") != "1456971697" {
		t.Fatalf("fields = %v", q)
	}
	want := pythonHMAC(t, "sha256", key, "myHub.azure-devices.net%2Fdevices%2Fdevice1\n1456971697")
	if q.Get("sig") != want {
		t.Fatalf("sig = %s, want %s", q.Get("sig"), want)
	}
}

func TestEachCloudsLoginHasTheShapeItsDocumentationGives(t *testing.T) {
	now := time.Unix(1700000000, 0)
	cases := []struct {
		d                  Device
		id, user, pwPrefix string
		expires            bool
	}{
		{Device{Cloud: OneNET, Product: "Pq1", Name: "gw1", Key: "c2VjcmV0"}, "gw1", "Pq1", "version=2018-10-31&res=products%2FPq1%2Fdevices%2Fgw1&et=1700003600&method=sha256&sign=", true},
		{Device{Cloud: Aliyun, Product: "a1B", Name: "gw1", Key: "s3cret", TLS: true}, "a1B.gw1|securemode=2,signmethod=hmacsha256,timestamp=1700000000000|", "gw1&a1B", "", false},
		{Device{Cloud: Azure, Host: "h.azure-devices.net", Name: "gw1", Key: "c2VjcmV0", Lifetime: 2 * time.Hour}, "gw1", "h.azure-devices.net/gw1/?api-version=2021-04-12", "SharedAccessSignature sr=h.azure-devices.net%2Fdevices%2Fgw1&sig=", true},
		{Device{Cloud: AWS, Name: "thing-1"}, "thing-1", "", "", false},
	}
	for _, c := range cases {
		t.Run(c.d.Cloud, func(t *testing.T) {
			l, err := c.d.Login(now)
			if err != nil {
				t.Fatal(err)
			}
			if l.ClientID != c.id || l.Username != c.user || !strings.HasPrefix(l.Password, c.pwPrefix) {
				t.Fatalf("login = %+v", l)
			}
			if c.expires == l.Expires.IsZero() {
				t.Fatalf("expires = %v", l.Expires)
			}
		})
	}
}

func TestAKeyThatIsNotBase64IsRefusedWithoutShowingIt(t *testing.T) {
	err := CheckKey(OneNET, "not base64!secretvalue")
	if err == nil || strings.Contains(err.Error(), "secretvalue") {
		t.Fatalf("err = %v", err)
	}
	if _, err := (Device{Cloud: Azure, Name: "d", Host: "h", Key: "%%%secret"}).Login(time.Now()); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v", err)
	}
	if err := CheckKey(Aliyun, "abc"); err != nil {
		t.Fatal(err)
	}
}

func TestRenewalComesBeforeExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	if got := RenewAt(Login{Expires: now.Add(time.Hour)}, now); got != now.Add(55*time.Minute) {
		t.Fatalf("renew at %v", got.Sub(now))
	}
	if got := RenewAt(Login{Expires: now.Add(10 * time.Second)}, now); got != now.Add(9*time.Second) {
		t.Fatalf("renew at %v", got.Sub(now))
	}
	if !RenewAt(Login{}, now).IsZero() {
		t.Fatal("a login that does not expire is renewed")
	}
}

// pythonHMAC computes base64(HMAC(base64decode(key), msg)) with Python's
// standard library.
func pythonHMAC(t *testing.T, alg, key, msg string) string {
	t.Helper()
	py := testpeer.Need(t, "python3", "apt-get install python3")
	out, err := exec.Command(py, "-c", `import sys,hmac,hashlib,base64
print(base64.b64encode(hmac.new(base64.b64decode(sys.argv[1]), sys.argv[3].encode(), getattr(hashlib, sys.argv[2])).digest()).decode())`, key, alg, msg).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

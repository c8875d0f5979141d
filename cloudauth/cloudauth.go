package cloudauth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The clouds edged knows, as [uplink] cloud names them.
const (
	OneNET = "onenet"
	Aliyun = "aliyun"
	Azure  = "azure"
	AWS    = "aws"
)

// Clouds lists the names in the order the README presents them.
var Clouds = []string{OneNET, Aliyun, Azure, AWS}

// DefaultLifetime is how long a token is valid where the cloud lets the
// device choose (OneNET, Azure).
const DefaultLifetime = time.Hour

// AzureAPIVersion is the IoT Hub MQTT API version edged names in its user
// name.
const AzureAPIVersion = "2021-04-12"

// oneNETVersion is the only token version OneNET documents.
const oneNETVersion = "2018-10-31"

// Device is what a cloud knows the gateway by.
type Device struct {
	Cloud   string
	Product string // OneNET product id, Aliyun ProductKey
	Name    string // device name, Azure device id, AWS thing name
	Host    string // Azure: the hub's host name (myhub.azure-devices.net)
	// Key is the device key exactly as the console shows it: base64 for
	// OneNET and Azure, Aliyun's DeviceSecret as text. AWS has none.
	Key      string
	Lifetime time.Duration // token lifetime; 0 means DefaultLifetime
	TLS      bool          // the connection uses TLS (Aliyun says so in its client id)
}

// Login is one CONNECT's identity. Expires is when the password stops
// being accepted, zero when it does not expire.
type Login struct {
	ClientID string
	Username string
	Password string
	Expires  time.Time
}

// Login computes the CONNECT identity for d at now.
func (d Device) Login(now time.Time) (Login, error) {
	life := d.Lifetime
	if life <= 0 {
		life = DefaultLifetime
	}
	switch d.Cloud {
	case OneNET:
		exp := now.Add(life).Truncate(time.Second)
		tok, err := OneNETToken(d.Key, "products/"+d.Product+"/devices/"+d.Name, exp.Unix(), "sha256")
		if err != nil {
			return Login{}, err
		}
		return Login{ClientID: d.Name, Username: d.Product, Password: tok, Expires: exp}, nil
	case Aliyun:
		ts := now.UnixMilli()
		id := d.Product + "." + d.Name
		mode := 3
		if d.TLS {
			mode = 2
		}
		pw, err := AliyunPassword("hmacsha256", d.Key, id, d.Name, d.Product, ts)
		if err != nil {
			return Login{}, err
		}
		return Login{
			ClientID: fmt.Sprintf("%s|securemode=%d,signmethod=hmacsha256,timestamp=%d|", id, mode, ts),
			Username: d.Name + "&" + d.Product,
			Password: pw,
		}, nil
	case Azure:
		exp := now.Add(life).Truncate(time.Second)
		sas, err := AzureSAS(d.Key, d.Host+"/devices/"+d.Name, exp.Unix())
		if err != nil {
			return Login{}, err
		}
		return Login{
			ClientID: d.Name,
			Username: d.Host + "/" + d.Name + "/?api-version=" + AzureAPIVersion,
			Password: sas,
			Expires:  exp,
		}, nil
	case AWS:
		return Login{ClientID: d.Name}, nil
	}
	return Login{}, fmt.Errorf("cloud %q is not one of %s", d.Cloud, strings.Join(Clouds, ", "))
}

// ErrKey is wrapped by every error about a key's form. The key itself is
// never part of the message.
var ErrKey = errors.New("device key")

func decodeKey(key string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(k) == 0 {
		return nil, fmt.Errorf("%w: not base64 (copy it from the console as it is shown)", ErrKey)
	}
	return k, nil
}

// CheckKey reports whether key has the form cloud wants.
func CheckKey(cloud, key string) error {
	switch cloud {
	case OneNET, Azure:
		_, err := decodeKey(key)
		return err
	case Aliyun:
		if key == "" || strings.ContainsAny(key, " \t\r\n") {
			return fmt.Errorf("%w: empty or holding white space", ErrKey)
		}
	}
	return nil
}

func hasher(method string) (func() hash.Hash, error) {
	switch strings.TrimPrefix(method, "hmac") {
	case "sha256":
		return sha256.New, nil
	case "sha1":
		return sha1.New, nil
	case "md5":
		return md5.New, nil
	}
	return nil, fmt.Errorf("signature method %q is not one of sha256, sha1, md5", method)
}

func mac(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// OneNETToken is OneNET's token for res (products/{pid}/devices/{name})
// valid until the unix time et: the HMAC (sha256, sha1 or md5) keyed with
// the base64-decoded key over et, method, res and version, one per line,
// with every value URL-encoded in the result.
func OneNETToken(key, res string, et int64, method string) (string, error) {
	h, err := hasher(method)
	if err != nil {
		return "", err
	}
	k, err := decodeKey(key)
	if err != nil {
		return "", err
	}
	etS := strconv.FormatInt(et, 10)
	sign := base64.StdEncoding.EncodeToString(mac(h, k, OneNETStringToSign(res, et, method)))
	return "version=" + oneNETVersion + "&res=" + url.QueryEscape(res) + "&et=" + etS +
		"&method=" + method + "&sign=" + url.QueryEscape(sign), nil
}

// OneNETStringToSign is the text OneNET's signature covers.
func OneNETStringToSign(res string, et int64, method string) string {
	return strconv.FormatInt(et, 10) + "\n" + method + "\n" + res + "\n" + oneNETVersion
}

// AliyunPassword is Aliyun IoT Platform's MQTT password: the hex HMAC
// (hmacsha256, hmacsha1 or hmacmd5), keyed with the DeviceSecret, over
// clientId, deviceName, productKey and timestamp, each name followed by its
// value.
func AliyunPassword(method, secret, clientID, deviceName, productKey string, ts int64) (string, error) {
	h, err := hasher(method)
	if err != nil {
		return "", err
	}
	if secret == "" {
		return "", fmt.Errorf("%w: empty", ErrKey)
	}
	content := "clientId" + clientID + "deviceName" + deviceName + "productKey" + productKey +
		"timestamp" + strconv.FormatInt(ts, 10)
	return hex.EncodeToString(mac(h, []byte(secret), content)), nil
}

// AzureSAS is an IoT Hub shared access signature for resource
// ({host}/devices/{id}) valid until the unix time expiry: HMAC-SHA256 keyed
// with the base64-decoded device key over the URL-encoded resource and the
// expiry on two lines.
func AzureSAS(key, resource string, expiry int64) (string, error) {
	k, err := decodeKey(key)
	if err != nil {
		return "", err
	}
	sr := url.QueryEscape(resource)
	se := strconv.FormatInt(expiry, 10)
	sig := base64.StdEncoding.EncodeToString(mac(sha256.New, k, sr+"\n"+se))
	return "SharedAccessSignature sr=" + sr + "&sig=" + url.QueryEscape(sig) + "&se=" + se, nil
}

// RenewAt is when a connection made with l should be replaced by one with
// a fresh token: before it expires by a tenth of its lifetime, at most five
// minutes. Zero when l does not expire.
func RenewAt(l Login, issued time.Time) time.Time {
	if l.Expires.IsZero() {
		return time.Time{}
	}
	margin := min(l.Expires.Sub(issued)/10, 5*time.Minute)
	return l.Expires.Add(-margin)
}

package bridge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edged/edged/cloudauth"
	"github.com/edged/edged/config"
)

// errTokenRenew ends a session whose cloud token is about to expire: the
// next connection logs in with a fresh one.
var errTokenRenew = errors.New("the cloud token is about to expire: reconnecting with a fresh one")

// alpnAWS is the ALPN protocol AWS IoT Core wants for MQTT with a client
// certificate on port 443.
const alpnAWS = "x-amzn-mqtt-ca"

// cloudLink is the uplink's side of [uplink] cloud: the device the cloud
// knows the gateway by, the key file its logins are computed from, and the
// topics of its thing model.
type cloudLink struct {
	dev     cloudauth.Device // Key empty: read from keyFile at every connect
	keyFile string
	now     func() time.Time // the clock tokens are computed with; replaceable in tests
	msgID   atomic.Uint64    // ids of property posts
}

// login is one connection's identity and, for a token that expires, when
// to renew it.
type login struct {
	clientID, username, password string
	renewAt                      time.Time
}

func newCloud(cfg config.Uplink) (*cloudLink, error) {
	if cfg.Cloud == "" {
		return nil, nil
	}
	product := cfg.ProductID
	if cfg.Cloud == cloudauth.Aliyun {
		product = cfg.ProductKey
	}
	c := &cloudLink{
		dev: cloudauth.Device{
			Cloud: cfg.Cloud, Product: product, Name: cfg.DeviceName,
			Host: config.AzureHost(cfg.Hub), Lifetime: cfg.TokenLifetime.Duration,
		},
		keyFile: cfg.DeviceKeyFile,
		now:     time.Now,
	}
	c.msgID.Store(uint64(time.Now().Unix()))
	if _, err := c.key(); err != nil {
		return nil, err
	}
	return c, nil
}

// key reads the device key; a key replaced in its file is used from the
// next connection on. The key is never logged.
func (c *cloudLink) key() (string, error) {
	if c.keyFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.keyFile)
	if err != nil {
		return "", fmt.Errorf("uplink.device_key_file: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if err := cloudauth.CheckKey(c.dev.Cloud, k); err != nil {
		return "", fmt.Errorf("uplink.device_key_file %s: %w", c.keyFile, err)
	}
	return k, nil
}

// login computes the cloud's login for a connection to srv, now.
func (c *cloudLink) login(srv server) (login, error) {
	k, err := c.key()
	if err != nil {
		return login{}, err
	}
	d := c.dev
	d.Key, d.TLS = k, srv.tls
	now := c.now()
	l, err := d.Login(now)
	if err != nil {
		return login{}, fmt.Errorf("uplink: %s login: %w", d.Cloud, err)
	}
	return login{clientID: l.ClientID, username: l.Username, password: l.Password, renewAt: cloudauth.RenewAt(l, now)}, nil
}

// login returns the identity of the next connection to srv: the cloud's,
// computed now, or the configured one.
func (br *Bridge) login(srv server) (login, error) {
	if br.cloud == nil {
		return login{clientID: br.clientID, username: br.cfg.Username, password: br.password}, nil
	}
	return br.cloud.login(srv)
}

// tuneTLS adds what a cloud wants of the TLS handshake: AWS IoT Core takes
// MQTT with a client certificate on port 443 only with ALPN x-amzn-mqtt-ca.
func (br *Bridge) tuneTLS(tc *tls.Config, srv server) {
	if br.cloud == nil || br.cloud.dev.Cloud != cloudauth.AWS {
		return
	}
	if _, port, err := net.SplitHostPort(srv.host); err == nil && port == "443" {
		tc.NextProtos = []string{alpnAWS}
	}
}

// renewIn is how long a session may last before its token must be renewed,
// or 0 when it never must.
func (br *Bridge) renewIn(l login) time.Duration {
	if br.cloud == nil || l.renewAt.IsZero() {
		return 0
	}
	return max(l.renewAt.Sub(br.cloud.now()), time.Millisecond)
}

package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/edged/edged/config"
	"github.com/edged/edged/tlsfiles"
)

// server is one upstream address.
type server struct {
	url     string // what paho is given: scheme://host:port[/path]
	display string // the same, safe to log (never carries credentials)
	scheme  string
	host    string // host:port
	tls     bool
	ws      bool
}

var defaultPorts = map[string]string{"mqtt": "1883", "mqtts": "8883", "ws": "80", "wss": "443"}

// parseServer reads one url key. Credentials in the URL are refused: they
// belong in username/password(_file), where they are not logged.
func parseServer(raw string) (server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return server{}, fmt.Errorf("%q is not a URL", raw)
	}
	port, ok := defaultPorts[u.Scheme]
	if !ok {
		return server{}, fmt.Errorf("%q: scheme %q is not one of mqtt, mqtts, ws, wss", raw, u.Scheme)
	}
	if u.User != nil {
		return server{}, errors.New("credentials in the URL are not accepted; use username and password or password_file")
	}
	if u.Hostname() == "" {
		return server{}, fmt.Errorf("%q has no host", raw)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), port)
	}
	s := server{scheme: u.Scheme, host: host, tls: u.Scheme == "mqtts" || u.Scheme == "wss", ws: strings.HasPrefix(u.Scheme, "ws")}
	s.url = u.Scheme + "://" + host
	if s.ws {
		s.url += u.EscapedPath()
		if u.RawQuery != "" {
			s.url += "?" + u.RawQuery
		}
	}
	s.display = s.url
	return s, nil
}

func parseServers(cfg config.Uplink) ([]server, error) {
	raws := cfg.URLs
	if cfg.URL != "" {
		raws = append([]string{cfg.URL}, raws...)
	}
	if len(raws) == 0 {
		return nil, errors.New("uplink: url or urls is required")
	}
	var out []server
	for i, r := range raws {
		s, err := parseServer(r)
		if err != nil {
			key := "uplink.url"
			if cfg.URL == "" || i > 0 {
				key = fmt.Sprintf("uplink.urls[%d]", i-btoi(cfg.URL != ""))
			}
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tlsConfig builds the client TLS configuration from the files named in
// cfg. It is called at New and again before every connection attempt, so a
// CA file that becomes unreadable or invalid is an error at that attempt,
// never a reason to connect without verifying the server (the hazard of
// Mosquitto 2.0.9, which silently skipped verification on reconnects).
func tlsConfig(cfg config.Uplink) (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         cfg.ServerName,
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // opt-in, warned about at every connect
	}
	if cfg.CAFile != "" {
		pool, err := tlsfiles.LoadCAPool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uplink.ca_file: %w", err)
		}
		c.RootCAs = pool
	}
	switch {
	case cfg.CertFile != "" && cfg.KeyFile != "":
		pair, err := tlsfiles.LoadKeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("uplink.cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	case cfg.CertFile != "":
		return nil, errors.New("uplink.cert_file is set without key_file")
	case cfg.KeyFile != "":
		return nil, errors.New("uplink.key_file is set without cert_file")
	}
	return c, nil
}

// explain turns a connection error into words for the log and the status
// topic, naming the common causes people need to act on.
func explain(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var inval x509.CertificateInvalidError
	var alert tls.AlertError
	msg := err.Error()
	switch {
	case errors.As(err, &unknown):
		return "TLS: the server's certificate is not signed by a trusted CA (check ca_file): " + msg
	case errors.As(err, &host):
		return "TLS: the server's certificate does not name this host (check the url or server_name): " + msg
	case errors.As(err, &inval):
		return "TLS: the server's certificate is not valid: " + msg
	case errors.As(err, &alert), strings.Contains(msg, "tls: certificate required"),
		strings.Contains(msg, "remote error: tls"):
		return "TLS: the server refused the handshake (a client certificate missing or not accepted? check cert_file/key_file): " + msg
	case strings.Contains(strings.ToLower(msg), "not authori"):
		return "the server refused the login: not authorized (check username and password): " + msg
	case strings.Contains(strings.ToLower(msg), "bad user name or password"):
		return "the server refused the login: bad username or password: " + msg
	}
	return msg
}

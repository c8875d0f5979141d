package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/edged/edged/config"
)

// Defaults applied when a key is absent (zero); config.Load applies the same.
const (
	DefaultAddress       = "127.0.0.1:1883"
	DefaultTLSAddress    = "127.0.0.1:8883"
	DefaultWSAddress     = "127.0.0.1:8080"
	DefaultMaxPacketSize = 1 << 20
	DefaultMaxClients    = 1000
	DefaultMaxInflight   = 64
	DefaultMaxQueued     = 1000
	DefaultExpiry        = 168 * time.Hour
)

// withDefaults returns cfg with every zero limit set to its default and one
// loopback tcp listener when none is configured.
func withDefaults(cfg config.Broker) config.Broker {
	if len(cfg.Listeners) == 0 {
		cfg.Listeners = []config.Listener{{Type: "tcp", Address: DefaultAddress}}
	} else {
		ls := make([]config.Listener, len(cfg.Listeners))
		copy(ls, cfg.Listeners)
		cfg.Listeners = ls
	}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if l.Type == "" {
			l.Type = "tcp"
		}
		if l.Address == "" {
			switch l.Type {
			case "tls":
				l.Address = DefaultTLSAddress
			case "ws":
				l.Address = DefaultWSAddress
			default:
				l.Address = DefaultAddress
			}
		}
	}
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.MaxQueuedBytes == 0 {
		cfg.MaxQueuedBytes = config.DefaultMaxQueuedBytes
	}
	if cfg.SessionExpiry.Duration == 0 {
		cfg.SessionExpiry.Duration = DefaultExpiry
	}
	if cfg.MessageExpiry.Duration == 0 {
		cfg.MessageExpiry.Duration = DefaultExpiry
	}
	if cfg.Persist == nil {
		t := true
		cfg.Persist = &t
	}
	if cfg.MaxKeepalive.Duration == 0 {
		cfg.MaxKeepalive.Duration = config.DefaultMaxKeepalive
	}
	if cfg.TopicAliasMaximum == nil {
		n := config.DefaultTopicAliasMaximum
		cfg.TopicAliasMaximum = &n
	}
	return cfg
}

// listenerSpec is a validated listener: what to bind and who may log in.
type listenerSpec struct {
	id        string
	kind      string
	addr      string
	tls       *tls.Config
	anonymous bool
	usersFile string
	aclFile   string
}

// checkLimits reports limits that are out of range after defaults.
func checkLimits(cfg config.Broker) error {
	var errs []error
	if cfg.MaxPacketSize < 16 || cfg.MaxPacketSize > 268435460 {
		errs = append(errs, fmt.Errorf("broker.max_packet_size: %d is out of range (16 bytes .. 256MiB)", cfg.MaxPacketSize))
	}
	if cfg.MaxClients < 0 {
		errs = append(errs, fmt.Errorf("broker.max_clients: %d is negative", cfg.MaxClients))
	}
	if cfg.MaxInflight < 0 || cfg.MaxInflight > 65535 {
		errs = append(errs, fmt.Errorf("broker.max_inflight: %d is out of range (1..65535)", cfg.MaxInflight))
	}
	if cfg.MaxQueued < 0 || cfg.MaxInflight+cfg.MaxQueued > 65535 {
		errs = append(errs, fmt.Errorf("broker.max_queued: %d is out of range (max_inflight + max_queued at most 65535, the MQTT packet id space)", cfg.MaxQueued))
	}
	return errors.Join(errs...)
}

// listenerSpecs validates the listeners (after withDefaults). Every problem
// is reported, each with its key path.
func listenerSpecs(cfg config.Broker) ([]listenerSpec, error) {
	var specs []listenerSpec
	var errs []error
	seen := map[string]int{}
	for i, l := range cfg.Listeners {
		key := fmt.Sprintf("broker.listener[%d]", i)
		s := listenerSpec{id: fmt.Sprintf("listener[%d]", i), kind: l.Type, addr: l.Address, usersFile: l.UsersFile, aclFile: l.ACLFile}
		host, port, err := net.SplitHostPort(l.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.address: %q is not host:port", key, l.Address))
			continue
		}
		if port != "0" {
			if j, dup := seen[l.Address]; dup {
				errs = append(errs, fmt.Errorf("%s.address: %q is already used by broker.listener[%d]", key, l.Address, j))
			}
			seen[l.Address] = i
		}
		loopback := isLoopback(host)
		switch {
		case l.AllowAnonymous != nil:
			s.anonymous = *l.AllowAnonymous
		default:
			s.anonymous = loopback && l.UsersFile == ""
		}
		if !loopback && l.UsersFile == "" && !s.anonymous {
			errs = append(errs, fmt.Errorf("%s: address %q is not loopback: set users_file (clients log in) or allow_anonymous = true (anyone on the network may connect)", key, l.Address))
		}
		switch l.Type {
		case "tcp", "ws":
			if l.CertFile != "" || l.KeyFile != "" || l.ClientCAFile != "" {
				errs = append(errs, fmt.Errorf("%s: cert_file, key_file and client_ca_file need type = \"tls\", not %q", key, l.Type))
			}
		case "tls":
			tc, err := serverTLS(l)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
			s.tls = tc
		default:
			errs = append(errs, fmt.Errorf("%s.type: %q is not one of tcp, tls, ws", key, l.Type))
		}
		if l.ACLFile != "" && l.UsersFile == "" && !s.anonymous {
			errs = append(errs, fmt.Errorf("%s.acl_file: set users_file too, or allow_anonymous = true: no client could log in", key))
		}
		specs = append(specs, s)
	}
	return specs, errors.Join(errs...)
}

// isLoopback reports whether a listen host only accepts local connections.
// An empty host or 0.0.0.0 listens on every interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serverTLS loads a tls listener's certificate and, when given, the client
// CA that every client certificate must chain to. A CA file that yields no
// certificate is an error, never a silently unverified listener.
func serverTLS(l config.Listener) (*tls.Config, error) {
	if l.CertFile == "" || l.KeyFile == "" {
		return nil, errors.New("type tls needs cert_file and key_file")
	}
	cert, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cert_file %s, key_file %s: %w", l.CertFile, l.KeyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if l.ClientCAFile != "" {
		pem, err := os.ReadFile(l.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca_file %s: no PEM certificate in it", l.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/edged/edged/config"
)

// Defaults applied when a limit is zero, as in a config built by hand
// rather than by config.Load (which applies the same ones).
const (
	DefaultTLSAddress    = "127.0.0.1:8883"
	DefaultWSAddress     = "127.0.0.1:8080"
	DefaultMaxPacketSize = 1 << 20
	DefaultMaxClients    = 1000
	DefaultMaxInflight   = 64
	DefaultMaxQueued     = 1000
	DefaultExpiry        = 168 * time.Hour
)

// withDefaults returns cfg with every zero limit set to its default. No
// listener is added: an empty list means in-process clients only
// (`listener = []`).
func withDefaults(cfg config.Broker) config.Broker {
	cfg.Listeners = append([]config.Listener(nil), cfg.Listeners...)
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
				l.Address = config.DefaultListenAddress
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

// listenerSpec is a listener ready to bind: what to bind and who may log in.
type listenerSpec struct {
	id   string
	kind string
	addr string
	tls  *tls.Config
	auth ListenerAuth
}

// listenerSpecs turns the validated listeners into specs. config checks
// every rule and loads every file; what is left to refuse here is a
// listener whose files were never loaded, which only a config built by
// hand rather than by config.Load can hold.
func listenerSpecs(cfg config.Broker) ([]listenerSpec, error) {
	var specs []listenerSpec
	var errs []error
	for i, l := range cfg.Listeners {
		key := fmt.Sprintf("broker.listener[%d]", i)
		s := listenerSpec{id: fmt.Sprintf("listener[%d]", i), kind: l.Type, addr: l.Address}
		s.auth = ListenerAuth{Users: l.Users, ACL: l.ACL}
		if l.AllowAnonymous != nil {
			s.auth.AllowAnonymous = *l.AllowAnonymous
		} else {
			host, _, _ := net.SplitHostPort(l.Address)
			s.auth.AllowAnonymous = isLoopback(host) && l.UsersFile == ""
		}
		var notLoaded []string
		if l.Type == "tls" {
			if l.Certificate == nil {
				notLoaded = append(notLoaded, "cert_file")
			} else {
				s.tls = serverTLS(*l.Certificate, l)
			}
		}
		if l.UsersFile != "" && l.Users == nil {
			notLoaded = append(notLoaded, "users_file")
		}
		if l.ACLFile != "" && l.ACL == nil {
			notLoaded = append(notLoaded, "acl_file")
		}
		if len(notLoaded) > 0 {
			errs = append(errs, fmt.Errorf("%s: %s not loaded (a config from config.Load has them)", key, strings.Join(notLoaded, ", ")))
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

// serverTLS is a tls listener's configuration: its certificate and, when
// client_ca_file was given, client certificates required and checked
// against it.
func serverTLS(cert tls.Certificate, l config.Listener) *tls.Config {
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if l.ClientCAs != nil {
		tc.ClientCAs = l.ClientCAs
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc
}

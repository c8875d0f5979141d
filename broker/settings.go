package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/edged/edged/config"
)

// listenerSpec is a listener ready to bind: what to bind and who may log in.
type listenerSpec struct {
	id   string
	kind string
	addr string
	tls  *tls.Config
	auth ListenerAuth
}

// listenerSpecs turns the validated listeners into specs. config checks
// every rule, loads every file and sets allow_anonymous (its default
// depends on the address and users_file); what is left to refuse here is a
// listener whose files were never loaded or whose allow_anonymous was never
// set, which only a config built by hand rather than by config.Load or
// config.DefaultBroker can hold.
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
			errs = append(errs, fmt.Errorf("%s: allow_anonymous not set (a config from config.Load or config.DefaultBroker has it)", key))
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

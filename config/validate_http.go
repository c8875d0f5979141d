package config

import "github.com/edged/edged/mqttauth"

// http checks [http]. An empty address turns the server off, and then the
// other keys would be ignored, which is worth saying. listeners are the
// broker's, whose ports the server must not share.
func (v *validator) http(h *HTTP, listeners []Listener) {
	if h.Address == "" {
		if v.set["http.address"] {
			v.errorf("http.address", `must not be empty (host:port, e.g. "127.0.0.1:8080"; leave the key out for no server)`)
			return
		}
		for _, k := range []string{"users_file", "allow_anonymous", "cert_file", "key_file"} {
			if v.set["http."+k] {
				v.errorf("http."+k, "is set, but http.address is not: the server is off")
			}
		}
		return
	}
	host, port, prob := splitHostPort(h.Address, false)
	if prob != "" {
		v.errorf("http.address", "%q %s (e.g. %q)", h.Address, prob, "127.0.0.1:8080")
		return
	}
	if !isLoopbackHost(host) && h.UsersFile == "" && (h.AllowAnonymous == nil || !*h.AllowAnonymous) {
		v.errorf("http.address", "%q is not loopback: set users_file (requests log in) or allow_anonymous = true (anyone on the network may read the gateway's state)", h.Address)
	}
	if h.CertFile != "" && h.KeyFile == "" {
		v.errorf("http.key_file", "missing (cert_file and key_file go together for HTTPS)")
	}
	if h.KeyFile != "" && h.CertFile == "" {
		v.errorf("http.cert_file", "missing (cert_file and key_file go together for HTTPS)")
	}
	if h.UsersFile != "" {
		h.Users = parseOnce(v, v.users, "http.users_file", h.UsersFile, mqttauth.ParseUsers)
	}
	if h.CertFile != "" && h.KeyFile != "" {
		if pair, ok := v.keyPair("http", h.CertFile, h.KeyFile); ok {
			h.Certificate = &pair
		}
	}
	for i, l := range listeners {
		lh, lp, lprob := splitHostPort(l.Address, false)
		if lprob == "" && lp == port && (lh == host || isWildcardHost(lh) || isWildcardHost(host)) {
			v.errorf("http.address", "%q overlaps %s.address (same port %d)", h.Address, index("broker.listener", i), port)
			break
		}
	}
}

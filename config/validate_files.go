package config

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/edged/edged/mqttauth"
	"github.com/edged/edged/tlsfiles"
)

// The files a config names are read while it is validated, so that `edged
// check` refuses a file `edged run` could not use, with the key that names
// it. What the broker needs of them is kept, parsed, in the config.

// readFile reads the file named at path, recording why it cannot be read.
func (v *validator) readFile(path, file string) ([]byte, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		v.errorf(path, "cannot read %s: %v", file, err)
		return nil, false
	}
	return data, true
}

// stateDir checks that state_dir is a directory or can be made one: edged
// run creates it (and its parents) when missing. Whether the user edged runs
// as may write there is left to run: check may be run by another user.
func (v *validator) stateDir(dir string) {
	for p := dir; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			return
		case err == nil && p == dir:
			v.errorf("gateway.state_dir", "%s is a file, not a directory", dir)
			return
		case err == nil:
			v.errorf("gateway.state_dir", "%s cannot be created: %s is a file, not a directory", dir, p)
			return
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) || p == filepath.Dir(p):
			return // unknowable here (permissions): run says why
		}
	}
}

// fileErrors records each problem of a parsed file (one per bad line) at
// the key that names the file.
func (v *validator) fileErrors(path string, err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			v.errorf(path, "%v", e)
		}
		return
	}
	v.errorf(path, "%v", err)
}

// listenerFiles loads a listener's certificate, client CA, users and ACL.
func (v *validator) listenerFiles(p string, l *Listener) {
	if l.Type == "tls" && l.CertFile != "" && l.KeyFile != "" {
		if pair, ok := v.keyPair(p, l.CertFile, l.KeyFile); ok {
			l.Certificate = &pair
		}
	}
	if l.Type == "tls" && l.ClientCAFile != "" {
		if pool, err := tlsfiles.LoadCAPool(l.ClientCAFile); err != nil {
			v.errorf(p+".client_ca_file", "%v", err)
		} else {
			l.ClientCAs = pool
		}
	}
	if l.UsersFile != "" {
		l.Users = parseOnce(v, v.users, p+".users_file", l.UsersFile, mqttauth.ParseUsers)
	}
	if l.ACLFile != "" {
		l.ACL = parseOnce(v, v.acls, p+".acl_file", l.ACLFile, mqttauth.ParseACL)
	}
}

// keyPair loads cert_file and key_file under p, putting a problem on the
// key of the file at fault.
func (v *validator) keyPair(p, certFile, keyFile string) (pair tls.Certificate, ok bool) {
	pair, err := tlsfiles.LoadKeyPair(certFile, keyFile)
	if err == nil {
		return pair, true
	}
	var fe *tlsfiles.FileError
	if errors.As(err, &fe) && fe.Key {
		v.errorf(p+".key_file", "%v", err)
		return pair, false
	}
	v.errorf(p+".cert_file", "%v", err)
	// The key was not looked at; say now if it cannot even be read, rather
	// than after the certificate is mended.
	v.readFile(p+".key_file", keyFile)
	return pair, false
}

// parseOnce reads and parses a file named at path, once per config however
// many listeners share it.
func parseOnce[T any](v *validator, done map[string]*T, path, file string, parse func(string, []byte) (*T, error)) *T {
	if t, ok := done[file]; ok {
		return t // a file that failed was reported where it first appeared
	}
	done[file] = nil
	data, ok := v.readFile(path, file)
	if !ok {
		return nil
	}
	t, err := parse(file, data)
	if err != nil {
		v.fileErrors(path, err)
		return nil
	}
	done[file] = t
	return t
}

// uplinkFiles checks that the uplink's TLS files load and loads its
// password file. The bridge loads the TLS files again before every
// connection, so that a CA file that goes bad later is never skipped.
func (v *validator) uplinkFiles(u *Uplink, tls bool) {
	if tls && u.CAFile != "" {
		if _, err := tlsfiles.LoadCAPool(u.CAFile); err != nil {
			v.errorf("uplink.ca_file", "%v", err)
		}
	}
	if tls && u.CertFile != "" && u.KeyFile != "" {
		v.keyPair("uplink", u.CertFile, u.KeyFile)
	}
	if u.PasswordFile != "" && u.Password == "" {
		if data, ok := v.readFile("uplink.password_file", u.PasswordFile); ok {
			// The line break an editor or `echo pw > file` leaves is not
			// part of the password.
			u.LoginPassword = Secret(strings.TrimRight(string(data), "\r\n"))
		}
	}
}

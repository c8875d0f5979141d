// Package tlsfiles loads the PEM files a TLS setup is made of: a CA bundle
// and a certificate with its private key. Its errors say which file is at
// fault and why (cannot be read, holds no certificate, the key does not
// match the certificate), so that config can put them on the right key.
//
// It reads files and nothing else: building a tls.Config, and deciding
// when to load again, is the caller's.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// FileError is a problem with one file of a TLS setup.
type FileError struct {
	Path string
	Key  bool // the private key file, rather than a certificate or CA file
	Err  error

	unreadable bool
}

func (e *FileError) Error() string {
	if e.unreadable {
		return "cannot read " + e.Path + ": " + e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *FileError) Unwrap() error { return e.Err }

// read reads a file, reporting a failure as "cannot read".
func read(path string, key bool) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &FileError{Path: path, Key: key, Err: err, unreadable: true}
	}
	return data, nil
}

// LoadCAPool reads a bundle of PEM certificates. A file that holds none is
// an error, never an empty pool that would trust nothing (or, with some
// libraries, the system's roots instead).
func LoadCAPool(path string) (*x509.CertPool, error) {
	data, err := read(path, false)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, &FileError{Path: path, Err: errors.New("no PEM certificate in it")}
	}
	return pool, nil
}

// LoadKeyPair reads a PEM certificate (chain) and its private key and checks
// that they belong together.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := read(certFile, false)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := checkCertificates(certPEM); err != nil {
		return tls.Certificate{}, &FileError{Path: certFile, Err: err}
	}
	keyPEM, err := read(keyFile, true)
	if err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The certificate parsed above, so what is left is the key: it does
		// not parse or does not match.
		return tls.Certificate{}, &FileError{Path: keyFile, Key: true, Err: err}
	}
	return pair, nil
}

// checkCertificates reports a file without a certificate, or one whose
// certificates do not parse.
func checkCertificates(data []byte) error {
	found := false
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate does not parse: %w", err)
		}
		found = true
	}
	if !found {
		return errors.New("no PEM certificate in it")
	}
	return nil
}

package testpki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"time"
)

// issueServer issues the TLS server certificate for localhost, 127.0.0.1
// and ::1. It comes from the same issuing CA as the cards so that one
// trusted root (root.pem) covers both directions of the demo's mutual TLS.
func (a *Authority) issueServer(validity time.Duration) (*Card, error) {
	key, err := newKey(false)
	if err != nil {
		return nil, err
	}
	now := a.clock()
	template := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost", Organization: []string{"cacgate test server"}},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return a.issueLeaf("server", "TLS server certificate for localhost, 127.0.0.1 and ::1", template, key)
}

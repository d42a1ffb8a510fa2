package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// LookAlikeChain is the chain-verification denial of service: a card that
// names the trusted root as its issuer, sent with n CA certificates that
// all copy the root's name (and key identifier) under keys of their own.
// A path builder that tries every candidate issuer checks a signature for
// each, on every handshake or request that verifies the chain. None of it
// verifies.
func (p *PKI) LookAlikeChain(n int) (leaf *x509.Certificate, intermediates []*x509.Certificate, err error) {
	now := time.Now()
	root := p.Root.Cert
	for i := range n {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(1000 + i)), Subject: root.Subject,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
			SubjectKeyId: root.SubjectKeyId,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return nil, nil, err
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, err
		}
		intermediates = append(intermediates, c)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: fmt.Sprintf("LOOK.ALIKE.%d", 1234567890)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		AuthorityKeyId: root.SubjectKeyId,
	}
	issuer := &x509.Certificate{Subject: root.Subject, SubjectKeyId: root.SubjectKeyId}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	leaf, err = x509.ParseCertificate(der)
	return leaf, intermediates, err
}

package revocation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
)

// issuerID identifies a CA by name and key: a truncated SHA-256 of both.
// Cache keys and the CRL index use it so that a CA that re-keys under the
// same name, or a forger's CA copying the name, never shares entries with
// the genuine one.
type issuerID [16]byte

// issuer is a CA certificate the checker has seen, either configured
// (Config.CRLIssuers) or learned from a chain passed to Check.
type issuer struct {
	id   issuerID
	cert *x509.Certificate
}

func newIssuer(cert *x509.Certificate) *issuer {
	h := sha256.New()
	var length [4]byte
	binary.BigEndian.PutUint32(length[:], uint32(len(cert.RawSubject)))
	h.Write(length[:])
	h.Write(cert.RawSubject)
	h.Write(cert.RawSubjectPublicKeyInfo)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return &issuer{id: issuerID(sum[:len(issuerID{})]), cert: cert}
}

// maxIssuers bounds the registry. Issuers reach it only from verified
// chains, so there are as many as trusted CAs (a few dozen for the DoD);
// the bound only guards against a caller passing unverified certificates.
const maxIssuers = 1024

// issuerRegistry remembers CA certificates so that Check can find an
// issuer's ID without hashing, and so that file CRLs can be verified against
// CAs learned from checked chains.
type issuerRegistry struct {
	mu        sync.RWMutex
	byKey     map[string][]*issuer // by RawSubjectPublicKeyInfo
	bySubject map[string][]*issuer // by RawSubject
	count     int
}

func newIssuerRegistry() *issuerRegistry {
	return &issuerRegistry{
		byKey:     make(map[string][]*issuer),
		bySubject: make(map[string][]*issuer),
	}
}

// lookup returns the registered issuer for cert, registering it if new.
// added reports a first sighting, which may unblock file CRLs waiting for
// this CA. The common case, a known issuer, takes a read lock and does not
// allocate.
func (r *issuerRegistry) lookup(cert *x509.Certificate) (iss *issuer, added bool) {
	r.mu.RLock()
	iss = r.find(cert)
	r.mu.RUnlock()
	if iss != nil {
		return iss, false
	}

	candidate := newIssuer(cert)
	r.mu.Lock()
	defer r.mu.Unlock()
	if iss = r.find(cert); iss != nil {
		return iss, false
	}
	if r.count >= maxIssuers {
		return candidate, false
	}
	r.byKey[string(cert.RawSubjectPublicKeyInfo)] = append(r.byKey[string(cert.RawSubjectPublicKeyInfo)], candidate)
	r.bySubject[string(cert.RawSubject)] = append(r.bySubject[string(cert.RawSubject)], candidate)
	r.count++
	return candidate, true
}

// find must be called with r.mu held.
func (r *issuerRegistry) find(cert *x509.Certificate) *issuer {
	for _, iss := range r.byKey[string(cert.RawSubjectPublicKeyInfo)] {
		if bytes.Equal(iss.cert.RawSubject, cert.RawSubject) {
			return iss
		}
	}
	return nil
}

// withSubject returns the issuers whose subject is the DER name, the
// candidates for verifying a CRL that names it as its issuer.
func (r *issuerRegistry) withSubject(name []byte) []*issuer {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]*issuer(nil), r.bySubject[string(name)]...)
}

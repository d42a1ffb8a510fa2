// Package npe recognises DoD non-person-entity (NPE) certificates: those
// of servers and devices, issued to a host or system name. It has one job:
// to tell such a certificate from a person's (a CAC or PIV card, whose
// certificates carry a DoD ID, a UPN, a FASC-N or a card UUID), failing
// closed, and to give the facts a registration matches it by.
package npe

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"regexp"
	"strings"

	"github.com/cacgate/cacgate/cacid"
)

var (
	// oidUPN is Microsoft's User Principal Name otherName; oidFASCN the
	// PIV FASC-N otherName. DER-encoded, as they appear in a SAN.
	oidUPN   = mustOID(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
	oidFASCN = mustOID(asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 6, 6})
	oidSAN   = asn1.ObjectIdentifier{2, 5, 29, 17}
	// A DoD ID in a name attribute: a run of exactly ten digits set off
	// by dots or the ends, as in DOE.JOHN.1234567890.
	edipiInName = regexp.MustCompile(`(^|\.)[0-9]{10}($|\.)`)
)

func mustOID(oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return b
}

// PersonMarks reports whether cert carries anything of a person: a DoD ID
// in a subject attribute, a UPN or FASC-N in its subject alternative name
// (matched on the OID's encoding, so a SAN Go cannot parse still counts),
// or a PIV card UUID.
func PersonMarks(cert *x509.Certificate) bool {
	for _, name := range cert.Subject.Names {
		if v, ok := name.Value.(string); ok && edipiInName.MatchString(v) {
			return true
		}
	}
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSAN) && (bytes.Contains(ext.Value, oidUPN) || bytes.Contains(ext.Value, oidFASCN)) {
			return true
		}
	}
	for _, u := range cert.URIs {
		if strings.EqualFold(u.Scheme, "urn") && strings.HasPrefix(strings.ToLower(u.Opaque), "uuid:") {
			return true
		}
	}
	return false
}

// Identity is the identity of a certificate that could be a non-person
// entity's, or nil if it could not: the facts a registration is matched
// by (fingerprint, subject, issuer, all as cacid writes them), of kind
// cacid.KindNPE and with no person (no EDIPI, no key).
func Identity(cert *x509.Certificate) *cacid.Identity {
	if cert == nil || len(cert.Raw) == 0 || PersonMarks(cert) {
		return nil
	}
	id := &cacid.Identity{
		Kind:      cacid.KindNPE,
		Subject:   cacid.DistinguishedName(cert.RawSubject, cert.Subject),
		Issuer:    cacid.DistinguishedName(cert.RawIssuer, cert.Issuer),
		Serial:    fmt.Sprintf("%x", cert.SerialNumber),
		NotBefore: cert.NotBefore,
		NotAfter:  cert.NotAfter,
	}
	id.FingerprintHex = cacid.Fingerprint(cert.Raw)
	if len(cert.EmailAddresses) > 0 {
		id.Email = cert.EmailAddresses[0]
	}
	return id
}

package gateway

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/store"
)

// Non-person entities (NPE): servers and devices that call the protected
// application with a DoD PKI certificate of their own (issued to a host or
// system name, carrying no DoD ID). Such a certificate is not a CAC
// identity and was refused as one; an administrator may register it (by
// fingerprint, or by subject and issuer) to a utility account, and then it
// is admitted as that account without the banner: there is no person at
// the other end to read it, and the system's sponsor accepted the terms
// for it when the account was created.
//
// A certificate that carries anything of a person (a DoD ID in its common
// name, a UPN or FASC-N, a PIV card UUID) is never taken as an NPE: a
// person's card that cacid refused stays refused.

// AuthNPE is X-Cac-Auth-Method for a non-person certificate.
const AuthNPE = "npe"

var (
	// oidUPN is Microsoft's User Principal Name otherName; oidFASCN the
	// PIV FASC-N otherName. DER-encoded, as they appear in a SAN.
	oidUPN   = mustOID(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
	oidFASCN = mustOID(asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 6, 6})
	// A DoD ID anywhere in the common name: ".1234567890" at the end, or
	// any run of exactly ten digits set off by a dot.
	edipiInName = regexp.MustCompile(`(^|\.)[0-9]{10}($|\.)`)
)

func mustOID(oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return b
}

// personMarks reports whether cert carries anything of a person.
func personMarks(cert *x509.Certificate) bool {
	for _, name := range cert.Subject.Names {
		if v, ok := name.Value.(string); ok && edipiInName.MatchString(v) {
			return true
		}
	}
	for _, ext := range cert.Extensions {
		// subjectAltName: a UPN or FASC-N otherName marks a person's card
		// (matched on the OID's encoding, so a SAN Go cannot parse still
		// counts: fail closed).
		if ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) &&
			(bytes.Contains(ext.Value, oidUPN) || bytes.Contains(ext.Value, oidFASCN)) {
			return true
		}
	}
	for _, u := range cert.URIs {
		if strings.EqualFold(u.Scheme, "urn") && strings.HasPrefix(strings.ToLower(u.Opaque), "uuid:") {
			return true // a PIV card UUID
		}
	}
	return false
}

// npeIdentity is the identity of a certificate that could be a non-person
// entity's, or nil if it could not: the facts a registration is matched
// by (fingerprint, subject, issuer) and no person.
func npeIdentity(cert *x509.Certificate) *cacid.Identity {
	if cert == nil || len(cert.Raw) == 0 || personMarks(cert) {
		return nil
	}
	id := &cacid.Identity{
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

// IsNPE reports whether id is a non-person certificate's identity (no DoD
// ID: every card identity has one).
func IsNPE(id *cacid.Identity) bool { return id != nil && id.EDIPI == "" }

// NPE reports whether the site entry's certificate was taken as a
// non-person entity's.
func (se *SiteEntry) NPE() bool { return se != nil && se.npe }

// npeAccount looks up the utility account a non-person certificate is
// registered to; nil if none.
func (c *Core) npeAccount(ctx context.Context, id *cacid.Identity) (*store.Account, error) {
	acct, err := c.cfg.Store.NPEAccount(ctx, id.FingerprintHex, id.Subject, id.Issuer)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("looking up non-person certificate: %w", err)
	case acct.Type != store.TypeUtility:
		return nil, nil // only utility accounts hold NPE registrations
	}
	return acct, nil
}

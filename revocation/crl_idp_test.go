package revocation

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
	"time"
)

func uriNames(uris ...string) []asn1.RawValue {
	var names []asn1.RawValue
	for _, u := range uris {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(u)})
	}
	return names
}

// issueSubCA issues a CA certificate under ca, as checked when the gateway
// checks the intermediates of a chain against the root's CRL.
func (ca *testCA) issueSubCA(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	return newCA(t, cn, ca).cert
}

// rootEndEntity issues an end-entity certificate directly under the root,
// which a CA-only CRL does not cover.
func rootEndEntity(t *testing.T, root *testCA) *x509.Certificate {
	t.Helper()
	return root.issueLeaf(t, leafOptions{})
}

// RFC 5280 section 6.3.3 (b)(2)(ii): a CRL whose issuing distribution point
// asserts onlyContainsUserCerts says nothing about CA certificates, so it
// cannot clear one.
func TestCRLUserCertsOnlyDoesNotCoverCACertificates(t *testing.T) {
	pki := newTestPKI(t)
	crl := pki.root.makeCRL(t, crlSpec{extensions: []pkix.Extension{issuingDistributionPoint(t, idp{OnlyContainsUserCerts: true})}})
	path := writeFile(t, t.TempDir(), "root.crl", crl)
	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{path}, CRLIssuers: []*x509.Certificate{pki.root.cert}})

	v := c.Check(context.Background(), pki.ca.cert, pki.root.cert)
	wantStatus(t, v, StatusUnavailable, "")
	if !errors.Is(v.Err, errNoCRL) {
		t.Errorf("Err = %v, want %v", v.Err, errNoCRL)
	}
	// It still covers the root's end-entity certificates.
	wantStatus(t, c.Check(context.Background(), rootEndEntity(t, pki.root), pki.root.cert), StatusGood, SourceCRL)
}

// An authority revocation list (onlyContainsCACerts), as roots publish,
// covers the root's CA certificates and nothing else.
func TestCRLCACertsOnlyCoversOnlyCACertificates(t *testing.T) {
	pki := newTestPKI(t)
	revokedCA := pki.root.issueSubCA(t, "TEST ID CA-2")
	arl := pki.root.makeCRL(t, crlSpec{
		revoked:    []x509.RevocationListEntry{revokedEntry(revokedCA.SerialNumber, 2)}, // cACompromise
		extensions: []pkix.Extension{issuingDistributionPoint(t, idp{OnlyContainsCACerts: true})},
	})
	path := writeFile(t, t.TempDir(), "root.arl", arl)
	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{path}, CRLIssuers: []*x509.Certificate{pki.root.cert}})

	wantStatus(t, c.Check(context.Background(), pki.ca.cert, pki.root.cert), StatusGood, SourceCRL)
	wantStatus(t, c.Check(context.Background(), revokedCA, pki.root.cert), StatusRevoked, SourceCRL)
	v := c.Check(context.Background(), rootEndEntity(t, pki.root), pki.root.cert)
	wantStatus(t, v, StatusUnavailable, "")
	if !errors.Is(v.Err, errNoCRL) {
		t.Errorf("end entity against an ARL: Err = %v, want %v", v.Err, errNoCRL)
	}
}

// With a full CRL and an ARL of the same CA loaded, each certificate is
// judged by the most recent CRL that covers it.
func TestCRLScopeFlagsWithFullCRLAndARL(t *testing.T) {
	pki := newTestPKI(t)
	revokedCA := pki.root.issueSubCA(t, "TEST ID CA-2")
	ee := rootEndEntity(t, pki.root)
	dir := t.TempDir()
	// The newer ARL does not list the end entity revoked in the older full CRL.
	writeFile(t, dir, "full.crl", pki.root.makeCRL(t, crlSpec{number: 1, thisUpdate: time.Now().Add(-2 * time.Hour),
		revoked: []x509.RevocationListEntry{revokedEntry(ee.SerialNumber, 1)}}))
	writeFile(t, dir, "root.crl", pki.root.makeCRL(t, crlSpec{number: 2, thisUpdate: time.Now().Add(-time.Hour),
		revoked:    []x509.RevocationListEntry{revokedEntry(revokedCA.SerialNumber, 2)},
		extensions: []pkix.Extension{issuingDistributionPoint(t, idp{OnlyContainsCACerts: true})}}))
	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{dir}, CRLIssuers: []*x509.Certificate{pki.root.cert}})
	wantStatus(t, c.Check(context.Background(), ee, pki.root.cert), StatusRevoked, SourceCRL)
	wantStatus(t, c.Check(context.Background(), revokedCA, pki.root.cert), StatusRevoked, SourceCRL)
	wantStatus(t, c.Check(context.Background(), pki.ca.cert, pki.root.cert), StatusGood, SourceCRL)
}

func TestCRLIDPWithBothOnlyFlagsIsMalformed(t *testing.T) {
	pki := newTestPKI(t)
	crl := pki.root.makeCRL(t, crlSpec{extensions: []pkix.Extension{issuingDistributionPoint(t, idp{OnlyContainsUserCerts: true, OnlyContainsCACerts: true})}})
	path := writeFile(t, t.TempDir(), "both.crl", crl)
	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{path}, CRLIssuers: []*x509.Certificate{pki.root.cert}})
	if st := c.Stats(); st.FailingSources != 1 || !strings.Contains(st.Sources[0].LastError, "malformed") {
		t.Errorf("stats = %+v, want the file refused as a malformed CRL", st)
	}
}

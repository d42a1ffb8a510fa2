package testpki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"time"
)

// Distinguished names of the test CAs. They imitate the DoD's own ("DoD
// Root CA 3", "DOD ID CA-70") closely enough to exercise the same code
// paths, while the "Test" prefix keeps them from being mistaken for the real
// ones in a certificate store.
const (
	rootCommonName         = "Test DoD Root CA 3"
	intermediateCommonName = "TEST DOD ID CA-70"
)

// caBackdate starts CA validity well in the past so that certificates
// issued "years ago", such as the expired card, still fall inside their
// issuer's validity window.
const caBackdate = 5 * year

// Authority is a certificate authority of the test PKI.
type Authority struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte

	// now anchors the default validity window of certificates issued by
	// IssueCard; zero means the time of issue.
	now time.Time
}

// Attribute types of the X.500 names the test PKI writes.
var (
	oidCountry            = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization       = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOrganizationalUnit = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCommonName         = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// dodName encodes C=US, O=U.S. Government, OU=DoD, OU=PKI, the extra units,
// then CN, each attribute in its own RDN and in that order, as DoD
// certificates do. pkix.Name cannot express this: it groups all OUs into a
// single RDN and puts them in its own fixed order.
func dodName(cn string, extraUnits ...string) ([]byte, error) {
	rdn := func(oid asn1.ObjectIdentifier, value string) pkix.RelativeDistinguishedNameSET {
		return pkix.RelativeDistinguishedNameSET{{Type: oid, Value: value}}
	}
	name := pkix.RDNSequence{
		rdn(oidCountry, "US"),
		rdn(oidOrganization, "U.S. Government"),
		rdn(oidOrganizationalUnit, "DoD"),
		rdn(oidOrganizationalUnit, "PKI"),
	}
	for _, unit := range extraUnits {
		name = append(name, rdn(oidOrganizationalUnit, unit))
	}
	name = append(name, rdn(oidCommonName, cn))
	return asn1.Marshal(name)
}

// newRoot creates a self-signed root CA valid until now+validity.
func newRoot(cn string, now time.Time, validity time.Duration) (*Authority, error) {
	key, err := newKey(false)
	if err != nil {
		return nil, err
	}
	template, err := caTemplate(cn, now, validity)
	if err != nil {
		return nil, err
	}
	cert, err := sign(template, template, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return newAuthority(cert, key, now), nil
}

// newIntermediate creates an issuing CA under a. MaxPathLen 0 means it can
// issue end-entity certificates only, like the DoD ID CAs.
func (a *Authority) newIntermediate(cn string, validity time.Duration) (*Authority, error) {
	key, err := newKey(false)
	if err != nil {
		return nil, err
	}
	template, err := caTemplate(cn, a.now, validity)
	if err != nil {
		return nil, err
	}
	template.MaxPathLen = 0
	template.MaxPathLenZero = true
	cert, err := sign(template, a.Cert, key.Public(), a.Key)
	if err != nil {
		return nil, err
	}
	return newAuthority(cert, key, a.now), nil
}

func caTemplate(cn string, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	subject, err := dodName(cn)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		RawSubject:            subject,
		NotBefore:             now.Add(-caBackdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil
}

func newAuthority(cert *x509.Certificate, key crypto.Signer, now time.Time) *Authority {
	return &Authority{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		now:     now,
	}
}

// sign fills in a random serial number (unless template has one) and the
// subject key identifier, has parent's key sign template, and returns the
// parsed result. crypto/x509 takes the authority key identifier from
// parent.SubjectKeyId.
func sign(template, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) (*x509.Certificate, error) {
	if template.SerialNumber == nil {
		serial, err := randomSerial()
		if err != nil {
			return nil, err
		}
		template.SerialNumber = serial
	}
	keyID, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	template.SubjectKeyId = keyID
	der, err := x509.CreateCertificate(rand.Reader, template, parent, pub, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// CRL returns a DER certificate revocation list signed by a, listing
// revoked (as key compromise, revoked an hour before thisUpdate), with the
// given update window and CRL number.
func (a *Authority) CRL(revoked []*x509.Certificate, thisUpdate, nextUpdate time.Time, number int64) ([]byte, error) {
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{
			SerialNumber:   c.SerialNumber,
			RevocationTime: thisUpdate.Add(-time.Hour),
			ReasonCode:     1, // keyCompromise
		})
	}
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		RevokedCertificateEntries: entries,
		Number:                    big.NewInt(number),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
	}, a.Cert, a.Key)
}

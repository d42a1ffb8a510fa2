package testpki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/cacgate/cacgate/cacid"
)

// Federal is the test PKI of the credentials other than DoD's, each under
// its own root and issuing CA (as the real ones are: the Federal Common
// Policy CA's agency PKIs, the PIV-I issuers cross-certified with the
// Federal Bridge, the ECA root's vendors):
//
//	piv.federal.jane    a federal agency PIV authentication certificate:
//	                    CN=JANE Q FEDERAL, OU=Department of Testing,
//	                    card UUID and FASC-N in the SAN, no EDIPI,
//	                    id-fpki-common-authentication
//	pivi.partner.pat    a PIV-I card: card UUID, id-fpki-certpcy-pivi-hardware
//	eca.contractor.carl an ECA certificate: issuer + subject, email,
//	                    id-eca-medium-hardware
//	piv.federal.jane.2  the same holder's renewed PIV card (a new UUID)
type Federal struct {
	PIVRoot, PIVCA   *Authority
	PIVIRoot, PIVICA *Authority
	ECARoot, ECACA   *Authority

	PIV, PIVRenewed, PIVI, ECA *Card
}

// Test values of the federal cards.
const (
	FederalPIVUUID        = "a0b1c2d3-e4f5-4a6b-8c7d-0e1f2a3b4c5d"
	FederalPIVRenewedUUID = "a0b1c2d3-e4f5-4a6b-8c7d-0e1f2a3b4c6e"
	FederalPIVIUUID       = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
	// FederalFASCN is agency 0999, system 0001, credential 000123,
	// series 1, issue 1, person 1234567890, category 1, org 0999,
	// association 1.
	FederalFASCN    = "09990001000123111234567890109991"
	FederalECAEmail = "carl.contractor@example.com"
)

// Certificate policies of the federal cards (see trust.Presets).
var (
	oidFPKICommonAuth = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 2, 1, 3, 13}
	oidPIVIHardware   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 2, 1, 3, 18}
	oidECAMediumHW    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 2, 1, 12, 2}
)

// GenerateFederal creates the federal test PKI, valid from now (zero:
// time.Now()).
func GenerateFederal(now time.Time) (*Federal, error) {
	return generateFederal(now, testValidity)
}

func generateFederal(now time.Time, v validity) (*Federal, error) {
	if now.IsZero() {
		now = time.Now()
	}
	f := &Federal{}
	var err error
	hierarchy := func(o, rootCN, caCN string) (*Authority, *Authority, error) {
		root, err := newNamedRoot(o, rootCN, now, v.ca)
		if err != nil {
			return nil, nil, err
		}
		ca, err := root.newNamedIntermediate(o, caCN, v.ca)
		return root, ca, err
	}
	if f.PIVRoot, f.PIVCA, err = hierarchy("U.S. Government", "Test Federal Common Policy CA G2", "TEST AGENCY PIV CA"); err != nil {
		return nil, fmt.Errorf("testpki: PIV CAs: %w", err)
	}
	if f.PIVIRoot, f.PIVICA, err = hierarchy("Test Partner Inc", "Test Partner PIV-I Root CA", "TEST PARTNER PIV-I CA"); err != nil {
		return nil, fmt.Errorf("testpki: PIV-I CAs: %w", err)
	}
	if f.ECARoot, f.ECACA, err = hierarchy("U.S. Government", "Test ECA Root CA 4", "TEST ECA CA 8"); err != nil {
		return nil, fmt.Errorf("testpki: ECA CAs: %w", err)
	}
	fascn, err := cacid.EncodeFASCN(FederalFASCN)
	if err != nil {
		return nil, err
	}
	specs := []struct {
		dst      **Card
		ca       *Authority
		name     string
		subject  []string // O, OU..., CN
		san      cacid.SubjectAltNames
		policies []asn1.ObjectIdentifier
	}{
		{&f.PIV, f.PIVCA, "piv.federal.jane", []string{"U.S. Government", "Department of Testing", "JANE Q FEDERAL"},
			cacid.SubjectAltNames{URIs: []*url.URL{uuidURI(FederalPIVUUID)}, FASCN: fascn}, []asn1.ObjectIdentifier{oidFPKICommonAuth}},
		{&f.PIVRenewed, f.PIVCA, "piv.federal.jane.2", []string{"U.S. Government", "Department of Testing", "JANE Q FEDERAL"},
			cacid.SubjectAltNames{URIs: []*url.URL{uuidURI(FederalPIVRenewedUUID)}}, []asn1.ObjectIdentifier{oidFPKICommonAuth}},
		{&f.PIVI, f.PIVICA, "pivi.partner.pat", []string{"Test Partner Inc", "Engineering", "Pat Partner"},
			cacid.SubjectAltNames{URIs: []*url.URL{uuidURI(FederalPIVIUUID)}}, []asn1.ObjectIdentifier{oidPIVIHardware}},
		{&f.ECA, f.ECACA, "eca.contractor.carl", []string{"U.S. Government", "ECA", "Example Contractor LLC", "Carl Contractor"},
			cacid.SubjectAltNames{Emails: []string{FederalECAEmail}}, []asn1.ObjectIdentifier{oidECAMediumHW}},
	}
	for _, s := range specs {
		if *s.dst, err = s.ca.issueCredential(s.name, s.subject, s.san, s.policies, v.card); err != nil {
			return nil, fmt.Errorf("testpki: %s: %w", s.name, err)
		}
	}
	return f, nil
}

func uuidURI(uuid string) *url.URL { return &url.URL{Scheme: "urn", Opaque: "uuid:" + uuid} }

// Cards are the federal cards in the order GenerateFederal lists them.
func (f *Federal) Cards() []*Card { return []*Card{f.PIV, f.PIVRenewed, f.PIVI, f.ECA} }

// Roots are the federal test roots.
func (f *Federal) Roots() []*Authority { return []*Authority{f.PIVRoot, f.PIVIRoot, f.ECARoot} }

// plainName encodes C=US, O=o, then each unit and finally the CN, one
// attribute per RDN; the last element of parts is the CN.
func plainName(o string, parts ...string) ([]byte, error) {
	rdn := func(oid asn1.ObjectIdentifier, value string) pkix.RelativeDistinguishedNameSET {
		return pkix.RelativeDistinguishedNameSET{{Type: oid, Value: value}}
	}
	name := pkix.RDNSequence{rdn(oidCountry, "US"), rdn(oidOrganization, o)}
	for _, unit := range parts[:len(parts)-1] {
		name = append(name, rdn(oidOrganizationalUnit, unit))
	}
	name = append(name, rdn(oidCommonName, parts[len(parts)-1]))
	return asn1.Marshal(name)
}

func newNamedRoot(o, cn string, now time.Time, validity time.Duration) (*Authority, error) {
	key, err := newKey(false)
	if err != nil {
		return nil, err
	}
	template, err := caTemplate(cn, now, validity)
	if err != nil {
		return nil, err
	}
	if template.RawSubject, err = plainName(o, "Certification Authorities", cn); err != nil {
		return nil, err
	}
	cert, err := sign(template, template, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return newAuthority(cert, key, now), nil
}

func (a *Authority) newNamedIntermediate(o, cn string, validity time.Duration) (*Authority, error) {
	key, err := newKey(false)
	if err != nil {
		return nil, err
	}
	template, err := caTemplate(cn, a.now, validity)
	if err != nil {
		return nil, err
	}
	if template.RawSubject, err = plainName(o, "Certification Authorities", cn); err != nil {
		return nil, err
	}
	template.MaxPathLen, template.MaxPathLenZero = 0, true
	cert, err := sign(template, a.Cert, key.Public(), a.Key)
	if err != nil {
		return nil, err
	}
	return newAuthority(cert, key, a.now), nil
}

// issueCredential issues a non-DoD authentication certificate: subject
// C=US, O=subject[0], the units, CN=the last; the SAN and policies given;
// clientAuth and smart card logon.
func (a *Authority) issueCredential(name string, subject []string, san cacid.SubjectAltNames, policies []asn1.ObjectIdentifier, validity time.Duration) (*Card, error) {
	rawSubject, err := plainName(subject[0], subject[1:]...)
	if err != nil {
		return nil, err
	}
	sanExt, err := san.Marshal()
	if err != nil {
		return nil, err
	}
	x509Pols, err := x509Policies(policies)
	if err != nil {
		return nil, err
	}
	key, err := newKey(false)
	if err != nil {
		return nil, err
	}
	now := a.clock()
	template := &x509.Certificate{
		RawSubject:         rawSubject,
		NotBefore:          now.Add(-defaultCardBackdate),
		NotAfter:           now.Add(validity),
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{cacid.OIDSmartcardLogon},
		Policies:           x509Pols,
		ExtraExtensions:    []pkix.Extension{sanExt},
	}
	return a.issueLeaf(name, "", template, key)
}

// FederalDir is where WriteDemo puts the federal cards, under its dir.
const FederalDir = "federal"

// WriteFederalDemo generates a long-lived federal test PKI and writes it
// to dir (the demo's testdata/pki/federal): roots.pem (the three test
// roots, for a trust pool), and each card's chain (.pem), key and .p12
// (password DemoP12Password) under cards/.
func WriteFederalDemo(dir string) error {
	f, err := generateFederal(time.Time{}, demoValidity)
	if err != nil {
		return err
	}
	var roots []*x509.Certificate
	for _, r := range f.Roots() {
		roots = append(roots, r.Cert)
	}
	files := []outputFile{{path: "roots.pem", data: certificatesPEM(roots...)}}
	for _, card := range f.Cards() {
		cf, err := cardFiles(card, DemoP12Password)
		if err != nil {
			return err
		}
		files = append(files, cf...)
	}
	if err := os.MkdirAll(filepath.Join(dir, "cards"), dirMode); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	for _, fl := range files {
		mode := publicFileMode
		if fl.private {
			mode = privateFileMode
		}
		if err := writeFileAtomic(filepath.Join(dir, filepath.FromSlash(fl.path)), fl.data, mode); err != nil {
			return fmt.Errorf("testpki: %w", err)
		}
	}
	return nil
}

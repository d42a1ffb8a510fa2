package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/cacgate/cacgate/cacid"
)

// Default validity of a card issued by IssueCard, relative to the
// authority's clock.
const (
	defaultCardBackdate = time.Hour
	defaultCardValidity = 3 * year
)

// "-" in CardSpec.Affiliation, UPN or Email leaves that field out of the
// certificate, for testing how cards without it are handled.
const omit = "-"

// Card is an end-entity certificate with its key: a CAC authentication
// certificate, or the server certificate.
type Card struct {
	Name        string // file stem, e.g. "doe.john.quincy"
	Description string // one line: which edge case the card covers
	Cert        *x509.Certificate
	Key         crypto.Signer
	Chain       []*x509.Certificate // leaf, then the issuing intermediate
	TLS         tls.Certificate     // leaf and intermediate, PrivateKey and Leaf set
	EDIPI       string              // empty for the server certificate
}

// CardSpec describes a card for IssueCard. Zero fields take the defaults
// documented on each; the defaults produce a well-formed CAC certificate.
type CardSpec struct {
	Name        string // file stem used by WriteDir: letters, digits, '.', '-', '_'
	Description string

	// Name parts and DoD ID, joined into LAST.FIRST[.MIDDLE][.SUFFIX].EDIPI.
	Family, Given, Middle, Suffix string
	EDIPI                         string

	Affiliation string // affiliation OU; default "USA", "-" for none
	CommonName  string // replaces the computed common name, for garbage tests
	UPN         string // default EDIPI+"@mil"; "-" for none
	Email       string // default given.family@mail.mil, lower case; "-" for none
	UUID        string // adds the URI SAN urn:uuid:UUID when set

	NotBefore, NotAfter time.Time // default now-1h and now+3y

	// ExtKeyUsage defaults to clientAuth when nil; an empty non-nil slice
	// means none. Smart card logon is added unless NoSmartcardLogon is set.
	ExtKeyUsage      []x509.ExtKeyUsage
	NoSmartcardLogon bool

	// Policies defaults to the DoD mediumHardware-112 and FPKI common
	// authentication policies when nil; an empty non-nil slice means none.
	Policies []asn1.ObjectIdentifier

	RSA bool // RSA-2048 key instead of ECDSA P-256

	// The fields below make certificates a conforming CA does not issue,
	// for testing that the gateway refuses them.

	// Key, when set, is the card's key instead of a new one (e.g. a weak
	// RSA-1024 or P-224 key).
	Key crypto.Signer
	// KeyUsage defaults to digitalSignature.
	KeyUsage x509.KeyUsage
	// IsCA marks the certificate basicConstraints cA TRUE.
	IsCA bool
	// Serial, when set, replaces the random serial number (zero included).
	Serial *big.Int
}

// IssueCard issues a CAC authentication certificate described by spec.
func (a *Authority) IssueCard(spec CardSpec) (*Card, error) {
	if err := checkFileStem(spec.Name); err != nil {
		return nil, err
	}
	var units []string
	if affiliation := valueOr(spec.Affiliation, "USA"); affiliation != omit {
		units = append(units, affiliation)
	}
	subject, err := dodName(spec.commonName(), units...)
	if err != nil {
		return nil, fmt.Errorf("testpki: card %s: subject: %w", spec.Name, err)
	}
	policies, err := x509Policies(spec.Policies)
	if err != nil {
		return nil, fmt.Errorf("testpki: card %s: %w", spec.Name, err)
	}
	key := spec.Key
	if key == nil {
		if key, err = newKey(spec.RSA); err != nil {
			return nil, err
		}
	}
	now := a.clock()
	template := &x509.Certificate{
		RawSubject:   subject,
		SerialNumber: spec.Serial,
		NotBefore:    timeOr(spec.NotBefore, now.Add(-defaultCardBackdate)),
		NotAfter:     timeOr(spec.NotAfter, now.Add(defaultCardValidity)),
		KeyUsage:     spec.KeyUsage,
		ExtKeyUsage:  spec.ExtKeyUsage,
		Policies:     policies,
	}
	if template.KeyUsage == 0 {
		template.KeyUsage = x509.KeyUsageDigitalSignature
	}
	if spec.IsCA {
		template.BasicConstraintsValid, template.IsCA = true, true
	}
	if template.ExtKeyUsage == nil {
		template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if !spec.NoSmartcardLogon {
		template.UnknownExtKeyUsage = []asn1.ObjectIdentifier{cacid.OIDSmartcardLogon}
	}
	san, hasSAN, err := spec.subjectAltName()
	if err != nil {
		return nil, fmt.Errorf("testpki: card %s: %w", spec.Name, err)
	}
	if hasSAN {
		template.ExtraExtensions = []pkix.Extension{san}
	}
	card, err := a.issueLeaf(spec.Name, spec.Description, template, key)
	if err != nil {
		return nil, fmt.Errorf("testpki: card %s: %w", spec.Name, err)
	}
	card.EDIPI = spec.EDIPI
	return card, nil
}

// issueLeaf signs template for key and assembles the Card around it.
func (a *Authority) issueLeaf(name, description string, template *x509.Certificate, key crypto.Signer) (*Card, error) {
	cert, err := sign(template, a.Cert, key.Public(), a.Key)
	if err != nil {
		return nil, err
	}
	return &Card{
		Name:        name,
		Description: description,
		Cert:        cert,
		Key:         key,
		Chain:       []*x509.Certificate{cert, a.Cert},
		TLS: tls.Certificate{
			Certificate: [][]byte{cert.Raw, a.Cert.Raw},
			PrivateKey:  key,
			Leaf:        cert,
		},
	}, nil
}

func (a *Authority) clock() time.Time {
	if a.now.IsZero() {
		return time.Now()
	}
	return a.now
}

func (spec CardSpec) commonName() string {
	if spec.CommonName != "" {
		return spec.CommonName
	}
	var parts []string
	for _, part := range []string{spec.Family, spec.Given, spec.Middle, spec.Suffix, spec.EDIPI} {
		if part != "" {
			parts = append(parts, part)
		}
	}
	return strings.Join(parts, ".")
}

// subjectAltName builds the SAN extension; hasSAN is false when the spec
// asks for no alternative names at all.
func (spec CardSpec) subjectAltName() (ext pkix.Extension, hasSAN bool, err error) {
	var upns, emails []string
	var uris []*url.URL
	if upn := spec.defaultUPN(); upn != "" {
		upns = append(upns, upn)
	}
	if email := spec.defaultEmail(); email != "" {
		emails = append(emails, email)
	}
	if spec.UUID != "" {
		uris = append(uris, &url.URL{Scheme: "urn", Opaque: "uuid:" + spec.UUID})
	}
	if len(upns)+len(emails)+len(uris) == 0 {
		return pkix.Extension{}, false, nil
	}
	ext, err = cacid.MarshalSubjectAltName(upns, emails, uris)
	if err != nil {
		return pkix.Extension{}, false, err
	}
	return ext, true, nil
}

func (spec CardSpec) defaultUPN() string {
	switch {
	case spec.UPN == omit:
		return ""
	case spec.UPN != "":
		return spec.UPN
	case spec.EDIPI != "":
		return spec.EDIPI + "@mil"
	}
	return ""
}

// defaultEmail imitates DoD Enterprise Email, given.family@mail.mil, keeping
// only the characters that are safe in an address ("MARY ANN", "O'BRIEN-SMITH"
// become "maryann.obrien-smith").
func (spec CardSpec) defaultEmail() string {
	switch {
	case spec.Email == omit:
		return ""
	case spec.Email != "":
		return spec.Email
	}
	given, family := emailLocalPart(spec.Given), emailLocalPart(spec.Family)
	if given == "" || family == "" {
		return ""
	}
	return given + "." + family + "@mail.mil"
}

func emailLocalPart(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9', r == '-':
			return r
		case 'A' <= r && r <= 'Z':
			return r - 'A' + 'a'
		}
		return -1
	}, name)
}

func x509Policies(oids []asn1.ObjectIdentifier) ([]x509.OID, error) {
	if oids == nil {
		oids = []asn1.ObjectIdentifier{cacid.OIDPolicyMediumHardware112, cacid.OIDPolicyFPKICommonAuth}
	}
	policies := make([]x509.OID, 0, len(oids))
	for _, oid := range oids {
		policy, err := x509.OIDFromASN1OID(oid)
		if err != nil {
			return nil, fmt.Errorf("policy %v: %w", oid, err)
		}
		policies = append(policies, policy)
	}
	return policies, nil
}

// checkFileStem keeps card names usable as file names on every platform
// and free of path separators, since WriteDir turns them into paths.
func checkFileStem(name string) error {
	if name == "" || len(name) > 100 || name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("testpki: card name %q must be 1-100 characters and not start with '.' or '-'", name)
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z') && !('A' <= r && r <= 'Z') && !('0' <= r && r <= '9') && !strings.ContainsRune(".-_", r) {
			return fmt.Errorf("testpki: card name %q may contain only letters, digits, '.', '-' and '_'", name)
		}
	}
	return nil
}

func valueOr(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}

func timeOr(value, fallback time.Time) time.Time {
	if value.IsZero() {
		return fallback
	}
	return value
}

// IssueNonconforming issues cards that a trusted CA signed and
// crypto/x509 verifies, but that RFC 5280 and the DoD PKI rule out as
// client certificates, each otherwise a well-formed CAC: a CA certificate
// (basicConstraints cA TRUE), keys allowed to sign certificates or CRLs, an
// RSA-1024 and a P-224 key, and serial number zero. Their Names say which.
func (a *Authority) IssueNonconforming() ([]*Card, error) {
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		return nil, err
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		return nil, err
	}
	specs := []CardSpec{
		{Name: "ca-true.carl", Description: "basicConstraints cA TRUE", Family: "CATRUE", Given: "CARL", EDIPI: "1234567811", IsCA: true},
		{Name: "keycertsign.kim", Description: "keyCertSign key usage", Family: "CERTSIGN", Given: "KIM", EDIPI: "1234567812",
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign},
		{Name: "crlsign.chris", Description: "cRLSign key usage", Family: "CRLSIGN", Given: "CHRIS", EDIPI: "1234567813",
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign},
		{Name: "rsa1024.ray", Description: "RSA-1024 key", Family: "RSA", Given: "RAY", EDIPI: "1234567814", Key: rsa1024},
		{Name: "p224.pat", Description: "ECDSA P-224 key", Family: "PTWO", Given: "PAT", EDIPI: "1234567815", Key: p224},
		{Name: "serial0.zed", Description: "serial number zero", Family: "SERIAL", Given: "ZED", EDIPI: "1234567816", Serial: new(big.Int)},
	}
	cards := make([]*Card, 0, len(specs))
	for _, spec := range specs {
		c, err := a.IssueCard(spec)
		if err != nil {
			return nil, err
		}
		cards = append(cards, c)
	}
	return cards, nil
}

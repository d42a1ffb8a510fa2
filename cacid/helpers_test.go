package cacid_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/testpki"
)

// sharedPKI is generated once per test binary; its RSA card makes
// generation too slow to repeat in every test.
var sharedPKI = sync.OnceValues(func() (*testpki.PKI, error) {
	return testpki.Generate(testpki.Options{})
})

func testPKI(t testing.TB) *testpki.PKI {
	t.Helper()
	p, err := sharedPKI()
	if err != nil {
		t.Fatalf("testpki.Generate: %v", err)
	}
	return p
}

// issue issues a card from the test PKI's intermediate.
func issue(t testing.TB, spec testpki.CardSpec) *x509.Certificate {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "test"
	}
	card, err := testPKI(t).Intermediate.IssueCard(spec)
	if err != nil {
		t.Fatalf("IssueCard: %v", err)
	}
	return card.Cert
}

// issueRaw issues a certificate with an arbitrary subject and extra
// extensions, for shapes testpki.CardSpec cannot express.
func issueRaw(t testing.TB, subject pkix.RDNSequence, extensions ...pkix.Extension) *x509.Certificate {
	t.Helper()
	rawSubject, err := asn1.Marshal(subject)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issuer := testPKI(t).Intermediate
	template := &x509.Certificate{
		SerialNumber:    big.NewInt(time.Now().UnixNano()),
		RawSubject:      rawSubject,
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(time.Hour),
		ExtraExtensions: extensions,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, issuer.Cert, key.Public(), issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

var (
	oidCountry = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrg     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU      = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN      = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// cacSubject builds C, O, OU=DoD, OU=PKI, the given units, then each
// common name, one attribute per RDN.
func cacSubject(units []string, commonNames ...string) pkix.RDNSequence {
	name := pkix.RDNSequence{
		{{Type: oidCountry, Value: "US"}},
		{{Type: oidOrg, Value: "U.S. Government"}},
		{{Type: oidOU, Value: "DoD"}},
		{{Type: oidOU, Value: "PKI"}},
	}
	for _, unit := range units {
		name = append(name, pkix.RelativeDistinguishedNameSET{{Type: oidOU, Value: unit}})
	}
	for _, cn := range commonNames {
		name = append(name, pkix.RelativeDistinguishedNameSET{{Type: oidCN, Value: cn}})
	}
	return name
}

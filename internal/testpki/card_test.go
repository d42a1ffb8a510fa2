package testpki_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/testpki"
)

func TestIssueCardOptions(t *testing.T) {
	p := generated(t)
	tests := []struct {
		name  string
		spec  testpki.CardSpec
		check func(t *testing.T, cert *x509.Certificate)
	}{
		{
			name: "defaults",
			spec: testpki.CardSpec{Family: "ROE", Given: "RICHARD", EDIPI: "2000000001"},
			check: func(t *testing.T, cert *x509.Certificate) {
				assertSAN(t, cert, []string{"2000000001@mil"}, []string{"richard.roe@mail.mil"}, nil)
				if got := cert.Subject.OrganizationalUnit; len(got) != 3 || got[2] != "USA" {
					t.Errorf("OUs = %q, want DoD, PKI, USA", got)
				}
			},
		},
		{
			name: "omitted fields",
			spec: testpki.CardSpec{Family: "ROE", Given: "RICHARD", EDIPI: "2000000001", UPN: "-", Email: "-", Affiliation: "-"},
			check: func(t *testing.T, cert *x509.Certificate) {
				for _, ext := range cert.Extensions {
					if ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) {
						t.Error("certificate has a SAN extension")
					}
				}
				if got := cert.Subject.OrganizationalUnit; len(got) != 2 {
					t.Errorf("OUs = %q, want DoD, PKI", got)
				}
			},
		},
		{
			name: "overrides",
			spec: testpki.CardSpec{
				CommonName: "NOT A CAC NAME", UPN: "someone@example.com", Email: "x@example.com",
				UUID: "00000000-0000-4000-8000-000000000000", Affiliation: "DISA",
			},
			check: func(t *testing.T, cert *x509.Certificate) {
				if cert.Subject.CommonName != "NOT A CAC NAME" {
					t.Errorf("CN = %q", cert.Subject.CommonName)
				}
				assertSAN(t, cert, []string{"someone@example.com"}, []string{"x@example.com"},
					[]string{"urn:uuid:00000000-0000-4000-8000-000000000000"})
			},
		},
		{
			name: "no smartcard logon, no policies, RSA",
			spec: testpki.CardSpec{
				Family: "ROE", Given: "RICHARD", EDIPI: "2000000001", NoSmartcardLogon: true,
				ExtKeyUsage: []x509.ExtKeyUsage{}, Policies: []asn1.ObjectIdentifier{}, RSA: true,
			},
			check: func(t *testing.T, cert *x509.Certificate) {
				if len(cert.ExtKeyUsage)+len(cert.UnknownExtKeyUsage)+len(cert.PolicyIdentifiers) != 0 {
					t.Errorf("EKU %v %v, policies %v: want none", cert.ExtKeyUsage, cert.UnknownExtKeyUsage, cert.PolicyIdentifiers)
				}
				if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
					t.Errorf("public key is %T, want RSA", cert.PublicKey)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = "custom"
			card, err := p.Intermediate.IssueCard(tt.spec)
			if err != nil {
				t.Fatalf("IssueCard: %v", err)
			}
			tt.check(t, card.Cert)
		})
	}
}

func assertSAN(t *testing.T, cert *x509.Certificate, upns, emails, uris []string) {
	t.Helper()
	gotUPNs, err := cacid.UPNs(cert)
	if err != nil {
		t.Fatalf("UPNs: %v", err)
	}
	var gotURIs []string
	for _, uri := range cert.URIs {
		gotURIs = append(gotURIs, uri.String())
	}
	if strings.Join(gotUPNs, ",") != strings.Join(upns, ",") ||
		strings.Join(cert.EmailAddresses, ",") != strings.Join(emails, ",") ||
		strings.Join(gotURIs, ",") != strings.Join(uris, ",") {
		t.Errorf("SAN = UPNs %q, emails %q, URIs %q; want %q, %q, %q", gotUPNs, cert.EmailAddresses, gotURIs, upns, emails, uris)
	}
}

func TestIssueCardRejectsUnsafeNames(t *testing.T) {
	p := generated(t)
	for _, name := range []string{"", "../escape", "a/b", `a\b`, ".hidden", "-flag", "spa ce", strings.Repeat("x", 101)} {
		if _, err := p.Intermediate.IssueCard(testpki.CardSpec{Name: name, Family: "A", Given: "B", EDIPI: "2000000001"}); err == nil {
			t.Errorf("IssueCard accepted name %q", name)
		}
	}
}

package cacid_test

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net/url"
	"testing"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/testpki"
)

func TestParseStandardCard(t *testing.T) {
	cert := testPKI(t).Card("doe.john.quincy").Cert
	got, err := cacid.Parse(cert)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	fingerprint := sha256.Sum256(cert.Raw)
	want := cacid.Identity{
		Kind:           cacid.KindCAC,
		Key:            "1234567890",
		EDIPI:          "1234567890",
		FamilyName:     "DOE",
		GivenName:      "JOHN",
		MiddleName:     "QUINCY",
		Affiliation:    "USA",
		UPN:            "1234567890@mil",
		Email:          "john.doe@mail.mil",
		Fingerprint:    fingerprint,
		FingerprintHex: hex.EncodeToString(fingerprint[:]),
		Subject:        "CN=DOE.JOHN.QUINCY.1234567890,OU=USA,OU=PKI,OU=DoD,O=U.S. Government,C=US",
		Issuer:         "CN=TEST DOD ID CA-70,OU=PKI,OU=DoD,O=U.S. Government,C=US",
		Serial:         cert.SerialNumber.Text(16),
		NotBefore:      cert.NotBefore,
		NotAfter:       cert.NotAfter,
	}
	if *got != want {
		t.Errorf("Parse =\n%+v\nwant\n%+v", *got, want)
	}
}

func TestParseAccepts(t *testing.T) {
	john := testpki.CardSpec{Family: "DOE", Given: "JOHN", Middle: "QUINCY", EDIPI: "1234567890"}
	with := func(edit func(*testpki.CardSpec)) testpki.CardSpec {
		spec := john
		edit(&spec)
		return spec
	}
	upnSAN := func(t *testing.T, upns ...string) pkix.Extension {
		ext, err := cacid.MarshalSubjectAltName(upns, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ext
	}
	tests := []struct {
		name  string
		cert  func(t *testing.T) *x509.Certificate
		check func(t *testing.T, id *cacid.Identity)
	}{
		{
			name: "no UPN",
			cert: func(t *testing.T) *x509.Certificate { return issue(t, with(func(s *testpki.CardSpec) { s.UPN = "-" })) },
			check: func(t *testing.T, id *cacid.Identity) {
				if id.UPN != "" || id.EDIPI != "1234567890" {
					t.Errorf("UPN %q, EDIPI %q; want none and the CN's", id.UPN, id.EDIPI)
				}
			},
		},
		{
			name: "the same UPN twice",
			cert: func(t *testing.T) *x509.Certificate {
				return issueRaw(t, cacSubject([]string{"USA"}, "DOE.JOHN.1234567890"), upnSAN(t, "1234567890@mil", "1234567890@mil"))
			},
			check: func(t *testing.T, id *cacid.Identity) {
				if id.UPN != "1234567890@mil" {
					t.Errorf("UPN = %q", id.UPN)
				}
			},
		},
		{
			name: "no affiliation, email or UUID",
			cert: func(t *testing.T) *x509.Certificate {
				return issue(t, with(func(s *testpki.CardSpec) { s.Affiliation, s.Email = "-", "-" }))
			},
			check: func(t *testing.T, id *cacid.Identity) {
				if id.Affiliation != "" || id.Email != "" || id.CardUUID != "" {
					t.Errorf("affiliation %q, email %q, UUID %q; want none", id.Affiliation, id.Email, id.CardUUID)
				}
			},
		},
		{
			name: "civilian affiliation with punctuation",
			cert: func(t *testing.T) *x509.Certificate {
				return issue(t, with(func(s *testpki.CardSpec) { s.Affiliation = "DHA (J-6)" }))
			},
			check: func(t *testing.T, id *cacid.Identity) {
				if id.Affiliation != "DHA (J-6)" {
					t.Errorf("affiliation = %q", id.Affiliation)
				}
			},
		},
		{
			name: "nearest of several units",
			cert: func(t *testing.T) *x509.Certificate {
				return issueRaw(t, cacSubject([]string{"DISA", "CONTRACTOR"}, "DOE.JOHN.1234567890"))
			},
			check: func(t *testing.T, id *cacid.Identity) {
				if id.Affiliation != "CONTRACTOR" {
					t.Errorf("affiliation = %q, want the unit nearest the CN", id.Affiliation)
				}
			},
		},
		{
			name: "subject encoded in reverse",
			cert: func(t *testing.T) *x509.Certificate {
				forward := cacSubject([]string{"USN"}, "DOE.JOHN.1234567890")
				var reversed pkix.RDNSequence
				for i := len(forward) - 1; i >= 0; i-- {
					reversed = append(reversed, forward[i])
				}
				return issueRaw(t, reversed)
			},
			check: func(t *testing.T, id *cacid.Identity) {
				if id.Affiliation != "USN" {
					t.Errorf("affiliation = %q", id.Affiliation)
				}
				if id.Subject != "C=US,O=U.S. Government,OU=DoD,OU=PKI,OU=USN,CN=DOE.JOHN.1234567890" {
					t.Errorf("subject = %q", id.Subject)
				}
			},
		},
		{
			name: "upper-case UUID",
			cert: func(t *testing.T) *x509.Certificate {
				return issue(t, with(func(s *testpki.CardSpec) { s.UUID = "A6C3B0E2-5F4D-4E8A-9B71-2C0D8E6F1A34" }))
			},
			check: func(t *testing.T, id *cacid.Identity) {
				if id.CardUUID != "a6c3b0e2-5f4d-4e8a-9b71-2c0d8e6f1a34" {
					t.Errorf("CardUUID = %q", id.CardUUID)
				}
			},
		},
		{
			name: "multi-valued RDN keeps its structure",
			cert: func(t *testing.T) *x509.Certificate {
				subject := cacSubject(nil, "DOE.JOHN.1234567890")
				subject[3] = append(subject[3], pkix.AttributeTypeAndValue{Type: oidOU, Value: "USA"})
				return issueRaw(t, subject)
			},
			check: func(t *testing.T, id *cacid.Identity) {
				if id.Subject != "CN=DOE.JOHN.1234567890,OU=PKI+OU=USA,OU=DoD,O=U.S. Government,C=US" {
					t.Errorf("subject = %q", id.Subject)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := cacid.Parse(tt.cert(t))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, id)
		})
	}
}

func TestParseRejects(t *testing.T) {
	john := testpki.CardSpec{Family: "DOE", Given: "JOHN", Middle: "QUINCY", EDIPI: "1234567890"}
	with := func(edit func(*testpki.CardSpec)) func(t *testing.T) *x509.Certificate {
		return func(t *testing.T) *x509.Certificate {
			spec := john
			edit(&spec)
			return issue(t, spec)
		}
	}
	withSAN := func(cn string, upns, emails []string, uris ...string) func(t *testing.T) *x509.Certificate {
		return func(t *testing.T) *x509.Certificate {
			var parsed []*url.URL
			for _, uri := range uris {
				u, err := url.Parse(uri)
				if err != nil {
					t.Fatal(err)
				}
				parsed = append(parsed, u)
			}
			ext, err := cacid.MarshalSubjectAltName(upns, emails, parsed)
			if err != nil {
				t.Fatal(err)
			}
			return issueRaw(t, cacSubject([]string{"USA"}, cn), ext)
		}
	}
	standard := func(t *testing.T) *x509.Certificate { return testPKI(t).Card("doe.john.quincy").Cert }
	tampered := func(edit func(*x509.Certificate)) func(t *testing.T) *x509.Certificate {
		return func(t *testing.T) *x509.Certificate {
			cert := *standard(t)
			edit(&cert)
			return &cert
		}
	}

	tests := []struct {
		name   string
		cert   func(t *testing.T) *x509.Certificate
		reason string
	}{
		{"nil certificate", func(*testing.T) *x509.Certificate { return nil }, "no certificate"},
		{"unparsed certificate", func(*testing.T) *x509.Certificate { return &x509.Certificate{} }, "no certificate"},
		{"CN without EDIPI", with(func(s *testpki.CardSpec) { s.CommonName = "DOE.JOHN.QUINCY" }), "10-digit DoD ID"},
		{"CN with markup", with(func(s *testpki.CardSpec) { s.CommonName = "DOE.<script>.1234567890" }), "not allowed"},
		{"no CN", func(t *testing.T) *x509.Certificate { return issueRaw(t, cacSubject([]string{"USA"})) }, "no common name"},
		{"two CNs", func(t *testing.T) *x509.Certificate {
			return issueRaw(t, cacSubject([]string{"USA"}, "DOE.JOHN.1234567890", "ROE.RICHARD.1234567899"))
		}, "more than one common name"},
		{"UPN names another EDIPI", with(func(s *testpki.CardSpec) { s.UPN = "1234567899@mil" }), "UPN (1234567899@mil) and the common name (DoD ID 1234567890) disagree"},
		{"PIV UPN names another EDIPI", with(func(s *testpki.CardSpec) { s.UPN = "1234567899123456@mil" }), "disagree"},
		{"UPN is a user name", with(func(s *testpki.CardSpec) { s.UPN = "john.doe@mil" }), "neither a 10-digit"},
		{"UPN has 12 digits", with(func(s *testpki.CardSpec) { s.UPN = "123456789012@mil" }), "neither a 10-digit"},
		{"UPN has no domain", with(func(s *testpki.CardSpec) { s.UPN = "1234567890" }), "form ID@domain"},
		{"UPN has two @", with(func(s *testpki.CardSpec) { s.UPN = "1234567890@mil@evil" }), "form ID@domain"},
		{"UPN domain has spaces", with(func(s *testpki.CardSpec) { s.UPN = "1234567890@m il" }), "form ID@domain"},
		{"UPN too long", with(func(s *testpki.CardSpec) { s.UPN = "1234567890@" + longDomain() }), "too long"},
		{"conflicting UPNs", withSAN("DOE.JOHN.1234567890", []string{"1234567890@mil", "1234567891@mil"}, nil), "more than one UPN"},
		{"CAC and PIV UPN together", withSAN("DOE.JOHN.1234567890", []string{"1234567890@mil", "1234567890123456@mil"}, nil), "more than one UPN"},
		{"UPN is not a UTF8String", func(t *testing.T) *x509.Certificate {
			ext := pkix.Extension{Id: oidSAN, Value: mustHex(t, "3017a015060a2b060104018237140203a007160531406d696c")}
			return issueRaw(t, cacSubject([]string{"USA"}, "DOE.JOHN.1234567890"), ext)
		}, "malformed"},
		{"affiliation with markup", with(func(s *testpki.CardSpec) { s.Affiliation = "US<A>" }), "organizational unit contains"},
		{"padded affiliation", with(func(s *testpki.CardSpec) { s.Affiliation = "USA " }), "organizational unit is empty, too long or padded"},
		{"empty affiliation", func(t *testing.T) *x509.Certificate {
			return issueRaw(t, cacSubject([]string{""}, "DOE.JOHN.1234567890"))
		}, "organizational unit is empty"},
		{"email with a space", with(func(s *testpki.CardSpec) { s.Email = "john doe@mail.mil" }), "email address is malformed"},
		{"email without domain", with(func(s *testpki.CardSpec) { s.Email = "john@" }), "email address is malformed"},
		{"email with control character", with(func(s *testpki.CardSpec) { s.Email = "jo\x01hn@mail.mil" }), "email address is malformed"},
		{"malformed UUID", with(func(s *testpki.CardSpec) { s.UUID = "not-a-uuid" }), "card UUID is malformed"},
		{"conflicting UUIDs", withSAN("DOE.JOHN.1234567890", nil, nil,
			"urn:uuid:a6c3b0e2-5f4d-4e8a-9b71-2c0d8e6f1a34", "urn:uuid:00000000-0000-4000-8000-000000000000"), "more than one card UUID"},
		{"CN with invalid UTF-8", tampered(func(c *x509.Certificate) {
			c.Subject.Names = []pkix.AttributeTypeAndValue{{Type: oidCN, Value: "DOE.\xff.1234567890"}}
		}), "UTF-8"},
		{"CN that is not text", tampered(func(c *x509.Certificate) {
			c.Subject.Names = []pkix.AttributeTypeAndValue{{Type: oidCN, Value: 42}}
		}), "not text"},
		{"affiliation that is not text", tampered(func(c *x509.Certificate) {
			c.Subject.Names = []pkix.AttributeTypeAndValue{{Type: oidOU, Value: []byte("USA")}, {Type: oidCN, Value: "DOE.JOHN.1234567890"}}
		}), "organizational unit is empty"},
		{"negative serial", tampered(func(c *x509.Certificate) { c.SerialNumber = big.NewInt(-1) }), "serial number"},
		{"missing serial", tampered(func(c *x509.Certificate) { c.SerialNumber = nil }), "serial number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := cacid.Parse(tt.cert(t))
			if id != nil {
				t.Errorf("Parse returned an identity for EDIPI %q", id.EDIPI)
			}
			assertRejected(t, err, tt.reason)
		})
	}
}

func longDomain() string {
	domain := "mil"
	for len(domain) < 130 {
		domain = "a." + domain
	}
	return domain
}

package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/testpki"
)

var testPKI = sync.OnceValues(func() (*testpki.PKI, error) { return testpki.Generate(testpki.Options{}) })

func pki(t *testing.T) *testpki.PKI {
	t.Helper()
	p, err := testPKI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func code(r *Rejection) string {
	if r == nil {
		return ""
	}
	return r.Code
}

func TestValidity(t *testing.T) {
	p := pki(t)
	good := p.Card("doe.john.quincy").Cert
	if r := CheckValidity(good, time.Now()); r != nil {
		t.Fatalf("current card: %v", r)
	}
	if got := code(CheckValidity(p.Card("expired.edward").Cert, time.Now())); got != CodeExpired {
		t.Errorf("expired card: %q", got)
	}
	if got := code(CheckValidity(good, good.NotBefore.Add(-time.Minute))); got != CodeNotYetValid {
		t.Errorf("before NotBefore: %q", got)
	}
}

func TestVerify(t *testing.T) {
	p := pki(t)
	roots := x509.NewCertPool()
	roots.AddCert(p.Root.Cert)
	pol := &Policy{Roots: roots}
	now := time.Now()
	for name, want := range map[string]string{
		"doe.john.quincy":   "",
		"noeku.nancy":       "", // usage is CheckUsage's business, for a precise reason
		"rogue.john.quincy": CodeUntrusted,
	} {
		c := p.Card(name)
		chain, rej := pol.Verify(c.Cert, c.Chain[1:], now)
		if code(rej) != want {
			t.Errorf("%s: %q, want %q", name, code(rej), want)
		}
		if rej == nil && (len(chain) != 3 || !chain[2].Equal(p.Root.Cert)) {
			t.Errorf("%s: chain %d long", name, len(chain))
		}
	}
	// The intermediate must come from the client (or the pool): without it, no chain.
	c := p.Card("doe.john.quincy")
	if _, rej := pol.Verify(c.Cert, nil, now); code(rej) != CodeUntrusted {
		t.Errorf("without intermediate: %q", code(rej))
	}
	if _, rej := (&Policy{}).Verify(c.Cert, c.Chain[1:], now); code(rej) != CodeNotVerified {
		t.Errorf("no roots configured: %q", code(rej))
	}
}

func TestCheck(t *testing.T) {
	p := pki(t)
	doe := p.Card("doe.john.quincy")
	issuerHash := sha256.Sum256(p.Intermediate.Cert.Raw)
	mediumHW, fpkiAuth, other := "2.16.840.1.101.2.1.11.42", "2.16.840.1.101.3.2.1.3.13", "2.16.840.1.101.2.1.11.39"
	cases := []struct {
		name string
		pol  Policy
		card *testpki.Card
		want string
	}{
		{"no rules", Policy{}, doe, ""},
		{"missing clientAuth", Policy{}, p.Card("noeku.nancy"), CodeUsage},
		{"issuer DN as openssl prints it", Policy{AllowedIssuers: []string{"CN=TEST DOD ID CA-70,OU=PKI,OU=DoD,O=U.S. Government,C=US"}}, doe, ""},
		{"issuer DN with spaces and other case", Policy{AllowedIssuers: []string{"cn=TEST DOD ID CA-70, OU=PKI, OU=DoD, O=U.S. Government, C=US"}}, doe, ""},
		{"issuer DN in Go's grouped form does not match", Policy{AllowedIssuers: []string{"CN=TEST DOD ID CA-70,OU=DoD+OU=PKI,O=U.S. Government,C=US"}}, doe, CodeIssuer},
		{"issuer by SHA-256", Policy{AllowedIssuers: []string{hex.EncodeToString(issuerHash[:])}}, doe, ""},
		{"issuer by SHA-256 with colons", Policy{AllowedIssuers: []string{colons(issuerHash[:])}}, doe, ""},
		{"other issuer", Policy{AllowedIssuers: []string{"CN=DOD ID CA-59,OU=PKI,OU=DoD,O=U.S. Government,C=US"}}, doe, CodeIssuer},
		{"all policies present", Policy{RequiredPolicies: []string{mediumHW, fpkiAuth}}, doe, ""},
		{"all: one missing", Policy{RequiredPolicies: []string{mediumHW, other}}, doe, CodePolicy},
		{"any: one present", Policy{RequiredPolicies: []string{other, fpkiAuth}, AnyPolicy: true}, doe, ""},
		{"any: none present", Policy{RequiredPolicies: []string{other}, AnyPolicy: true}, doe, CodePolicy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.pol.Compile(); err != nil {
				t.Fatal(err)
			}
			if got := code(tc.pol.Check(tc.card.Cert, p.Intermediate.Cert)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func colons(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = hex.EncodeToString([]byte{c})
	}
	return strings.ToUpper(strings.Join(parts, ":"))
}

func TestCompileRejectsBadConfig(t *testing.T) {
	for _, pol := range []Policy{
		{AllowedIssuers: []string{"not a dn"}},
		{RequiredPolicies: []string{"1"}},
		{RequiredPolicies: []string{"1.2.x"}},
		{RequiredPolicies: []string{"1.-2"}},
		{RequiredPolicies: []string{"1.02"}},
	} {
		if err := pol.Compile(); err == nil {
			t.Errorf("%+v compiled", pol)
		}
	}
	good := Policy{RequiredPolicies: []string{" 2.16.840.1.101.2.1.11.42 "}}
	if err := good.Compile(); err != nil || !good.policies[0].Equal(asn1.ObjectIdentifier{2, 16, 840, 1, 101, 2, 1, 11, 42}) {
		t.Fatalf("%v %v", err, good.policies)
	}
}

func TestNormalizeDN(t *testing.T) {
	for in, want := range map[string]string{
		"CN=A, O=B ,C=US":    "CN=A,O=B,C=US",
		`CN=Doe\, John, O=B`: `CN=Doe\, John,O=B`,
		"  CN=A  ":           "CN=A",
		`CN=trailing\\, O=B`: `CN=trailing\\,O=B`,
	} {
		if got := normalizeDN(in); got != want {
			t.Errorf("normalizeDN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequiredEKUAndChainDepth(t *testing.T) {
	p := pki(t)
	doe := p.Card("doe.john.quincy")
	noSmartcard, err := p.Intermediate.IssueCard(testpki.CardSpec{Name: "nosc.sam", Family: "NOSC", Given: "SAM", EDIPI: "1234567801", NoSmartcardLogon: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ekus []string
		card *testpki.Card
		want string
	}{
		{"by name, present", []string{"clientAuth", "smartcardLogon"}, doe, ""},
		{"by OID, present", []string{"1.3.6.1.4.1.311.20.2.2"}, doe, ""},
		{"smartcardLogon missing", []string{"clientAuth", "smartcardLogon"}, noSmartcard, CodeUsage},
		{"not required", nil, noSmartcard, ""},
		{"emailProtection missing", []string{"emailProtection"}, doe, CodeUsage},
	} {
		pol := Policy{RequiredEKU: tc.ekus}
		if err := pol.Compile(); err != nil {
			t.Fatal(err)
		}
		if got := code(pol.Check(tc.card.Cert, p.Intermediate.Cert)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if err := (&Policy{RequiredEKU: []string{"clientauth"}}).Compile(); err == nil {
		t.Error("a misspelt EKU name compiled")
	}

	chain := []*x509.Certificate{doe.Cert, p.Intermediate.Cert, p.Root.Cert}
	for depth, want := range map[int]string{0: "", 3: "", 2: CodeUntrusted} {
		pol := Policy{MaxChainDepth: depth}
		if got := code(pol.CheckChainDepth(len(chain))); got != want {
			t.Errorf("depth %d: %q, want %q", depth, got, want)
		}
	}
	if err := (&Policy{MaxChainDepth: -1}).Compile(); err == nil {
		t.Error("negative depth compiled")
	}
}

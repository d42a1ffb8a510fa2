package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/testpki"
)

// TestCheckProfileRefusesNonconformingCards: each card verifies to the
// trusted root (crypto/x509 accepts it), and Check refuses it with its own
// code; conforming RSA-2048 and P-384 cards pass.
func TestCheckProfileRefusesNonconformingCards(t *testing.T) {
	p := pki(t)
	bad, err := p.Intermediate.IssueNonconforming()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ca-true.carl":    CodeIsCA,
		"keycertsign.kim": CodeCAUsage,
		"crlsign.chris":   CodeCAUsage,
		"rsa1024.ray":     CodeWeakKey,
		"p224.pat":        CodeWeakKey,
		"serial0.zed":     CodeBadSerial,
	}
	if len(bad) != len(want) {
		t.Fatalf("%d nonconforming cards, want %d", len(bad), len(want))
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.Root.Cert)
	pol := &Policy{Roots: roots}
	if err := pol.Compile(); err != nil {
		t.Fatal(err)
	}
	for _, c := range bad {
		chain, rej := pol.Verify(c.Cert, c.Chain[1:], time.Now())
		if rej != nil {
			t.Fatalf("%s: path validation refused it (%s), so Check is not what refuses it", c.Name, rej.Code)
		}
		rej = pol.Check(c.Cert, chain[1])
		if code(rej) != want[c.Name] || rej.Reason == "" {
			t.Errorf("%s (%s): Check = %v, want %s", c.Name, c.Description, rej, want[c.Name])
		}
	}

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []testpki.CardSpec{
		{Name: "rsa2048.rita", Family: "RSA", Given: "RITA", EDIPI: "1234567821", RSA: true},
		{Name: "p384.paula", Family: "PTHREE", Given: "PAULA", EDIPI: "1234567822", Key: p384},
	} {
		c, err := p.Intermediate.IssueCard(spec)
		if err != nil {
			t.Fatal(err)
		}
		if rej := pol.Check(c.Cert, p.Intermediate.Cert); rej != nil {
			t.Errorf("%s: conforming card refused: %v", spec.Name, rej)
		}
	}
}

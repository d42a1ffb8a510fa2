package npe_test

import (
	"crypto/x509"
	"testing"

	"github.com/cacgate/cacgate/internal/npe"
	"github.com/cacgate/cacgate/internal/testpki"
)

func TestPersonMarks(t *testing.T) {
	pki, err := testpki.Generate(testpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(spec testpki.CardSpec) *x509.Certificate {
		t.Helper()
		c, err := pki.Intermediate.IssueCard(spec)
		if err != nil {
			t.Fatal(err)
		}
		return c.Cert
	}
	for _, name := range []string{"doe.john.quincy", "doe.john.quincy.piv", "smith.jane", "obrien-smith.mary.ann.k"} {
		if c := pki.Card(name); c == nil || !npe.PersonMarks(c.Cert) || npe.Identity(c.Cert) != nil {
			t.Errorf("card %s is not recognised as a person's", name)
		}
	}
	person := map[string]testpki.CardSpec{
		"UPN, odd common name":   {Name: "a", CommonName: "SOMEONE.WITHOUT.ID", EDIPI: "1234567899"},
		"DoD ID in common name":  {Name: "b", CommonName: "host.1234567890", UPN: "-", Email: "-"},
		"card UUID, no UPN":      {Name: "c", CommonName: "device", UPN: "-", Email: "-", UUID: "a5c41f1e-7a5d-4d38-9b0b-2f5e77d2c1aa"},
		"DoD ID as the whole CN": {Name: "d", CommonName: "1234567890", UPN: "-", Email: "-"},
	}
	for what, spec := range person {
		if cert := issue(spec); !npe.PersonMarks(cert) {
			t.Errorf("%s: not recognised as a person's", what)
		}
	}
	device := issue(testpki.CardSpec{Name: "dev", CommonName: "feed.example.mil", UPN: "-", Email: "-", NoSmartcardLogon: true})
	id := npe.Identity(device)
	if id == nil || id.EDIPI != "" || id.FingerprintHex == "" || id.Subject == "" || id.Issuer == "" {
		t.Fatalf("device identity: %+v", id)
	}
	// A long run of digits that is not a DoD ID (eleven) is no person's mark.
	if npe.PersonMarks(issue(testpki.CardSpec{Name: "e", CommonName: "rack12345678901.example.mil", UPN: "-", Email: "-"})) {
		t.Error("an eleven-digit host label taken for a DoD ID")
	}
}

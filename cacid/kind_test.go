package cacid_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/testpki"
)

var federalPKI = sync.OnceValues(func() (*testpki.Federal, error) { return testpki.GenerateFederal(time.Time{}) })

func federal(t *testing.T) *testpki.Federal {
	t.Helper()
	f, err := federalPKI()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseAsKinds(t *testing.T) {
	f := federal(t)
	piv, err := cacid.ParseAs(f.PIV.Cert, cacid.KindPIV, cacid.Options{})
	if err != nil {
		t.Fatalf("PIV: %v", err)
	}
	if piv.Kind != cacid.KindPIV || piv.Key != testpki.FederalPIVUUID || piv.EDIPI != "" || piv.FASCN != testpki.FederalFASCN {
		t.Errorf("PIV identity = %+v", piv)
	}
	if piv.GivenName != "JANE" || piv.MiddleName != "Q" || piv.FamilyName != "FEDERAL" || piv.CommonName != "JANE Q FEDERAL" || piv.Affiliation != "Department of Testing" {
		t.Errorf("PIV names = %q %q %q (%q), affiliation %q", piv.GivenName, piv.MiddleName, piv.FamilyName, piv.CommonName, piv.Affiliation)
	}
	pivi, err := cacid.ParseAs(f.PIVI.Cert, cacid.KindPIVI, cacid.Options{})
	if err != nil || pivi.Key != testpki.FederalPIVIUUID || pivi.Kind != cacid.KindPIVI {
		t.Errorf("PIV-I: %+v, %v", pivi, err)
	}
	eca, err := cacid.ParseAs(f.ECA.Cert, cacid.KindECA, cacid.Options{})
	if err != nil {
		t.Fatalf("ECA: %v", err)
	}
	if eca.Key != cacid.IssuerSubjectKey(eca.Issuer, eca.Subject) || !cacid.ValidKey(cacid.KindECA, eca.Key) {
		t.Errorf("ECA key = %q", eca.Key)
	}
	byEmail, err := cacid.ParseAs(f.ECA.Cert, cacid.KindECA, cacid.Options{ECAKey: cacid.KeyEmail})
	if err != nil || byEmail.Key != testpki.FederalECAEmail {
		t.Errorf("ECA by email: %+v, %v", byEmail, err)
	}
	if _, err := cacid.ParseAs(f.ECA.Cert, cacid.KindECA, cacid.Options{ECAKey: cacid.KeyUPN}); err == nil {
		t.Error("ECA keyed by a UPN it does not have: accepted")
	}
	// An ECA certificate has no card UUID: it is no PIV card.
	if _, err := cacid.ParseAs(f.ECA.Cert, cacid.KindPIV, cacid.Options{}); err == nil {
		t.Error("ECA certificate parsed as a PIV card")
	}
	// A federal PIV card has no DoD common name: it is no CAC.
	if _, err := cacid.Parse(f.PIV.Cert); err == nil {
		t.Error("federal PIV card parsed as a CAC")
	}
	if _, err := cacid.ParseAs(f.PIV.Cert, "tw1c", cacid.Options{}); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestFASCNRoundTrip(t *testing.T) {
	b, err := cacid.EncodeFASCN(testpki.FederalFASCN)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 25 {
		t.Fatalf("FASC-N is %d bytes", len(b))
	}
	got, err := cacid.DecodeFASCN(b)
	if err != nil || got != testpki.FederalFASCN {
		t.Fatalf("DecodeFASCN = %q, %v", got, err)
	}
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x01
		if _, err := cacid.DecodeFASCN(bad); err == nil {
			t.Errorf("a flipped bit in byte %d went unnoticed", i)
		}
	}
	if _, err := cacid.DecodeFASCN(b[:24]); err == nil {
		t.Error("short FASC-N accepted")
	}
}

func TestValidKey(t *testing.T) {
	for _, c := range []struct {
		kind cacid.Kind
		key  string
		ok   bool
	}{
		{cacid.KindCAC, "1234567890", true},
		{cacid.KindCAC, "123456789", false},
		{cacid.KindPIV, testpki.FederalPIVUUID, true},
		{cacid.KindPIV, "A0B1C2D3-E4F5-4A6B-8C7D-0E1F2A3B4C5D", false},
		{cacid.KindECA, "carl@example.com", true},
		{cacid.KindECA, "Carl@example.com", false},
		{cacid.KindECA, "", false},
	} {
		if got := cacid.ValidKey(c.kind, c.key); got != c.ok {
			t.Errorf("ValidKey(%s, %q) = %v", c.kind, c.key, got)
		}
	}
}

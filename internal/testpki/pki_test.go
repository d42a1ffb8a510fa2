package testpki_test

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/testpki"
)

// now pins the test PKI's clock so that validity assertions are exact.
var now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// sharedPKI is generated once: the RSA card makes generation take a
// noticeable fraction of a second.
var sharedPKI = sync.OnceValues(func() (*testpki.PKI, error) {
	return testpki.Generate(testpki.Options{Now: now})
})

func generated(t testing.TB) *testpki.PKI {
	t.Helper()
	p, err := sharedPKI()
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return p
}

// verifyOutcome classifies x509.Verify's result.
type verifyOutcome string

const (
	verifies          verifyOutcome = "verifies"
	expired           verifyOutcome = "expired"
	wrongKeyUsage     verifyOutcome = "wrong key usage"
	unknownAuthority  verifyOutcome = "unknown authority"
	unexpectedFailure verifyOutcome = "unexpected failure"
)

func classify(err error) verifyOutcome {
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case err == nil:
		return verifies
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return expired
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return wrongKeyUsage
	case errors.As(err, &unknown):
		return unknownAuthority
	}
	return unexpectedFailure
}

func TestDefaultCardsVerifyAsIntended(t *testing.T) {
	p := generated(t)
	want := map[string]verifyOutcome{
		"doe.john.quincy":         verifies,
		"doe.john.quincy.piv":     verifies,
		"smith.jane":              verifies,
		"johnson.robert.e.jr":     verifies,
		"obrien-smith.mary.ann.k": verifies,
		"garcia.luis.a":           verifies,
		"expired.edward":          expired,
		"noeku.nancy":             wrongKeyUsage,
		"rogue.john.quincy":       unknownAuthority,
		"revoked.ronald":          verifies, // chain verification does not see revocation
	}
	if len(p.Cards) != len(want) {
		t.Errorf("Generate issued %d cards, want %d", len(p.Cards), len(want))
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.Root.Cert)
	for name, outcome := range want {
		t.Run(name, func(t *testing.T) {
			card := p.Card(name)
			if card == nil {
				t.Fatalf("Card(%q) = nil", name)
			}
			// Offer the intermediate the card itself carries, as a TLS client
			// would: the rogue card's look-alike intermediate must not help.
			intermediates := x509.NewCertPool()
			for _, cert := range card.Chain[1:] {
				intermediates.AddCert(cert)
			}
			_, err := card.Cert.Verify(x509.VerifyOptions{
				Roots:         roots,
				Intermediates: intermediates,
				CurrentTime:   now,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			})
			if got := classify(err); got != outcome {
				t.Errorf("Verify: %s (%v), want %s", got, err, outcome)
			}
		})
	}
}

func TestRogueAuthoritiesImitateTheRealOnes(t *testing.T) {
	p := generated(t)
	pairs := []struct {
		name        string
		real, rogue *testpki.Authority
	}{
		{"root", p.Root, p.RogueRoot},
		{"intermediate", p.Intermediate, p.RogueIntermediate},
	}
	for _, pair := range pairs {
		if !slices.Equal(pair.real.Cert.RawSubject, pair.rogue.Cert.RawSubject) {
			t.Errorf("%s: rogue subject %q differs from %q", pair.name, pair.rogue.Cert.Subject, pair.real.Cert.Subject)
		}
		if slices.Equal(pair.real.Cert.SubjectKeyId, pair.rogue.Cert.SubjectKeyId) {
			t.Errorf("%s: rogue and real CA share a key identifier", pair.name)
		}
	}
	if got := subject(p.Root.Cert); got != "CN=Test DoD Root CA 3,OU=PKI,OU=DoD,O=U.S. Government,C=US" {
		t.Errorf("root subject = %q", got)
	}
	if got := subject(p.Intermediate.Cert); got != "CN=TEST DOD ID CA-70,OU=PKI,OU=DoD,O=U.S. Government,C=US" {
		t.Errorf("intermediate subject = %q", got)
	}
	if !p.Intermediate.Cert.MaxPathLenZero || p.Intermediate.Cert.MaxPathLen != 0 {
		t.Errorf("intermediate MaxPathLen = %d (zero %v), want 0", p.Intermediate.Cert.MaxPathLen, p.Intermediate.Cert.MaxPathLenZero)
	}
	if !slices.Equal(p.Intermediate.Cert.AuthorityKeyId, p.Root.Cert.SubjectKeyId) {
		t.Error("intermediate's authority key ID is not the root's subject key ID")
	}
}

func TestCardsReadBackThroughCacid(t *testing.T) {
	p := generated(t)
	want := []cacid.Identity{
		{EDIPI: "1234567890", FamilyName: "DOE", GivenName: "JOHN", MiddleName: "QUINCY", Affiliation: "USA", UPN: "1234567890@mil", Email: "john.doe@mail.mil"},
		{EDIPI: "1234567890", FamilyName: "DOE", GivenName: "JOHN", MiddleName: "QUINCY", Affiliation: "USA", UPN: "1234567890123456@mil", Email: "john.doe@mail.mil", CardUUID: "a6c3b0e2-5f4d-4e8a-9b71-2c0d8e6f1a34"},
		{EDIPI: "1234567891", FamilyName: "SMITH", GivenName: "JANE", Affiliation: "USN", UPN: "1234567891@mil", Email: "jane.smith@mail.mil"},
		{EDIPI: "1234567892", FamilyName: "JOHNSON", GivenName: "ROBERT", MiddleName: "E", Suffix: "JR", Affiliation: "USMC", UPN: "1234567892@mil", Email: "robert.johnson@mail.mil"},
		{EDIPI: "1234567895", FamilyName: "O'BRIEN-SMITH", GivenName: "MARY ANN", MiddleName: "K", Affiliation: "CONTRACTOR", UPN: "1234567895@mil", Email: "maryann.obrien-smith@mail.mil"},
		{EDIPI: "1234567896", FamilyName: "GARCIA", GivenName: "LUIS", MiddleName: "A", Affiliation: "USAF", UPN: "1234567896@mil", Email: "luis.garcia@mail.mil"},
		{EDIPI: "1234567893", FamilyName: "EXPIRED", GivenName: "EDWARD", Affiliation: "USA", UPN: "1234567893@mil", Email: "edward.expired@mail.mil"},
		{EDIPI: "1234567894", FamilyName: "NOEKU", GivenName: "NANCY", Affiliation: "USA", UPN: "1234567894@mil", Email: "nancy.noeku@mail.mil"},
		{EDIPI: "1234567890", FamilyName: "DOE", GivenName: "JOHN", MiddleName: "QUINCY", Affiliation: "USA", UPN: "1234567890@mil", Email: "john.doe@mail.mil"},
		{EDIPI: "1234567899", FamilyName: "REVOKED", GivenName: "RONALD", Affiliation: "USA", UPN: "1234567899@mil", Email: "ronald.revoked@mail.mil"},
	}
	if len(p.Cards) != len(want) {
		t.Fatalf("Generate issued %d cards, want %d", len(p.Cards), len(want))
	}
	for i, card := range p.Cards {
		got, err := cacid.Parse(card.Cert)
		if err != nil {
			t.Errorf("%s: Parse: %v", card.Name, err)
			continue
		}
		if card.EDIPI != want[i].EDIPI {
			t.Errorf("%s: Card.EDIPI = %q, want %q", card.Name, card.EDIPI, want[i].EDIPI)
		}
		// Certificate-specific fields are checked by cacid's own tests.
		got.Fingerprint, got.FingerprintHex, got.Subject, got.Issuer, got.Serial = [32]byte{}, "", "", "", ""
		got.NotBefore, got.NotAfter = time.Time{}, time.Time{}
		want[i].Kind, want[i].Key = cacid.KindCAC, want[i].EDIPI
		if *got != want[i] {
			t.Errorf("%s: Parse =\n%+v\nwant\n%+v", card.Name, *got, want[i])
		}
	}
}

func TestCardCertificatesHaveTheCACProfile(t *testing.T) {
	p := generated(t)
	card := p.Card("doe.john.quincy")
	cert := card.Cert
	if got, want := subject(cert), "CN=DOE.JOHN.QUINCY.1234567890,OU=USA,OU=PKI,OU=DoD,O=U.S. Government,C=US"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v, want digitalSignature only", cert.KeyUsage)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) ||
		len(cert.UnknownExtKeyUsage) != 1 || !cert.UnknownExtKeyUsage[0].Equal(cacid.OIDSmartcardLogon) {
		t.Errorf("EKU = %v + %v, want clientAuth + smartcardLogon", cert.ExtKeyUsage, cert.UnknownExtKeyUsage)
	}
	if len(cert.PolicyIdentifiers) != 2 || !cert.PolicyIdentifiers[0].Equal(cacid.OIDPolicyMediumHardware112) ||
		!cert.PolicyIdentifiers[1].Equal(cacid.OIDPolicyFPKICommonAuth) {
		t.Errorf("policies = %v", cert.PolicyIdentifiers)
	}
	if !slices.Equal(cert.AuthorityKeyId, p.Intermediate.Cert.SubjectKeyId) || len(cert.SubjectKeyId) == 0 {
		t.Error("card key identifiers do not link to the intermediate")
	}
	if !cert.NotBefore.Equal(now.Add(-time.Hour)) || !cert.NotAfter.Equal(now.Add(3*365*24*time.Hour)) {
		t.Errorf("validity %v..%v is not now-1h..now+3y", cert.NotBefore, cert.NotAfter)
	}
	if len(card.Chain) != 2 || card.Chain[0] != cert || card.Chain[1] != p.Intermediate.Cert {
		t.Error("Chain is not [leaf, intermediate]")
	}
	if card.TLS.Leaf != cert || len(card.TLS.Certificate) != 2 || card.TLS.PrivateKey == nil {
		t.Error("TLS certificate is incomplete")
	}
	if _, isRSA := p.Card("obrien-smith.mary.ann.k").Cert.PublicKey.(*rsa.PublicKey); !isRSA {
		t.Error("obrien-smith.mary.ann.k does not have an RSA key")
	}
}

// TestMutualTLS proves the TLS fields work as they will in cacgate: the
// server presents Server.TLS, the client presents a card, and each side
// verifies the other against the root alone.
func TestMutualTLS(t *testing.T) {
	p := generated(t)
	roots := x509.NewCertPool()
	roots.AddCert(p.Root.Cert)
	card := p.Card("doe.john.quincy")
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			clientConn, serverConn := net.Pipe()
			defer clientConn.Close()
			defer serverConn.Close()
			server := tls.Server(serverConn, &tls.Config{
				Certificates: []tls.Certificate{p.Server.TLS},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    roots,
				Time:         func() time.Time { return now },
			})
			client := tls.Client(clientConn, &tls.Config{
				Certificates: []tls.Certificate{card.TLS},
				RootCAs:      roots,
				ServerName:   host,
				Time:         func() time.Time { return now },
			})
			serverDone := make(chan error, 1)
			go func() { serverDone <- server.Handshake() }()
			if err := client.Handshake(); err != nil {
				t.Fatalf("client handshake: %v", err)
			}
			if err := <-serverDone; err != nil {
				t.Fatalf("server handshake: %v", err)
			}
			peer := server.ConnectionState().PeerCertificates
			if len(peer) == 0 || !peer[0].Equal(card.Cert) {
				t.Error("server did not receive the card certificate")
			}
		})
	}
}

func TestGenerateAnchorsValidityAtNow(t *testing.T) {
	p := generated(t)
	if got := p.Card("expired.edward").Cert.NotAfter; !got.Before(now) {
		t.Errorf("expired card NotAfter %v is not before %v", got, now)
	}
	for _, a := range []*testpki.Authority{p.Root, p.Intermediate} {
		if !a.Cert.NotBefore.Before(p.Card("expired.edward").Cert.NotBefore) || !a.Cert.NotAfter.After(now.AddDate(9, 0, 0)) {
			t.Errorf("%s validity %v..%v does not cover the expired card and the next 9 years", a.Cert.Subject.CommonName, a.Cert.NotBefore, a.Cert.NotAfter)
		}
	}
	if p.Server.Cert.NotAfter.Before(now) {
		t.Error("server certificate is already expired")
	}
}

func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

func TestCRLListsExactlyTheRevokedCard(t *testing.T) {
	p := generated(t)
	crl, err := x509.ParseRevocationList(p.CRL)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(p.Intermediate.Cert); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(p.Card("revoked.ronald").Cert.SerialNumber) != 0 {
		t.Fatalf("CRL entries: %+v", crl.RevokedCertificateEntries)
	}
	if !crl.NextUpdate.After(now) || crl.ThisUpdate.After(now) {
		t.Errorf("CRL window %v..%v does not cover %v", crl.ThisUpdate, crl.NextUpdate, now)
	}
}

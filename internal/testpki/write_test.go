package testpki_test

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/cacgate/cacgate/internal/testpki"
	"github.com/cacgate/cacgate/internal/trustbundle"
)

func TestWriteDir(t *testing.T) {
	p := generated(t)
	dir := filepath.Join(t.TempDir(), "pki") // WriteDir must create it
	const password = "correct horse"
	if err := p.WriteDir(dir, password); err != nil {
		t.Fatalf("WriteDir: %v", err)
	}

	assertCertificates(t, dir, "root.pem", p.Root.Cert)
	assertCertificates(t, dir, "intermediate.pem", p.Intermediate.Cert)
	assertCertificates(t, dir, "ca-bundle.pem", p.Intermediate.Cert, p.Root.Cert)
	assertCertificates(t, dir, "server.pem", p.Server.Chain...)
	assertCertificates(t, dir, "rogue-root.pem", p.RogueRoot.Cert)
	assertPrivateKey(t, dir, "server-key.pem", p.Server.Cert)
	for _, card := range p.Cards {
		stem := filepath.Join("cards", card.Name)
		assertCertificates(t, dir, stem+".pem", card.Chain...)
		assertPrivateKey(t, dir, stem+"-key.pem", card.Cert)
		assertPKCS12(t, dir, stem+".p12", password, card)
	}
	for _, name := range []string{"manifest.json", "README.md"} {
		assertMode(t, dir, name, 0o644)
	}
	// The DISA-style bundle holds the trusted CAs, and only them.
	for _, name := range []string{testpki.DISAZip, testpki.DISADERFile, testpki.DISAPEMFile} {
		b, err := trustbundle.Load([]string{filepath.Join(dir, filepath.FromSlash(name))}, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b.CAs) != 2 || len(b.Refused) != 0 || !b.CAs[0].Cert.Equal(p.Intermediate.Cert) || !b.CAs[1].Cert.Equal(p.Root.Cert) {
			t.Errorf("%s holds %d CAs, refused %v", name, len(b.CAs), b.Refused)
		}
	}

	var manifest testpki.Manifest
	if err := json.Unmarshal(readFile(t, dir, "manifest.json"), &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest.Cards) != len(p.Cards) {
		t.Fatalf("manifest lists %d cards, want %d", len(manifest.Cards), len(p.Cards))
	}
	for i, entry := range manifest.Cards {
		card := p.Cards[i]
		want := testpki.ManifestCard{
			Name: card.Name, Description: card.Description, EDIPI: card.EDIPI,
			Subject: subject(card.Cert), SHA256: fingerprint(card.Cert), NotAfter: card.Cert.NotAfter.UTC(),
		}
		if entry != want {
			t.Errorf("manifest entry %d = %+v, want %+v", i, entry, want)
		}
	}

	readme := string(readFile(t, dir, "README.md"))
	for _, card := range p.Cards {
		if !strings.Contains(readme, "`"+card.Name+"`") {
			t.Errorf("README.md does not mention %s", card.Name)
		}
	}
	if strings.Contains(readme, password) {
		t.Error("README.md reveals a non-demo password")
	}

	// Rewriting replaces the files in place, keeping the modes exact.
	if err := p.WriteDir(dir, password); err != nil {
		t.Fatalf("second WriteDir: %v", err)
	}
	assertMode(t, dir, "server-key.pem", 0o600)
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestWriteDemo(t *testing.T) {
	dir := t.TempDir()
	if err := testpki.WriteDemo(dir); err != nil {
		t.Fatalf("WriteDemo: %v", err)
	}
	var manifest testpki.Manifest
	if err := json.Unmarshal(readFile(t, dir, "manifest.json"), &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	start := time.Now()
	for _, card := range manifest.Cards {
		if card.Name == "expired.edward" {
			if card.NotAfter.After(start) {
				t.Errorf("expired.edward expires %v, want the past", card.NotAfter)
			}
		} else if card.NotAfter.Before(start.AddDate(9, 11, 0)) {
			t.Errorf("%s expires %v, want about 10 years out", card.Name, card.NotAfter)
		}
	}
	server := parseCertificates(t, readFile(t, dir, "server.pem"))[0]
	if server.NotAfter.Before(start.AddDate(9, 11, 0)) {
		t.Errorf("server certificate expires %v, want about 10 years out", server.NotAfter)
	}
	root := parseCertificates(t, readFile(t, dir, "root.pem"))[0]
	if root.NotAfter.Before(start.AddDate(19, 11, 0)) {
		t.Errorf("root expires %v, want about 20 years out", root.NotAfter)
	}
	if _, _, _, err := pkcs12.DecodeChain(readFile(t, dir, "cards/doe.john.quincy.p12"), testpki.DemoP12Password); err != nil {
		t.Errorf("demo .p12 does not open with DemoP12Password: %v", err)
	}
	if !strings.Contains(string(readFile(t, dir, "README.md")), testpki.DemoP12Password) {
		t.Error("demo README.md does not give the .p12 password")
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func assertMode(t *testing.T, dir, name string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", name, got, want)
	}
}

func parseCertificates(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			t.Fatalf("unexpected PEM block %q", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, cert)
	}
	return certs
}

func assertCertificates(t *testing.T, dir, name string, want ...*x509.Certificate) {
	t.Helper()
	assertMode(t, dir, name, 0o644)
	got := parseCertificates(t, readFile(t, dir, name))
	if !slices.EqualFunc(got, want, (*x509.Certificate).Equal) {
		t.Errorf("%s holds %d certificates that differ from the expected %d", name, len(got), len(want))
	}
}

func assertPrivateKey(t *testing.T, dir, name string, cert *x509.Certificate) {
	t.Helper()
	assertMode(t, dir, name, 0o600)
	block, _ := pem.Decode(readFile(t, dir, name))
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("%s is not a PKCS#8 PEM key", name)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	assertKeyMatches(t, name, key, cert)
}

func assertPKCS12(t *testing.T, dir, name, password string, card *testpki.Card) {
	t.Helper()
	assertMode(t, dir, name, 0o600)
	key, leaf, chain, err := pkcs12.DecodeChain(readFile(t, dir, name), password)
	if err != nil {
		t.Fatalf("%s: DecodeChain: %v", name, err)
	}
	if !leaf.Equal(card.Cert) || !slices.EqualFunc(chain, card.Chain[1:], (*x509.Certificate).Equal) {
		t.Errorf("%s does not hold the card and its issuing CA", name)
	}
	assertKeyMatches(t, name, key, card.Cert)
}

func assertKeyMatches(t *testing.T, name string, key any, cert *x509.Certificate) {
	t.Helper()
	signer, ok := key.(crypto.Signer)
	if !ok {
		t.Fatalf("%s: key of type %T is not a crypto.Signer", name, key)
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		t.Errorf("%s: key does not match the certificate", name)
	}
}

// subject renders a name the way manifest.json and cacid do; the test
// PKI's RDNs are all single-valued.
func subject(cert *x509.Certificate) string {
	var name pkix.RDNSequence
	for _, attribute := range cert.Subject.Names {
		name = append(name, pkix.RelativeDistinguishedNameSET{attribute})
	}
	return name.String()
}

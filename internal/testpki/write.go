package testpki

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/cacgate/cacgate/cacid"
)

// File modes of the written files. Keys are private to the owner even
// though they are test keys, so that tools which refuse group- or
// world-readable keys (ssh-style checks, some TLS servers) accept them.
const (
	publicFileMode  os.FileMode = 0o644
	privateFileMode os.FileMode = 0o600
	dirMode         os.FileMode = 0o755
)

// outputFile is one file WriteDir writes, relative to its directory.
type outputFile struct {
	path    string
	data    []byte
	private bool
}

// WriteDir writes the PKI to dir, creating it if needed, in the layout the
// generated README.md describes:
//
//	root.pem                 trusted root CA
//	intermediate.pem         issuing CA of the cards and the server
//	ca-bundle.pem            intermediate.pem then root.pem
//	server.pem               server certificate then intermediate
//	server-key.pem           server key, PKCS#8
//	rogue-root.pem           the look-alike root nothing should trust
//	disa/…                   root and intermediate as DISA ships the DoD
//	                         PKI: a .zip of PKCS#7 bundles and a signed
//	                         checksum list, and its .der.p7b and .pem.p7b
//	cards/<name>.pem         card certificate then its issuing CA
//	cards/<name>-key.pem     card key, PKCS#8
//	cards/<name>.p12         key, certificate and issuing CA, for browsers
//	manifest.json            name, description, EDIPI, subject, SHA-256
//	                         fingerprint and expiry of each card
//	README.md                this layout, the cards, and how to use them
//
// The .p12 files are protected with p12Password using 3DES and SHA-1
// (pkcs12.LegacyDES): weak, but the encoding that imports most widely,
// including Firefox, Chromium's NSS, macOS and Windows. Existing files are
// replaced; files of cards no longer in the set are left alone.
func (p *PKI) WriteDir(dir, p12Password string) error {
	files, err := p.outputFiles(p12Password)
	if err != nil {
		return err
	}
	for _, sub := range []string{"cards", filepath.Dir(CRLFile), filepath.Dir(DISAZip)} {
		if err := os.MkdirAll(filepath.Join(dir, sub), dirMode); err != nil {
			return fmt.Errorf("testpki: %w", err)
		}
	}
	for _, f := range files {
		mode := publicFileMode
		if f.private {
			mode = privateFileMode
		}
		if err := writeFileAtomic(filepath.Join(dir, filepath.FromSlash(f.path)), f.data, mode); err != nil {
			return fmt.Errorf("testpki: %w", err)
		}
	}
	return nil
}

// outputFiles encodes everything before anything is written, so an
// encoding failure leaves the directory untouched.
func (p *PKI) outputFiles(p12Password string) ([]outputFile, error) {
	serverKey, err := privateKeyPEM(p.Server.Key)
	if err != nil {
		return nil, fmt.Errorf("testpki: server key: %w", err)
	}
	files := []outputFile{
		{path: "root.pem", data: p.Root.CertPEM},
		{path: "intermediate.pem", data: p.Intermediate.CertPEM},
		{path: "ca-bundle.pem", data: certificatesPEM(p.Intermediate.Cert, p.Root.Cert)},
		{path: "server.pem", data: certificatesPEM(p.Server.Chain...)},
		{path: "server-key.pem", data: serverKey, private: true},
		{path: "rogue-root.pem", data: p.RogueRoot.CertPEM},
		{path: CRLFile, data: p.CRL},
	}
	for _, card := range p.Cards {
		cf, err := cardFiles(card, p12Password)
		if err != nil {
			return nil, err
		}
		files = append(files, cf...)
	}
	disa, err := DISAFiles([]*x509.Certificate{p.Root.Cert, p.Intermediate.Cert})
	if err != nil {
		return nil, fmt.Errorf("testpki: DISA bundle: %w", err)
	}
	for _, name := range []string{DISAZip, DISADERFile, DISAPEMFile} {
		files = append(files, outputFile{path: name, data: disa[name]})
	}
	manifest, err := p.manifestJSON()
	if err != nil {
		return nil, err
	}
	readme, err := p.readme(p12Password)
	if err != nil {
		return nil, err
	}
	return append(files,
		outputFile{path: "manifest.json", data: manifest},
		outputFile{path: "README.md", data: readme},
	), nil
}

// Manifest is the content of manifest.json: a machine-readable index of
// the cards for tests and tooling that use the written directory.
type Manifest struct {
	Cards []ManifestCard `json:"cards"`
}

// ManifestCard describes one card in manifest.json.
type ManifestCard struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	EDIPI       string    `json:"edipi"`
	Subject     string    `json:"subject"`
	SHA256      string    `json:"sha256"` // lower-case hex of the certificate's DER
	NotAfter    time.Time `json:"not_after"`
}

func (p *PKI) manifestJSON() ([]byte, error) {
	m := Manifest{Cards: make([]ManifestCard, 0, len(p.Cards))}
	for _, card := range p.Cards {
		m.Cards = append(m.Cards, ManifestCard{
			Name:        card.Name,
			Description: card.Description,
			EDIPI:       card.EDIPI,
			Subject:     subjectString(card.Cert),
			SHA256:      cacid.Fingerprint(card.Cert.Raw),
			NotAfter:    card.Cert.NotAfter.UTC(),
		})
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("testpki: manifest: %w", err)
	}
	return append(data, '\n'), nil
}

// subjectString renders the subject like cacid.Identity.Subject does, one
// RDN per attribute in certificate order. That is exact for this package's
// certificates, whose RDNs are all single-valued; pkix.Name.String would
// instead merge the OUs into one "OU=DoD+OU=PKI+OU=USA" RDN.
func subjectString(cert *x509.Certificate) string {
	name := make(pkix.RDNSequence, 0, len(cert.Subject.Names))
	for _, attribute := range cert.Subject.Names {
		name = append(name, pkix.RelativeDistinguishedNameSET{attribute})
	}
	return name.String()
}

func certificatesPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, cert := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	return out
}

func privateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeFileAtomic replaces path with data. The temporary file is created
// with mode 0600 and only then widened to mode, so a key is never readable
// by others even briefly, and an interrupted run never leaves a truncated
// file behind.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// cardFiles are a card's chain, key and .p12 under cards/.
func cardFiles(card *Card, p12Password string) ([]outputFile, error) {
	if err := checkFileStem(card.Name); err != nil {
		return nil, err
	}
	key, err := privateKeyPEM(card.Key)
	if err != nil {
		return nil, fmt.Errorf("testpki: card %s key: %w", card.Name, err)
	}
	p12, err := pkcs12.LegacyDES.Encode(card.Key, card.Cert, card.Chain[1:], p12Password)
	if err != nil {
		return nil, fmt.Errorf("testpki: card %s PKCS#12: %w", card.Name, err)
	}
	stem := "cards/" + card.Name
	return []outputFile{
		{path: stem + ".pem", data: certificatesPEM(card.Chain...)},
		{path: stem + "-key.pem", data: key, private: true},
		{path: stem + ".p12", data: p12, private: true},
	}, nil
}

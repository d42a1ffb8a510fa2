package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/cacgate/cacgate/internal/testpki"
)

// benchPKI is everything the servers and the load generator need: the test
// CA, the server certificates (ECDSA, the recommended kind, and RSA-2048
// for comparison) and the client cards.
type benchPKI struct {
	pki   *testpki.PKI
	roots *x509.CertPool // what clients trust: the test root

	// Files the Caddyfiles point at.
	rootFile, intermediateFile, crlFile string
	serverCert, serverKey               string // ECDSA P-256
	rsaCert, rsaKey                     string // RSA-2048

	cards []*benchCard // enrolled in every store
	flood *benchCard   // not enrolled: has a roster record, for the enrollment flood
}

// benchCard is a client certificate with what the store records about it.
type benchCard struct {
	tls         tls.Certificate
	cert        *x509.Certificate
	edipi       string
	fingerprint string // lowercase hex SHA-256 of the DER, as the store keys cards
}

// floodEDIPI is the DoD ID of the unregistered card that floods enrollment;
// it is outside the range the enrolled cards use.
const floodEDIPI = "3000000001"

// cardEDIPI is the DoD ID of enrolled card i.
func cardEDIPI(i int) string { return fmt.Sprintf("2%09d", i) }

// makePKI generates the CA, the server certificates and n client cards
// (ECDSA P-256, in parallel: minting 10,000 takes about a second) and
// writes the files the servers read into dir.
func makePKI(dir string, n int) (*benchPKI, error) {
	p, err := testpki.Generate(testpki.Options{})
	if err != nil {
		return nil, err
	}
	b := &benchPKI{pki: p, roots: x509.NewCertPool()}
	b.roots.AddCert(p.Root.Cert)

	rsaServer, rsaKey, err := issueRSAServer(p.Intermediate)
	if err != nil {
		return nil, fmt.Errorf("RSA server certificate: %w", err)
	}
	ecKey, err := x509.MarshalPKCS8PrivateKey(p.Server.Key)
	if err != nil {
		return nil, err
	}
	rsaKeyDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		return nil, err
	}
	files := []struct {
		dst  *string
		name string
		data []byte
	}{
		{&b.rootFile, "root.pem", p.Root.CertPEM},
		{&b.intermediateFile, "intermediate.pem", p.Intermediate.CertPEM},
		{&b.crlFile, "crl/intermediate.crl", p.CRL},
		{&b.serverCert, "server-ecdsa.pem", pemCerts(p.Server.Cert, p.Intermediate.Cert)},
		{&b.serverKey, "server-ecdsa-key.pem", pemBlock("PRIVATE KEY", ecKey)},
		{&b.rsaCert, "server-rsa.pem", pemCerts(rsaServer, p.Intermediate.Cert)},
		{&b.rsaKey, "server-rsa-key.pem", pemBlock("PRIVATE KEY", rsaKeyDER)},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			return nil, err
		}
		*f.dst = path
	}

	if b.cards, err = mintCards(p.Intermediate, n); err != nil {
		return nil, err
	}
	if b.flood, err = mintCard(p.Intermediate, testpki.CardSpec{
		Name: "flood", Family: "FLOOD", Given: "FRANK", EDIPI: floodEDIPI,
	}); err != nil {
		return nil, err
	}
	return b, nil
}

// mintCards issues n DoD-layout cards (CN LOAD.TESTER.Q.<EDIPI>, the DoD
// policies, clientAuth + smartcardLogon, UPN and email SANs) with P-256
// keys, spread over the cores.
func mintCards(ca *testpki.Authority, n int) ([]*benchCard, error) {
	cards := make([]*benchCard, n)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				c, err := mintCard(ca, testpki.CardSpec{
					Name: fmt.Sprintf("bench%07d", i), Family: "LOAD", Given: "TESTER", Middle: "Q", EDIPI: cardEDIPI(i),
				})
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				cards[i] = c
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return cards, nil
}

func mintCard(ca *testpki.Authority, spec testpki.CardSpec) (*benchCard, error) {
	c, err := ca.IssueCard(spec)
	if err != nil {
		return nil, err
	}
	return &benchCard{tls: c.TLS, cert: c.Cert, edipi: spec.EDIPI, fingerprint: fingerprint(c.Cert.Raw)}, nil
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// issueRSAServer issues a localhost server certificate with an RSA-2048
// key, like the one testpki makes with P-256, to show what the key type
// costs per full handshake.
func issueRSAServer(ca *testpki.Authority) (*x509.Certificate, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"cacgate bench server (RSA)"}},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func pemCerts(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pemBlock("CERTIFICATE", c.Raw)...)
	}
	return out
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

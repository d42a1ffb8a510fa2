package revocation

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// testCA is a certificate authority of the tests' small PKI.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// testPKI is a root, the issuing CA the tests check certificates of, and a
// forger's CA that copies the issuing CA's name but has its own key.
type testPKI struct {
	root, ca, rogue *testCA
}

var serialLimit = new(big.Int).Lsh(big.NewInt(1), 127)

func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, serialLimit)
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	root := newCA(t, "Test Root CA", nil)
	rogueRoot := newCA(t, "Test Root CA", nil)
	return &testPKI{
		root:  root,
		ca:    newCA(t, "TEST ID CA-1", root),
		rogue: newCA(t, "TEST ID CA-1", rogueRoot),
	}
}

// withKey returns a copy of the CA signing with another key: a forger who
// copied the CA's certificate but not its key.
func (ca *testCA) withKey(key crypto.Signer) *testCA {
	return &testCA{cert: ca.cert, key: key}
}

// newCA creates a CA certificate signed by parent, or self-signed when
// parent is nil.
func newCA(t testing.TB, cn string, parent *testCA) *testCA {
	t.Helper()
	key := newKey(t)
	template := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"U.S. Government"}, OrganizationalUnit: []string{"PKI"}, CommonName: cn},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer, signerCert := key, template
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	return &testCA{cert: createCert(t, template, signerCert, key.Public(), signer), key: key}
}

func createCert(t testing.TB, template, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, template, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// leafOptions are the URLs a card certificate names.
type leafOptions struct {
	ocsp []string // AIA OCSP responders
	cdp  []string // CRL distribution points
}

// issueLeaf issues a card certificate.
func (ca *testCA) issueLeaf(t testing.TB, opts leafOptions) *x509.Certificate {
	t.Helper()
	template := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: "DOE.JOHN.1234567890"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		OCSPServer:            opts.ocsp,
		CRLDistributionPoints: opts.cdp,
	}
	return createCert(t, template, ca.cert, newKey(t).Public(), ca.key)
}

// issueResponder issues a delegated OCSP responder certificate, with the
// OCSP-signing usage unless withoutEKU.
func (ca *testCA) issueResponder(t testing.TB, withoutEKU bool) *testCA {
	t.Helper()
	key := newKey(t)
	template := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkix.Name{CommonName: "TEST ID CA-1 OCSP Responder"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
	}
	if withoutEKU {
		template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return &testCA{cert: createCert(t, template, ca.cert, key.Public(), ca.key), key: key}
}

// crlSpec describes a CRL for makeCRL. Zero times mean a CRL issued an hour
// ago, valid for a day.
type crlSpec struct {
	thisUpdate, nextUpdate time.Time
	number                 int64
	revoked                []x509.RevocationListEntry
	extensions             []pkix.Extension
}

// revokedEntry lists a certificate's serial as revoked for reason.
func revokedEntry(serial *big.Int, reason int) x509.RevocationListEntry {
	return x509.RevocationListEntry{
		SerialNumber:   serial,
		RevocationTime: time.Now().Add(-2 * time.Hour).Truncate(time.Second),
		ReasonCode:     reason,
	}
}

// makeCRL signs a DER CRL with the CA's key.
func (ca *testCA) makeCRL(t testing.TB, spec crlSpec) []byte {
	t.Helper()
	if spec.thisUpdate.IsZero() {
		spec.thisUpdate = time.Now().Add(-time.Hour)
	}
	if spec.nextUpdate.IsZero() {
		spec.nextUpdate = spec.thisUpdate.Add(24 * time.Hour)
	}
	if spec.number == 0 {
		spec.number = 1
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(spec.number),
		ThisUpdate:                spec.thisUpdate,
		NextUpdate:                spec.nextUpdate,
		RevokedCertificateEntries: spec.revoked,
		ExtraExtensions:           spec.extensions,
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// writeFile writes data to a file in dir, replacing it atomically (as a CRL
// download job should) so a poller never sees half a file.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

func pemCRL(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// newChecker builds a Checker logging to the test, and starts it with a
// context cancelled at the end of the test.
func newChecker(t testing.TB, cfg Config) *Checker {
	t.Helper()
	c := mustNew(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-c.stopped
	})
	return c
}

func mustNew(t testing.TB, cfg Config) *Checker {
	t.Helper()
	if cfg.Logger == nil {
		if _, ok := t.(*testing.T); ok {
			cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
		}
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond every 10ms for up to a minute: long enough for
// a background goroutine on a busy machine, and only a failing test waits
// that long.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantStatus(t testing.TB, v Verdict, status Status, source string) {
	t.Helper()
	if v.Status != status || v.Source != source {
		t.Fatalf("verdict = %v from %q (err %v), want %v from %q", v.Status, v.Source, v.Err, status, source)
	}
}

var randReader = rand.Reader

// distributionPointName and idp encode an issuingDistributionPoint
// extension (RFC 5280 section 5.2.5) the way crypto/x509 encodes
// distribution points.
type distributionPointName struct {
	FullName []asn1.RawValue `asn1:"optional,tag:0"`
}

type idp struct {
	DistributionPoint          distributionPointName `asn1:"optional,tag:0"`
	OnlyContainsUserCerts      bool                  `asn1:"optional,tag:1"`
	OnlyContainsCACerts        bool                  `asn1:"optional,tag:2"`
	OnlySomeReasons            asn1.BitString        `asn1:"optional,tag:3"`
	IndirectCRL                bool                  `asn1:"optional,tag:4"`
	OnlyContainsAttributeCerts bool                  `asn1:"optional,tag:5"`
}

func issuingDistributionPoint(t testing.TB, v idp) pkix.Extension {
	t.Helper()
	value, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true, Value: value}
}

// selfSignedCA makes a root CA with the given key.
func selfSignedCA(t testing.TB, cn string, key crypto.Signer) *testCA {
	t.Helper()
	template := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return &testCA{cert: createCert(t, template, template, key.Public(), key), key: key}
}

type signatureAlgorithmCase struct {
	name   string
	ca     *testCA
	sigAlg x509.SignatureAlgorithm
}

// signatureAlgorithmCases covers every algorithm CRLs are accepted with.
func signatureAlgorithmCases(t testing.TB) []signatureAlgorithmCase {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaCA := selfSignedCA(t, "RSA CA", rsaKey)
	return []signatureAlgorithmCase{
		{"RSA PKCS#1 SHA-256", rsaCA, x509.SHA256WithRSA},
		{"RSA PKCS#1 SHA-384", rsaCA, x509.SHA384WithRSA},
		{"RSA PKCS#1 SHA-512", rsaCA, x509.SHA512WithRSA},
		{"RSA-PSS SHA-256", rsaCA, x509.SHA256WithRSAPSS},
		{"RSA-PSS SHA-384", rsaCA, x509.SHA384WithRSAPSS},
		{"RSA-PSS SHA-512", rsaCA, x509.SHA512WithRSAPSS},
		{"ECDSA P-256 SHA-256", selfSignedCA(t, "P-256 CA", newKey(t)), x509.ECDSAWithSHA256},
		{"ECDSA P-384 SHA-384", selfSignedCA(t, "P-384 CA", p384), x509.ECDSAWithSHA384},
		{"ECDSA P-521 SHA-512", selfSignedCA(t, "P-521 CA", p521), x509.ECDSAWithSHA512},
		{"Ed25519", selfSignedCA(t, "Ed25519 CA", edKey), x509.PureEd25519},
	}
}

// testClock is a settable clock for Config.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

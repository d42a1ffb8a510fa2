package trustbundle_test

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/testpki"
	"github.com/cacgate/cacgate/internal/trustbundle"
)

var now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serial int64

// newCert makes a certificate named cn, signed by parent (self-signed when
// nil), with key (a fresh P-256 key when nil).
func newCert(t *testing.T, cn string, parent *ca, isCA bool, notAfter time.Time, key crypto.Signer) *ca {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"U.S. Government"}},
		NotBefore: now.Add(-time.Hour * 24 * 365), NotAfter: notAfter,
		BasicConstraintsValid: true, IsCA: isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		tmpl.PolicyIdentifiers = nil
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert: c, key: key}
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemOf(certs ...*x509.Certificate) []byte { return trustbundle.EncodePEM(certs) }

func hierarchy(t *testing.T) (root, inter *ca) {
	root = newCert(t, "Test DoD Root CA 3", nil, true, now.AddDate(10, 0, 0), nil)
	inter = newCert(t, "TEST DOD ID CA-80", root, true, now.AddDate(5, 0, 0), nil)
	return root, inter
}

func subjects(b *trustbundle.Bundle) string {
	var s []string
	for _, ca := range b.CAs {
		s = append(s, ca.Cert.Subject.CommonName)
	}
	return strings.Join(s, ",")
}

func TestLoadsDISAArchiveAndItsParts(t *testing.T) {
	root, inter := hierarchy(t)
	files, err := testpki.DISAFiles([]*x509.Certificate{root.cert, inter.cert})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range files {
		write(t, dir, name, data)
	}
	for _, name := range []string{testpki.DISAZip, testpki.DISADERFile, testpki.DISAPEMFile} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			b, err := trustbundle.Load([]string{filepath.Join(dir, name)}, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := subjects(b); got != "TEST DOD ID CA-80,Test DoD Root CA 3" {
				t.Errorf("CAs = %s", got)
			}
			if len(b.Refused) != 0 {
				t.Errorf("refused: %v", b.Refused)
			}
			leaf := newCert(t, "DOE.JOHN.1234567890", inter, false, now.AddDate(1, 0, 0), nil)
			inters := x509.NewCertPool()
			inters.AddCert(inter.cert)
			if _, err := leaf.cert.Verify(x509.VerifyOptions{Roots: b.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("a card of the bundle's CA does not verify against its pool: %v", err)
			}
		})
	}
}

// The archive unpacked into a directory (as `unzip` leaves it) loads the
// same, its checksum list checked.
func TestLoadsUnpackedDISAFolder(t *testing.T) {
	root, inter := hierarchy(t)
	files, err := testpki.DISAFiles([]*x509.Certificate{root.cert, inter.cert})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unzip(t, files[testpki.DISAZip], dir)
	b, err := trustbundle.Load([]string{dir}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := subjects(b); got != "TEST DOD ID CA-80,Test DoD Root CA 3" || len(b.Refused) != 0 {
		t.Errorf("CAs = %s, refused %v", got, b.Refused)
	}

	// The archive itself in a directory loads too (next to other files).
	zdir := t.TempDir()
	write(t, zdir, "dod.zip", files[testpki.DISAZip])
	write(t, zdir, "extra.pem", pemOf(root.cert))
	if zb, err := trustbundle.Load([]string{zdir}, now); err != nil || subjects(zb) != "TEST DOD ID CA-80,Test DoD Root CA 3" || len(zb.Refused) != 0 {
		t.Errorf("directory holding the archive: %v, CAs %s, refused %v", err, subjects(zb), zb.Refused)
	}

	// A member altered after signing is refused, by name, as is one the
	// list does not know.
	der := filepath.Join(dir, testpki.DISABundleName, testpki.DISABundleName+".der.p7b")
	other := newCert(t, "Forged Root", nil, true, now.AddDate(1, 0, 0), nil)
	p7, _ := trustbundle.EncodePKCS7([]*x509.Certificate{other.cert})
	write(t, filepath.Dir(der), filepath.Base(der), p7)
	write(t, filepath.Dir(der), "extra.pem", pemOf(other.cert))
	b, err = trustbundle.Load([]string{dir}, now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(subjects(b), "Forged") {
		t.Fatalf("a file failing its checksum was loaded: %s", subjects(b))
	}
	refused := refusals(b)
	for _, want := range []string{".der.p7b: SHA-256 does not match", "extra.pem: not in its folder's checksum list"} {
		if !strings.Contains(refused, want) {
			t.Errorf("refusals %q lack %q", refused, want)
		}
	}
}

func refusals(b *trustbundle.Bundle) string {
	var s []string
	for _, r := range b.Refused {
		s = append(s, r.String())
	}
	return strings.Join(s, "\n")
}

func unzip(t *testing.T, data []byte, dir string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		write(t, dir, f.Name, buf.Bytes())
	}
}

func TestChecksumListWithBadSignatureRefusesItsFolder(t *testing.T) {
	root, inter := hierarchy(t)
	files, err := testpki.DISAFiles([]*x509.Certificate{root.cert, inter.cert})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unzip(t, files[testpki.DISAZip], dir)
	sums := filepath.Join(dir, testpki.DISABundleName, testpki.DISABundleName+".sha256")
	data, _ := os.ReadFile(sums)
	// Flip one byte of the signed list's text (which lies well inside).
	i := bytes.Index(data, []byte(".der.p7b"))
	data[i+1] ^= 0x01
	write(t, filepath.Dir(sums), filepath.Base(sums), data)
	b, err := trustbundle.Load([]string{dir}, now)
	if !errors.Is(err, trustbundle.ErrNoCA) {
		t.Fatalf("Load = %v, want ErrNoCA", err)
	}
	if !strings.Contains(err.Error(), "checksum list unusable") {
		t.Errorf("error does not say why: %v", err)
	}
	_ = b
}

func TestRefusesNonCAsExpiredWeakAndBadFilesByName(t *testing.T) {
	root, inter := hierarchy(t)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak := newCert(t, "Weak Root", nil, true, now.AddDate(1, 0, 0), rsa1024)
	expired := newCert(t, "Old Root", nil, true, now.Add(-time.Hour), nil)
	leaf := newCert(t, "DOE.JOHN.1234567890", inter, false, now.AddDate(1, 0, 0), nil)
	dir := t.TempDir()
	write(t, dir, "good.pem", pemOf(root.cert, inter.cert))
	write(t, dir, "mixed.pem", pemOf(weak.cert, expired.cert, leaf.cert))
	write(t, dir, "broken.p7b", []byte("-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n"))
	write(t, dir, "garbage.crt", []byte{0x30, 0x03, 0x02, 0x01})
	write(t, dir, "README.txt", []byte("not a certificate, and not read"))
	b, err := trustbundle.Load([]string{dir}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := subjects(b); got != "TEST DOD ID CA-80,Test DoD Root CA 3" {
		t.Errorf("CAs = %s", got)
	}
	got := refusals(b)
	for _, want := range []string{
		`mixed.pem: "CN=Weak Root,O=U.S. Government": weak key: RSA 1024 bits`,
		`mixed.pem: "CN=Old Root,O=U.S. Government": expired on`,
		`mixed.pem: "CN=DOE.JOHN.1234567890,O=U.S. Government": not a CA certificate`,
		`broken.p7b: `,
		`garbage.crt: `,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("refusals lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "README") {
		t.Errorf("a README was read as a certificate file:\n%s", got)
	}
}

func TestNoUsableCAIsAnError(t *testing.T) {
	dir := t.TempDir()
	expired := newCert(t, "Old Root", nil, true, now.Add(-time.Hour), nil)
	p := write(t, dir, "old.pem", pemOf(expired.cert))
	_, err := trustbundle.Load([]string{p}, now)
	if !errors.Is(err, trustbundle.ErrNoCA) || !strings.Contains(err.Error(), "Old Root") {
		t.Fatalf("Load = %v, want ErrNoCA naming the refused root", err)
	}
	if _, err := trustbundle.Load([]string{filepath.Join(dir, "missing.p7b")}, now); err == nil {
		t.Fatal("a missing file loaded")
	}
}

// BER with indefinite lengths, as some Windows-exported .p7b files are,
// parses like its DER.
func TestParsesBERIndefiniteLengths(t *testing.T) {
	root, inter := hierarchy(t)
	der, err := trustbundle.EncodePKCS7([]*x509.Certificate{root.cert, inter.cert})
	if err != nil {
		t.Fatal(err)
	}
	ber := indefinite(t, der)
	if bytes.Equal(ber, der) {
		t.Fatal("no BER made")
	}
	certs, err := trustbundle.ParsePKCS7(ber)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || !certs[0].Equal(root.cert) || !certs[1].Equal(inter.cert) {
		t.Fatalf("got %d certificates", len(certs))
	}
}

// indefinite re-encodes the outer ContentInfo SEQUENCE and its [0] with
// indefinite lengths.
func indefinite(t *testing.T, der []byte) []byte {
	t.Helper()
	body := func(b []byte) (tag byte, content []byte) {
		if b[1] < 0x80 {
			return b[0], b[2 : 2+int(b[1])]
		}
		n := int(b[1] & 0x7f)
		l := 0
		for _, x := range b[2 : 2+n] {
			l = l<<8 | int(x)
		}
		return b[0], b[2+n : 2+n+l]
	}
	tag, seq := body(der)
	// seq: OID then [0] { SignedData }.
	oidLen := 2 + int(seq[1])
	oid, rest := seq[:oidLen], seq[oidLen:]
	t0, explicit := body(rest)
	var out []byte
	out = append(out, tag, 0x80)
	out = append(out, oid...)
	out = append(out, t0, 0x80)
	out = append(out, explicit...)
	out = append(out, 0, 0, 0, 0)
	return out
}

func TestEncodeRoundTrips(t *testing.T) {
	root, inter := hierarchy(t)
	in := []*x509.Certificate{root.cert, inter.cert}
	pemP7, err := trustbundle.EncodePKCS7PEM(in)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(pemP7); block == nil || block.Type != "PKCS7" {
		t.Fatalf("PEM PKCS#7 label: %q", pemP7[:30])
	}
	out, err := trustbundle.ParsePKCS7(pemP7)
	if err != nil || len(out) != 2 || !out[0].Equal(root.cert) {
		t.Fatalf("round trip: %v, %d certificates", err, len(out))
	}
}

func TestDiffNamesAddedAndRemovedCAs(t *testing.T) {
	root, inter := hierarchy(t)
	newCA := newCert(t, "TEST DOD ID CA-81", root, true, now.AddDate(5, 0, 0), nil)
	dir := t.TempDir()
	prev, err := trustbundle.Load([]string{write(t, dir, "v1.pem", pemOf(root.cert, inter.cert))}, now)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := trustbundle.Load([]string{write(t, dir, "v2.pem", pemOf(root.cert, newCA.cert))}, now)
	if err != nil {
		t.Fatal(err)
	}
	added, removed := trustbundle.Diff(prev, cur)
	if len(added) != 1 || !strings.Contains(added[0].Subject, "CA-81") || len(removed) != 1 || !strings.Contains(removed[0].Subject, "CA-80") {
		t.Fatalf("added %v, removed %v", added, removed)
	}
	if prev.Digest == cur.Digest {
		t.Error("different files, same digest")
	}
	e := cur.Describe()
	if len(e) != 2 || !e[1].Root || e[0].Root || e[0].Issuer != e[1].Subject {
		t.Errorf("describe: %+v", e)
	}
}

func TestCommittedDISABundleLoads(t *testing.T) {
	b, err := trustbundle.Load([]string{filepath.Join("..", "..", "testdata", "pki", filepath.FromSlash(testpki.DISAZip))}, now)
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join("..", "..", "testdata", "pki", "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(root)
	if len(b.CAs) != 2 || len(b.Refused) != 0 || !bytes.Equal(b.CAs[1].Cert.Raw, block.Bytes) {
		t.Fatalf("committed bundle: %s, refused %v", subjects(b), b.Refused)
	}
}

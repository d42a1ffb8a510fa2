package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

// ekuChain is a root, an intermediate whose EKU extension is caEKU (nil:
// none) and a card with cardEKU under it.
type ekuChain struct {
	roots *x509.CertPool
	inter *x509.Certificate
	leaf  *x509.Certificate
}

func createTestCert(t *testing.T, tmpl, parent *x509.Certificate, pub, key any) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newEKUChain(t *testing.T, caEKU []x509.ExtKeyUsage, cardEKU []x509.ExtKeyUsage, cardUnknownEKU []asn1.ObjectIdentifier) ekuChain {
	t.Helper()
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	root := createTestCert(t, rootT, rootT, rk.Public(), rk)
	intT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "DOD EMAIL CA-1"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, ExtKeyUsage: caEKU}
	inter := createTestCert(t, intT, root, ik.Public(), rk)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "DOE.JOHN.1234567890"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: cardEKU, UnknownExtKeyUsage: cardUnknownEKU}
	leaf := createTestCert(t, leafT, inter, lk.Public(), ik)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	return ekuChain{roots: roots, inter: inter, leaf: leaf}
}

var oidSmartcardLogon = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}

// An intermediate restricted by EKU (emailProtection only) may not issue
// clientAuth cards: crypto/tls refuses such a card in the handshake, and
// the gateway's own chain verification (trust_pool) must agree, with the
// usage code rather than "untrusted".
func TestVerifyHonoursIntermediateEKU(t *testing.T) {
	restricted := newEKUChain(t, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil)
	// What crypto/tls does for client certificates:
	pool := x509.NewCertPool()
	pool.AddCert(restricted.inter)
	if _, err := restricted.leaf.Verify(x509.VerifyOptions{Roots: restricted.roots, Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Fatal("crypto/x509 accepts the chain for clientAuth; the test is wrong")
	}
	pol := &Policy{Roots: restricted.roots}
	if err := pol.Compile(); err != nil {
		t.Fatal(err)
	}
	chain, rej := pol.Verify(restricted.leaf, []*x509.Certificate{restricted.inter}, time.Now())
	if code(rej) != CodeUsage || chain != nil || !strings.Contains(rej.Reason, "certificate authority") {
		t.Fatalf("Verify = %d certificates, %+v; want %s naming the issuing CA's restriction", len(chain), rej, CodeUsage)
	}

	for _, tc := range []struct {
		name    string
		caEKU   []x509.ExtKeyUsage
		cardEKU []x509.ExtKeyUsage
		unknown []asn1.ObjectIdentifier
		want    string
	}{
		{"intermediate without EKU", nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, ""},
		{"intermediate allowing clientAuth", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, ""},
		{"intermediate allowing any", []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, ""},
		{"card with smartcardLogon and clientAuth", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, []asn1.ObjectIdentifier{oidSmartcardLogon}, ""},
		// The card's own usage is Check's to report, with its own reason.
		{"card without clientAuth", nil, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, nil, ""},
		{"card without clientAuth under a restricted intermediate", []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, nil, ""},
	} {
		c := newEKUChain(t, tc.caEKU, tc.cardEKU, tc.unknown)
		pol := &Policy{Roots: c.roots}
		chain, rej := pol.Verify(c.leaf, []*x509.Certificate{c.inter}, time.Now())
		if code(rej) != tc.want {
			t.Errorf("%s: %q (%v), want %q", tc.name, code(rej), rej, tc.want)
		}
		if rej == nil && len(chain) != 3 {
			t.Errorf("%s: chain of %d", tc.name, len(chain))
		}
	}
}

// required_eku accepts any OID, including those crypto/x509 parses into a
// named ExtKeyUsage instead of UnknownExtKeyUsage.
func TestRequiredEKUByOIDOfEveryKnownUsage(t *testing.T) {
	for usage, oid := range ekuOIDs {
		c := newEKUChain(t, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, usage}, nil)
		pol := Policy{RequiredEKU: []string{oid.String()}}
		if err := pol.Compile(); err != nil {
			t.Fatal(err)
		}
		if rej := pol.Check(c.leaf, c.inter); rej != nil {
			t.Errorf("card with %s refused for required_eku %s: %v", oid, oid, rej)
		}
		// A card without it is refused.
		without := newEKUChain(t, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil)
		if usage != x509.ExtKeyUsageClientAuth {
			if rej := pol.Check(without.leaf, without.inter); code(rej) != CodeUsage {
				t.Errorf("card without %s: %q, want %q", oid, code(rej), CodeUsage)
			}
		}
	}
	// codeSigning, the reviewer's example, spelled out.
	c := newEKUChain(t, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageCodeSigning}, nil)
	pol := Policy{RequiredEKU: []string{"1.3.6.1.5.5.7.3.3"}}
	if err := pol.Compile(); err != nil {
		t.Fatal(err)
	}
	if rej := pol.Check(c.leaf, c.inter); rej != nil {
		t.Errorf("card carrying codeSigning refused for required_eku 1.3.6.1.5.5.7.3.3: %v", rej)
	}
}

// ekuOIDs must name the OID crypto/x509 maps to each ExtKeyUsage: a
// certificate carrying the OID parses back to the constant.
func TestEKUOIDTableMatchesCryptoX509(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for usage, oid := range ekuOIDs {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
			UnknownExtKeyUsage: []asn1.ObjectIdentifier{oid}}
		cert := createTestCert(t, tmpl, tmpl, k.Public(), k)
		if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{usage}) || len(cert.UnknownExtKeyUsage) != 0 {
			t.Errorf("OID %s parses to %v %v, want ExtKeyUsage %d", oid, cert.ExtKeyUsage, cert.UnknownExtKeyUsage, usage)
		}
	}
	// Every constant crypto/x509 can encode is in the table: it refuses to
	// encode the first value past the last constant it defines.
	for u := x509.ExtKeyUsageAny; ; u++ {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{u}}
		if _, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k); err != nil {
			if u <= x509.ExtKeyUsageMicrosoftKernelCodeSigning {
				t.Fatalf("ExtKeyUsage %d: %v", u, err)
			}
			break
		}
		if _, ok := ekuOIDs[u]; !ok {
			t.Errorf("ExtKeyUsage %d missing from the table", u)
		}
	}
}

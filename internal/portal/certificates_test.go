package portal

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/trustbundle"
)

func testCA(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCertificatesPage(t *testing.T) {
	f := newPortal(t, nil, false)
	root := testCA(t, "Test <Root> CA")
	var certs []*x509.Certificate
	f.p.cfg.TrustCertificates = func(*http.Request) []*x509.Certificate { return certs }
	get := func(method, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Accept", "text/html")
		return f.serve(t, r, Visitor{})
	}
	if lvl := f.p.Admission(httptest.NewRequest("GET", PathCertificatesP7B, nil)); lvl != Public {
		t.Fatalf("admission %d, want Public", lvl)
	}

	// Unknown CAs: the page says so, the downloads are 404.
	w := get("GET", PathCertificates)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "cannot tell") {
		t.Errorf("unknown CAs: HTTP %d\n%s", w.Code, w.Body)
	}
	if w := get("GET", PathCertificatesPEM); w.Code != http.StatusNotFound {
		t.Errorf("unknown CAs, PEM: HTTP %d", w.Code)
	}

	certs = []*x509.Certificate{root}
	w = get("GET", PathCertificates)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Test &lt;Root&gt; CA") || strings.Contains(w.Body.String(), "<Root>") {
		t.Errorf("page: HTTP %d, the CA's name not shown escaped\n%s", w.Code, w.Body)
	}
	w = get("HEAD", PathCertificatesP7B)
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD p7b: HTTP %d, %d bytes, %v", w.Code, w.Body.Len(), w.Header())
	}
	w = get("GET", PathCertificatesP7B)
	got, err := trustbundle.ParsePKCS7(w.Body.Bytes())
	if err != nil || len(got) != 1 || !got[0].Equal(root) || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("p7b: %v, %d certificates, %v", err, len(got), w.Header())
	}
	for _, path := range []string{PathCertificates + "/other.p7b", PathCertificates + "/"} {
		if w := get("GET", path); w.Code != http.StatusNotFound {
			t.Errorf("%s: HTTP %d", path, w.Code)
		}
	}
	if w := get("POST", PathCertificates); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: HTTP %d", w.Code)
	}
}

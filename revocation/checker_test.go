package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// modeFixture is a card that OCSP calls good and the CRL file calls
// revoked, so the verdict's source shows which was asked first.
type modeFixture struct {
	pki       *testPKI
	responder *testResponder
	leaf      *x509.Certificate
	crlPath   string
}

func newModeFixture(t *testing.T) *modeFixture {
	pki := newTestPKI(t)
	f := &modeFixture{pki: pki, responder: newTestResponder(t, pki.ca)}
	f.leaf = pki.ca.issueLeaf(t, leafOptions{ocsp: []string{f.responder.url()}})
	f.responder.set(f.leaf.SerialNumber, ocsp.Good)
	crl := pki.ca.makeCRL(t, crlSpec{revoked: []x509.RevocationListEntry{revokedEntry(f.leaf.SerialNumber, 1)}})
	f.crlPath = writeFile(t, t.TempDir(), "ca.crl", crl)
	return f
}

func (f *modeFixture) check(t *testing.T, mode Mode) Verdict {
	c := newChecker(t, Config{Mode: mode, CRLFiles: []string{f.crlPath}, CRLIssuers: []*x509.Certificate{f.pki.ca.cert}})
	return c.Check(context.Background(), f.leaf, f.pki.ca.cert)
}

func TestModeOrder(t *testing.T) {
	f := newModeFixture(t)
	wantStatus(t, f.check(t, ModeOCSPThenCRL), StatusGood, SourceOCSP)
	wantStatus(t, f.check(t, ""), StatusGood, SourceOCSP) // the default
	wantStatus(t, f.check(t, ModeCRLThenOCSP), StatusRevoked, SourceCRL)
	wantStatus(t, f.check(t, ModeOCSP), StatusGood, SourceOCSP)
	wantStatus(t, f.check(t, ModeCRL), StatusRevoked, SourceCRL)
	wantStatus(t, f.check(t, ModeOff), StatusGood, SourceOff)
	if n := f.responder.requests.Load(); n != 3 {
		t.Errorf("%d OCSP requests, want 3: crl_then_ocsp, crl and off must not ask", n)
	}
}

func TestModeFallback(t *testing.T) {
	t.Run("ocsp_then_crl falls back to the CRL when OCSP gives no verdict", func(t *testing.T) {
		f := newModeFixture(t)
		f.responder.set(f.leaf.SerialNumber, ocsp.Unknown)
		wantStatus(t, f.check(t, ModeOCSPThenCRL), StatusRevoked, SourceCRL)
		f.responder.configure(func(r *testResponder) { r.httpCode = http.StatusBadGateway })
		wantStatus(t, f.check(t, ModeOCSPThenCRL), StatusRevoked, SourceCRL)
	})
	t.Run("crl_then_ocsp falls back to OCSP when no CRL covers the card", func(t *testing.T) {
		f := newModeFixture(t)
		other := f.pki.ca.issueLeaf(t, leafOptions{ocsp: []string{f.responder.url()}})
		f.responder.set(other.SerialNumber, ocsp.Revoked)
		c := newChecker(t, Config{Mode: ModeCRLThenOCSP}) // no CRLs at all
		wantStatus(t, c.Check(context.Background(), other, f.pki.ca.cert), StatusRevoked, SourceOCSP)
	})
	t.Run("crl_then_ocsp uses OCSP while the distribution point is fetched", func(t *testing.T) {
		pki := newTestPKI(t)
		responder := newTestResponder(t, pki.ca)
		server := newCRLServer(t, nil)
		leaf := pki.ca.issueLeaf(t, leafOptions{ocsp: []string{responder.url()}, cdp: []string{server.url()}})
		responder.set(leaf.SerialNumber, ocsp.Good)
		server.crl = pki.ca.makeCRL(t, crlSpec{revoked: []x509.RevocationListEntry{revokedEntry(leaf.SerialNumber, 1)}})
		c := newChecker(t, Config{Mode: ModeCRLThenOCSP, FetchCRLs: true})
		wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusGood, SourceOCSP)
		eventually(t, "the fetched CRL to take over", func() bool {
			return c.Check(context.Background(), leaf, pki.ca.cert).Source == SourceCRL
		})
		wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusRevoked, SourceCRL)
	})
	t.Run("neither answers: unavailable with both reasons", func(t *testing.T) {
		pki := newTestPKI(t)
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		leaf := pki.ca.issueLeaf(t, leafOptions{ocsp: []string{down.URL}})
		v := newChecker(t, Config{}).Check(context.Background(), leaf, pki.ca.cert)
		wantStatus(t, v, StatusUnavailable, "")
		if !errors.Is(v.Err, errNoCRL) || !strings.Contains(v.Err.Error(), "ocsp") {
			t.Errorf("Err = %v, want the OCSP and CRL reasons", v.Err)
		}
	})
}

func TestCheckRefusesBadArgumentsEvenFailingOpen(t *testing.T) {
	pki := newTestPKI(t)
	leaf := pki.ca.issueLeaf(t, leafOptions{})
	c := newChecker(t, Config{FailOpen: true})
	for name, args := range map[string][2]*x509.Certificate{
		"no leaf":      {nil, pki.ca.cert},
		"no issuer":    {leaf, nil},
		"wrong issuer": {leaf, pki.root.cert},
	} {
		v := c.Check(context.Background(), args[0], args[1])
		if v.Status != StatusUnavailable || v.FailedOpen || v.Err == nil {
			t.Errorf("%s: %+v, want unavailable", name, v)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Mode: "sometimes"}, "unknown mode"},
		{Config{OCSPTimeout: -time.Second}, "ocsp timeout must not be negative"},
		{Config{MaxCacheAge: 30 * time.Second}, "at least 1m"},
		{Config{OCSPResponder: "ldap://ocsp.example"}, "not an absolute http or https URL"},
		{Config{Mode: ModeCRL}, "needs crl files or crl fetching"},
		{Config{CRLFiles: []string{""}}, "crl file 1 is empty"},
		{Config{CRLIssuers: []*x509.Certificate{nil}}, "crl issuer 1 is nil"},
		{Config{CacheSize: -1}, "cache size must not be negative"},
	}
	for _, tc := range cases {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}

	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := c.cfg
	if got.Mode != ModeOCSPThenCRL || got.OCSPTimeout != 5*time.Second || got.CRLTimeout != 30*time.Second ||
		got.ClockSkew != 5*time.Minute || got.MaxCacheAge != time.Hour || got.RefreshInterval != time.Minute ||
		got.CacheSize != 10000 || got.HTTPClient == nil || got.Logger == nil || got.Now == nil || got.FailOpen || got.Intermediates {
		t.Errorf("defaults: %+v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); <-c.stopped }()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestStatusString(t *testing.T) {
	for status, want := range map[Status]string{StatusGood: "good", StatusRevoked: "revoked", StatusUnavailable: "unavailable", Status(9): "Status(9)"} {
		if got := status.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(status), got, want)
		}
	}
}

package revocation

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/testpki"
)

func TestCRLFileRevokedAndGood(t *testing.T) {
	pki := newTestPKI(t)
	revoked := pki.ca.issueLeaf(t, leafOptions{})
	good := pki.ca.issueLeaf(t, leafOptions{})
	entry := revokedEntry(revoked.SerialNumber, 1) // keyCompromise
	crl := pki.ca.makeCRL(t, crlSpec{
		nextUpdate: time.Now().Add(30 * time.Minute),
		revoked:    []x509.RevocationListEntry{entry, revokedEntry(randomSerial(t), 4)},
	})
	path := writeFile(t, t.TempDir(), "ca.crl", crl)
	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{path}, CRLIssuers: []*x509.Certificate{pki.ca.cert}})

	v := c.Check(context.Background(), revoked, pki.ca.cert)
	wantStatus(t, v, StatusRevoked, SourceCRL)
	if v.Reason != 1 || !v.RevokedAt.Equal(entry.RevocationTime) {
		t.Errorf("Reason %d at %v, want 1 at %v", v.Reason, v.RevokedAt, entry.RevocationTime)
	}
	v = c.Check(context.Background(), good, pki.ca.cert)
	wantStatus(t, v, StatusGood, SourceCRL)
	if d := time.Until(v.ValidUntil); d > 30*time.Minute || d < 29*time.Minute {
		t.Errorf("ValidUntil in %v, want the CRL's nextUpdate, 30m", d)
	}

	s := c.Stats()
	if s.CRLs != 1 || s.Entries != 2 || s.IndexBytes <= 0 || len(s.Sources) != 1 || s.Sources[0].Name != path {
		t.Errorf("Stats = %+v", s)
	}
}

func TestCRLFilesInDirectoryDERAndPEM(t *testing.T) {
	pki := newTestPKI(t)
	other := newCA(t, "TEST ID CA-2", pki.root)
	leafA, leafB := pki.ca.issueLeaf(t, leafOptions{}), other.issueLeaf(t, leafOptions{})
	dir := t.TempDir()
	writeFile(t, dir, "a.crl", pki.ca.makeCRL(t, crlSpec{revoked: []x509.RevocationListEntry{revokedEntry(leafA.SerialNumber, 0)}}))
	// Two CRLs in one PEM file are both used.
	bundle := append(pemCRL(other.makeCRL(t, crlSpec{number: 1})), pemCRL(other.makeCRL(t, crlSpec{number: 2, revoked: []x509.RevocationListEntry{revokedEntry(leafB.SerialNumber, 0)}}))...)
	writeFile(t, dir, "b.PEM", bundle)
	writeFile(t, dir, "notes.txt", []byte("not a CRL, and not read"))

	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{dir}, CRLIssuers: []*x509.Certificate{pki.ca.cert, other.cert}})
	if s := c.Stats(); s.CRLs != 3 {
		t.Fatalf("Stats.CRLs = %d, want 3", s.CRLs)
	}
	wantStatus(t, c.Check(context.Background(), leafA, pki.ca.cert), StatusRevoked, SourceCRL)
	// Same thisUpdate (to the second): the higher CRL number is used.
	wantStatus(t, c.Check(context.Background(), leafB, other.cert), StatusRevoked, SourceCRL)
}

func TestCRLMostRecentWins(t *testing.T) {
	pki := newTestPKI(t)
	leaf := pki.ca.issueLeaf(t, leafOptions{})
	dir := t.TempDir()
	older := pki.ca.makeCRL(t, crlSpec{thisUpdate: time.Now().Add(-2 * time.Hour)})
	newer := pki.ca.makeCRL(t, crlSpec{thisUpdate: time.Now().Add(-time.Hour), number: 2, revoked: []x509.RevocationListEntry{revokedEntry(leaf.SerialNumber, 0)}})
	writeFile(t, dir, "a.crl", newer)
	writeFile(t, dir, "b.crl", older)
	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{dir}, CRLIssuers: []*x509.Certificate{pki.ca.cert}})
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusRevoked, SourceCRL)
}

// TestCRLStartSurvivesBadFiles: a CRL file that cannot be used is refused
// (named, with why, in Stats and through OnCRLError) without failing Start,
// and its CA's cards get no CRL status: refused failing closed, admitted
// flagged failing open. The CRL number cases are RFC 5280 section 5.2.3.
func TestCRLStartSurvivesBadFiles(t *testing.T) {
	pki := newTestPKI(t)
	rawCRL := func(exts ...pkix.Extension) []byte {
		der, err := testpki.RawCRL(pki.ca.cert, pki.ca.key, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), exts)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	number := func(n int64, critical bool) pkix.Extension {
		ext, err := testpki.CRLNumberExtension(n, critical)
		if err != nil {
			t.Fatal(err)
		}
		return ext
	}
	if _, err := parseCRLHeader(rawCRL(number(7, false))); err != nil {
		t.Fatalf("the hand-made CRL with a proper number is refused (so the cases below prove nothing): %v", err)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		// The look-alike CA has the same name, so this is a bad signature,
		// not an unknown issuer.
		{"forged.crl", pki.rogue.makeCRL(t, crlSpec{}), "bad CRL signature"},
		{"garbage.crl", []byte("this is not a CRL"), "malformed CRL"},
		{"truncated.crl", pki.ca.makeCRL(t, crlSpec{})[:100], "malformed CRL"},
		{"empty.pem", []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), "no X509 CRL PEM block"},
		{"delta.crl", pki.ca.makeCRL(t, crlSpec{extensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: []byte{2, 1, 1}}}}), "delta CRLs"},
		{"indirect.crl", pki.ca.makeCRL(t, crlSpec{extensions: []pkix.Extension{issuingDistributionPoint(t, idp{IndirectCRL: true})}}), "indirect CRLs"},
		// CA-only CRLs (ARLs) are accepted for CA certificates only: crl_idp_test.go.
		{"some-reasons.crl", pki.ca.makeCRL(t, crlSpec{extensions: []pkix.Extension{issuingDistributionPoint(t, idp{OnlySomeReasons: asn1.BitString{Bytes: []byte{0x40}, BitLength: 2}})}}), "some revocation reasons"},
		{"critical.crl", pki.ca.makeCRL(t, crlSpec{extensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}}), "unsupported critical CRL extension"},
		{"future.crl", pki.ca.makeCRL(t, crlSpec{thisUpdate: time.Now().Add(time.Hour)}), "not valid yet"},
		{"no-number.crl", rawCRL(), "no CRL number"},
		{"no-extensions-but-others.crl", rawCRL(pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 35}, Value: []byte{0x30, 0}}), "no CRL number"},
		{"critical-number.crl", rawCRL(number(7, true)), "CRL number extension is marked critical"},
		{"negative-number.crl", rawCRL(number(-7, false)), "CRL number negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaf := pki.ca.issueLeaf(t, leafOptions{})
			for _, failOpen := range []bool{false, true} {
				path := writeFile(t, t.TempDir(), tc.name, tc.data)
				var refused atomic.Int32
				c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{path}, CRLIssuers: []*x509.Certificate{pki.ca.cert},
					FailOpen: failOpen, OnCRLError: func(fetched bool) {
						if !fetched {
							refused.Add(1)
						}
					}})
				st := c.Stats()
				if len(st.Sources) != 1 || st.Sources[0].Name != path || !strings.Contains(st.Sources[0].LastError, tc.want) ||
					len(st.Sources[0].CRLs) != 0 || st.FailingSources != 1 || c.FailingCRLSources() != 1 {
					t.Fatalf("stats = %+v, want %s refused saying %q", st, path, tc.want)
				}
				if refused.Load() != 1 {
					t.Errorf("OnCRLError called %d times, want once", refused.Load())
				}
				v := c.Check(context.Background(), leaf, pki.ca.cert)
				if failOpen && (v.Status != StatusGood || !v.FailedOpen) || !failOpen && v.Status != StatusUnavailable {
					t.Errorf("fail open %v: card of the CA whose CRL was refused: %+v", failOpen, v)
				}
			}
		})
	}

	c := mustNew(t, Config{Mode: ModeCRL, CRLFiles: []string{filepath.Join(t.TempDir(), "missing.crl")}})
	if err := c.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "missing.crl") {
		t.Errorf("Start with a missing file: %v", err)
	}
}

// TestCRLRefusedAtStartThenReplaced: a CA whose CRL file was refused at
// start-up has its cards checked against the good CRL that replaces it.
func TestCRLRefusedAtStartThenReplaced(t *testing.T) {
	pki := newTestPKI(t)
	good, revoked := pki.ca.issueLeaf(t, leafOptions{}), pki.ca.issueLeaf(t, leafOptions{})
	noNumber, err := testpki.RawCRL(pki.ca.cert, pki.ca.key, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "ca.crl", noNumber)
	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{dir}, CRLIssuers: []*x509.Certificate{pki.ca.cert}, RefreshInterval: 10 * time.Millisecond})
	if v := c.Check(context.Background(), revoked, pki.ca.cert); v.Status != StatusUnavailable {
		t.Fatalf("before a good CRL: %+v", v)
	}
	writeFile(t, dir, "ca.crl", pki.ca.makeCRL(t, crlSpec{number: 3, revoked: []x509.RevocationListEntry{revokedEntry(revoked.SerialNumber, 1)}}))
	eventually(t, "the good CRL to replace the refused one", func() bool {
		return c.FailingCRLSources() == 0 && c.Stats().CRLs == 1
	})
	wantStatus(t, c.Check(context.Background(), revoked, pki.ca.cert), StatusRevoked, SourceCRL)
	wantStatus(t, c.Check(context.Background(), good, pki.ca.cert), StatusGood, SourceCRL)
}

func TestCRLStale(t *testing.T) {
	pki := newTestPKI(t)
	good, revoked, held := pki.ca.issueLeaf(t, leafOptions{}), pki.ca.issueLeaf(t, leafOptions{}), pki.ca.issueLeaf(t, leafOptions{})
	crl := pki.ca.makeCRL(t, crlSpec{
		thisUpdate: time.Now().Add(-48 * time.Hour),
		nextUpdate: time.Now().Add(-24 * time.Hour),
		revoked:    []x509.RevocationListEntry{revokedEntry(revoked.SerialNumber, 1), revokedEntry(held.SerialNumber, reasonCertificateHold)},
	})
	path := writeFile(t, t.TempDir(), "stale.crl", crl)
	// A stale file is loaded (refusing to start would turn a late CRL into
	// an outage) but cannot clear anyone.
	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{path}, CRLIssuers: []*x509.Certificate{pki.ca.cert}})

	v := c.Check(context.Background(), good, pki.ca.cert)
	wantStatus(t, v, StatusUnavailable, "")
	if v.Err == nil || !strings.Contains(v.Err.Error(), "stale") {
		t.Errorf("Err = %v, want a stale CRL", v.Err)
	}
	// Revocation is permanent: a stale CRL still proves it...
	wantStatus(t, c.Check(context.Background(), revoked, pki.ca.cert), StatusRevoked, SourceCRL)
	// ...but a hold may have been lifted since.
	wantStatus(t, c.Check(context.Background(), held, pki.ca.cert), StatusUnavailable, "")
	if s := c.Stats(); s.StaleCRLs != 1 || !s.Sources[0].CRLs[0].Stale {
		t.Errorf("Stats = %+v, want one stale CRL", s)
	}

	open := newChecker(t, Config{Mode: ModeCRL, FailOpen: true, CRLFiles: []string{path}, CRLIssuers: []*x509.Certificate{pki.ca.cert}})
	v = open.Check(context.Background(), good, pki.ca.cert)
	if v.Status != StatusGood || !v.FailedOpen || v.Err == nil {
		t.Errorf("fail open on a stale CRL: %+v", v)
	}
}

func TestCRLFileRewrittenIsPickedUp(t *testing.T) {
	pki := newTestPKI(t)
	leaf := pki.ca.issueLeaf(t, leafOptions{})
	dir := t.TempDir()
	path := writeFile(t, dir, "ca.crl", pki.ca.makeCRL(t, crlSpec{}))
	c := newChecker(t, Config{
		Mode: ModeCRL, CRLFiles: []string{dir}, CRLIssuers: []*x509.Certificate{pki.ca.cert},
		RefreshInterval: 20 * time.Millisecond,
	})
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusGood, SourceCRL)

	writeFile(t, dir, "ca.crl", pki.ca.makeCRL(t, crlSpec{number: 2, revoked: []x509.RevocationListEntry{revokedEntry(leaf.SerialNumber, 1)}}))
	eventually(t, "the rewritten CRL to be used", func() bool {
		return c.Check(context.Background(), leaf, pki.ca.cert).Status == StatusRevoked
	})

	// A bad rewrite keeps the previous CRL and says why.
	writeFile(t, dir, "ca.crl", []byte("truncated download"))
	eventually(t, "the bad file to be noticed", func() bool { return c.Stats().Sources[0].LastError != "" })
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusRevoked, SourceCRL)
	if s := c.Stats(); s.CRLs != 1 || !strings.Contains(s.Sources[0].LastError, "malformed") {
		t.Errorf("Stats after a bad rewrite: %+v", s)
	}

	// A new file in the directory is found; a deleted one is dropped.
	other := newCA(t, "TEST ID CA-2", pki.root)
	c.issuers.lookup(other.cert)
	writeFile(t, dir, "other.pem", pemCRL(other.makeCRL(t, crlSpec{})))
	eventually(t, "the new file to be loaded", func() bool { return c.Stats().CRLs == 2 })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted file to be dropped", func() bool { return c.Stats().CRLs == 1 })
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusUnavailable, "")
}

func TestCRLFileWaitsForUnknownIssuer(t *testing.T) {
	pki := newTestPKI(t)
	leaf := pki.ca.issueLeaf(t, leafOptions{})
	crl := pki.ca.makeCRL(t, crlSpec{revoked: []x509.RevocationListEntry{revokedEntry(leaf.SerialNumber, 1)}})
	path := writeFile(t, t.TempDir(), "ca.crl", crl)
	// No CRLIssuers: the CRL cannot be verified until a card of its CA is
	// checked, with the verified chain.
	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{path}, RefreshInterval: time.Hour})
	if s := c.Stats(); s.CRLs != 0 || len(s.Sources) != 1 || len(s.Sources[0].Waiting) != 1 || !strings.Contains(s.Sources[0].Waiting[0], "TEST ID CA-1") {
		t.Fatalf("Stats = %+v, want the CRL waiting for its issuer", s)
	}

	v := c.Check(context.Background(), leaf, pki.ca.cert)
	wantStatus(t, v, StatusUnavailable, "")
	eventually(t, "the CRL to be verified against the learned CA", func() bool {
		return c.Check(context.Background(), leaf, pki.ca.cert).Status == StatusRevoked
	})
	if s := c.Stats(); len(s.Sources[0].Waiting) != 0 {
		t.Errorf("still waiting: %+v", s.Sources[0])
	}

	// A look-alike CA learned from a (wrongly) passed chain does not make
	// a forged CRL acceptable, nor the genuine CRL apply to its cards.
	forged := pki.rogue.issueLeaf(t, leafOptions{})
	wantStatus(t, c.Check(context.Background(), forged, pki.rogue.cert), StatusUnavailable, "")
}

// crlServer serves one CRL and counts downloads.
type crlServer struct {
	mu        sync.Mutex
	crl       []byte
	downloads atomic.Int32
	server    *httptest.Server
}

func newCRLServer(t *testing.T, crl []byte) *crlServer {
	s := &crlServer{crl: crl}
	s.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.downloads.Add(1)
		s.mu.Lock()
		crl := s.crl
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(crl)
	}))
	t.Cleanup(s.server.Close)
	return s
}

func (s *crlServer) url() string { return s.server.URL + "/ca.crl" }

func TestCRLFetchedFromDistributionPoint(t *testing.T) {
	pki := newTestPKI(t)
	server := newCRLServer(t, nil)
	cdp := []string{"ldap://dir.example/cn=TEST%20ID%20CA-1?certificateRevocationList", server.url()}
	revoked, good := pki.ca.issueLeaf(t, leafOptions{cdp: cdp}), pki.ca.issueLeaf(t, leafOptions{cdp: cdp})
	server.crl = pki.ca.makeCRL(t, crlSpec{revoked: []x509.RevocationListEntry{revokedEntry(revoked.SerialNumber, 1)}})

	c := newChecker(t, Config{Mode: ModeCRL, FetchCRLs: true})
	// The first check cannot wait for a download: it has no verdict, and
	// queues the fetch.
	v := c.Check(context.Background(), good, pki.ca.cert)
	wantStatus(t, v, StatusUnavailable, "")
	if !errors.Is(v.Err, errNoCRL) {
		t.Errorf("Err = %v, want %v", v.Err, errNoCRL)
	}
	eventually(t, "the CRL to be fetched", func() bool { return c.Stats().CRLs == 1 })
	wantStatus(t, c.Check(context.Background(), good, pki.ca.cert), StatusGood, SourceCRL)
	wantStatus(t, c.Check(context.Background(), revoked, pki.ca.cert), StatusRevoked, SourceCRL)
	if n := server.downloads.Load(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
	src := c.Stats().Sources[0]
	if !src.Fetched || src.Name != server.url() || !src.NextFetch.After(time.Now().Add(15*time.Hour)) {
		t.Errorf("source stats %+v: want the URL, next fetch at 80%% of the 24h window", src)
	}
}

func TestCRLFetchRefreshesAndBacksOff(t *testing.T) {
	pki := newTestPKI(t)
	server := newCRLServer(t, nil)
	leaf := pki.ca.issueLeaf(t, leafOptions{cdp: []string{server.url()}})
	// Past its refresh point: fetched again every republishPollInterval.
	server.crl = pki.ca.makeCRL(t, crlSpec{thisUpdate: time.Now().Add(-23 * time.Hour)})
	clock := newTestClock()
	c := newChecker(t, Config{Mode: ModeCRL, FetchCRLs: true, Now: clock.now})
	c.Check(context.Background(), leaf, pki.ca.cert)
	eventually(t, "the first fetch", func() bool { return c.Stats().CRLs == 1 })

	server.mu.Lock()
	server.crl = pki.ca.makeCRL(t, crlSpec{number: 2, revoked: []x509.RevocationListEntry{revokedEntry(leaf.SerialNumber, 1)}})
	server.mu.Unlock()
	clock.advance(republishPollInterval)
	c.crls.nudge()
	eventually(t, "the refreshed CRL", func() bool {
		return c.Check(context.Background(), leaf, pki.ca.cert).Status == StatusRevoked
	})

	// A failing distribution point keeps the last CRL and backs off.
	server.mu.Lock()
	server.crl = []byte("garbage")
	server.mu.Unlock()
	before := server.downloads.Load()
	clock.advance(24 * time.Hour) // the CRL is now due and stale
	c.crls.nudge()
	eventually(t, "the failed fetch", func() bool { return c.Stats().Sources[0].LastError != "" })
	src := c.Stats().Sources[0]
	if d := src.NextFetch.Sub(clock.now()); d <= 0 || d > retryInterval {
		t.Errorf("after one failure, next fetch in %v, want %v", d, retryInterval)
	}
	c.crls.nudge()
	time.Sleep(50 * time.Millisecond)
	if n := server.downloads.Load() - before; n != 1 {
		t.Errorf("%d downloads while backing off, want 1", n)
	}
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusRevoked, SourceCRL) // stale, but revocation stands
}

func TestCRLFetchedFromWrongCAIsRejected(t *testing.T) {
	pki := newTestPKI(t)
	server := newCRLServer(t, nil)
	leaf := pki.ca.issueLeaf(t, leafOptions{cdp: []string{server.url()}})
	server.crl = pki.rogue.makeCRL(t, crlSpec{})
	c := newChecker(t, Config{Mode: ModeCRL, FetchCRLs: true})
	c.Check(context.Background(), leaf, pki.ca.cert)
	eventually(t, "the fetch to fail", func() bool {
		s := c.Stats()
		return len(s.Sources) == 1 && strings.Contains(s.Sources[0].LastError, "bad CRL signature")
	})
	if s := c.Stats(); s.CRLs != 0 {
		t.Errorf("forged CRL indexed: %+v", s)
	}
}

func TestCRLDistributionPointScope(t *testing.T) {
	pki := newTestPKI(t)
	const partA, partB = "http://crl.example/part-a.crl", "http://crl.example/part-b.crl"
	inA, inB := pki.ca.issueLeaf(t, leafOptions{cdp: []string{partA}}), pki.ca.issueLeaf(t, leafOptions{cdp: []string{partB}})
	crl := pki.ca.makeCRL(t, crlSpec{extensions: []pkix.Extension{issuingDistributionPoint(t, idp{
		DistributionPoint: distributionPointName{FullName: []asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(partA)}}},
	})}})
	path := writeFile(t, t.TempDir(), "part-a.crl", crl)
	c := newChecker(t, Config{Mode: ModeCRL, CRLFiles: []string{path}, CRLIssuers: []*x509.Certificate{pki.ca.cert}})
	wantStatus(t, c.Check(context.Background(), inA, pki.ca.cert), StatusGood, SourceCRL)
	// The partition does not cover B's certificates: no verdict.
	wantStatus(t, c.Check(context.Background(), inB, pki.ca.cert), StatusUnavailable, "")
}

func TestCRLSignatureAlgorithms(t *testing.T) {
	for _, alg := range signatureAlgorithmCases(t) {
		t.Run(alg.name, func(t *testing.T) {
			crl, err := x509.CreateRevocationList(randReader, &x509.RevocationList{
				SignatureAlgorithm: alg.sigAlg,
				Number:             big.NewInt(1),
				ThisUpdate:         time.Now().Add(-time.Hour),
				NextUpdate:         time.Now().Add(time.Hour),
				RevokedCertificateEntries: []x509.RevocationListEntry{
					revokedEntry(big.NewInt(42), 1),
				},
			}, alg.ca.cert, alg.ca.key)
			if err != nil {
				t.Fatal(err)
			}
			c := mustNew(t, Config{CRLIssuers: []*x509.Certificate{alg.ca.cert}})
			index, err := c.indexCRL(crl, "test", nil, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, found := index.find(appendSerial(nil, big.NewInt(42))); !found {
				t.Error("serial 42 not found")
			}
			// Flip a bit of the signed part: the signature must fail.
			tampered := append([]byte(nil), crl...)
			tampered[len(tampered)/3] ^= 1
			if _, err := c.indexCRL(tampered, "test", nil, time.Now()); err == nil {
				t.Error("tampered CRL accepted")
			}
		})
	}
}

// TestCRLFetchedWithoutNumberIsRefused: a downloaded CRL must carry a
// non-critical CRL number too (RFC 5280 section 5.2.3); without one it is
// refused like a failed download (counted through OnCRLError) and the
// card's status stays unknown.
func TestCRLFetchedWithoutNumberIsRefused(t *testing.T) {
	pki := newTestPKI(t)
	noNumber, err := testpki.RawCRL(pki.ca.cert, pki.ca.key, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	server := newCRLServer(t, noNumber)
	leaf := pki.ca.issueLeaf(t, leafOptions{cdp: []string{server.url()}})
	var refused atomic.Int32
	c := newChecker(t, Config{Mode: ModeCRL, FetchCRLs: true, OnCRLError: func(fetched bool) {
		if fetched {
			refused.Add(1)
		}
	}})
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusUnavailable, "")
	eventually(t, "the download to be refused", func() bool { return refused.Load() > 0 })
	st := c.Stats()
	if st.CRLs != 0 || st.FailingSources != 1 || !strings.Contains(st.Sources[0].LastError, "no CRL number") {
		t.Errorf("stats = %+v, want the download refused for its missing CRL number", st)
	}
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusUnavailable, "")
}

package revocation

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"
)

// A distribution point is plain HTTP: whoever is on the path can serve an
// older CRL of the same CA, still within its validity window, to make a
// revocation disappear. The older download must not replace the newer CRL.
func TestCRLFetchRefusesReplayedOlderCRL(t *testing.T) {
	pki := newTestPKI(t)
	server := newCRLServer(t, nil)
	leaf := pki.ca.issueLeaf(t, leafOptions{cdp: []string{server.url()}})
	now := time.Now()
	older := pki.ca.makeCRL(t, crlSpec{number: 1, thisUpdate: now.Add(-48 * time.Hour), nextUpdate: now.Add(7 * 24 * time.Hour)})
	newer := pki.ca.makeCRL(t, crlSpec{number: 2, thisUpdate: now.Add(-time.Hour), nextUpdate: now.Add(7 * 24 * time.Hour),
		revoked: []x509.RevocationListEntry{revokedEntry(leaf.SerialNumber, 1)}})
	server.crl = newer
	clock := newTestClock()
	c := newChecker(t, Config{Mode: ModeCRL, FetchCRLs: true, Now: clock.now})
	c.Check(context.Background(), leaf, pki.ca.cert)
	eventually(t, "the first fetch", func() bool { return c.Stats().CRLs == 1 })
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusRevoked, SourceCRL)

	server.mu.Lock()
	server.crl = older // replayed by a man in the middle
	server.mu.Unlock()
	clock.advance(6 * 24 * time.Hour) // past the refresh point; both CRLs still current
	c.crls.nudge()
	eventually(t, "the replayed CRL to be processed", func() bool {
		s := c.Stats().Sources[0]
		return s.LastError != "" || s.LastSuccess.Equal(clock.now())
	})
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusRevoked, SourceCRL)
	src := c.Stats().Sources[0]
	if src.RefusedOlder != 1 || len(src.CRLs) != 1 || src.CRLs[0].Number != "02" || !strings.Contains(src.LastError, "older than the CRL in use") {
		t.Errorf("source after the replay: %+v", src)
	}

	// The CA's next CRL is taken as usual.
	server.mu.Lock()
	server.crl = pki.ca.makeCRL(t, crlSpec{number: 3, thisUpdate: clock.now().Add(-time.Minute), nextUpdate: clock.now().Add(7 * 24 * time.Hour),
		revoked: []x509.RevocationListEntry{revokedEntry(leaf.SerialNumber, 1)}})
	server.mu.Unlock()
	clock.advance(maxFetchBackoff)
	c.crls.nudge()
	eventually(t, "the newer CRL to be used", func() bool {
		s := c.Stats().Sources[0]
		return len(s.CRLs) == 1 && s.CRLs[0].Number == "03" && s.LastError == ""
	})
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusRevoked, SourceCRL)
}

// A CRL file replaced by an older CRL of the same CA (a sync job fetching
// through the same unauthenticated HTTP, a restored backup) keeps the newer
// CRL in use.
func TestCRLFileReplacedByOlderCRLIsRefused(t *testing.T) {
	pki := newTestPKI(t)
	leaf := pki.ca.issueLeaf(t, leafOptions{})
	now := time.Now()
	dir := t.TempDir()
	writeFile(t, dir, "ca.crl", pki.ca.makeCRL(t, crlSpec{number: 5, thisUpdate: now.Add(-time.Hour),
		revoked: []x509.RevocationListEntry{revokedEntry(leaf.SerialNumber, 1)}}))
	c := newChecker(t, Config{
		Mode: ModeCRL, CRLFiles: []string{dir}, CRLIssuers: []*x509.Certificate{pki.ca.cert},
		RefreshInterval: 20 * time.Millisecond,
	})
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusRevoked, SourceCRL)

	writeFile(t, dir, "ca.crl", pki.ca.makeCRL(t, crlSpec{number: 4, thisUpdate: now.Add(-2 * time.Hour)}))
	eventually(t, "the older file to be read", func() bool {
		s := c.Stats().Sources[0]
		return s.LastError != "" || s.CRLs[0].Number == "04"
	})
	wantStatus(t, c.Check(context.Background(), leaf, pki.ca.cert), StatusRevoked, SourceCRL)
	if s := c.Stats().Sources[0]; s.RefusedOlder != 1 || !strings.Contains(s.LastError, "older than the CRL in use") {
		t.Errorf("source after the older file: %+v", s)
	}
}

func TestCRLRegressionRules(t *testing.T) {
	pki := newTestPKI(t)
	other := newCA(t, "TEST ID CA-2", pki.root)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	const partA = "http://crl.example/part-a.crl"
	index := func(ca *testCA, number int64, thisUpdate time.Time, exts ...pkix.Extension) *crlIndex {
		t.Helper()
		h, err := parseCRLHeader(ca.makeCRL(t, crlSpec{number: number, thisUpdate: thisUpdate, extensions: exts}))
		if err != nil {
			t.Fatal(err)
		}
		x, err := buildIndex(h)
		if err != nil {
			t.Fatal(err)
		}
		x.issuer = newIssuer(ca.cert)
		return x
	}
	current := []*crlIndex{index(pki.ca, 10, base)}
	for _, tc := range []struct {
		name    string
		next    *crlIndex
		refused bool
	}{
		{"same CRL again", index(pki.ca, 10, base), false},
		{"newer", index(pki.ca, 11, base.Add(time.Minute)), false},
		{"earlier thisUpdate", index(pki.ca, 11, base.Add(-time.Minute)), true},
		{"lower number, later thisUpdate", index(pki.ca, 9, base.Add(time.Minute)), true},
		{"another CA's older CRL", index(other, 1, base.Add(-time.Hour)), false},
		{"another partition's older CRL", index(pki.ca, 1, base.Add(-time.Hour), issuingDistributionPoint(t, idp{
			DistributionPoint: distributionPointName{FullName: uriNames(partA)},
		})), false},
		{"a user-certificates-only CRL's older CRL", index(pki.ca, 1, base.Add(-time.Hour), issuingDistributionPoint(t, idp{OnlyContainsUserCerts: true})), false},
	} {
		err := refuseOlder(current, []*crlIndex{tc.next})
		if (err != nil) != tc.refused {
			t.Errorf("%s: refuseOlder = %v, want refused %v", tc.name, err, tc.refused)
		}
	}
}

package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// chainFixture is a card of the test PKI's issuing CA, its verified chain
// (card, CA, root) and a settable clock.
type chainFixture struct {
	pki   *testPKI
	clock *testClock
	leaf  *x509.Certificate
	chain []*x509.Certificate
	dir   string
}

func newChainFixture(t *testing.T) *chainFixture {
	pki := newTestPKI(t)
	f := &chainFixture{pki: pki, clock: newTestClock(), dir: t.TempDir()}
	f.leaf = pki.ca.issueLeaf(t, leafOptions{})
	f.chain = f.chainOf(f.leaf)
	return f
}

func (f *chainFixture) chainOf(leaf *x509.Certificate) []*x509.Certificate {
	return []*x509.Certificate{leaf, f.pki.ca.cert, f.pki.root.cert}
}

// crls describes the CRL files of a chain checker: the issuing CA's and,
// unless noRootCRL, the root's (listing the CA when caRevoked).
type crls struct {
	revoked            []*x509.Certificate // cards on the CA's CRL
	caRevoked          bool
	noRootCRL          bool
	caNext, rootNext   time.Time // nextUpdate; zero means a day ahead
	failOpen, interCAs bool
}

// checker returns a CRL-mode checker on the fixture's clock and a count of
// the checks it reports to OnCheck.
func (f *chainFixture) checker(t *testing.T, c crls) (*Checker, *atomic.Int32) {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, cert := range c.revoked {
		entries = append(entries, revokedEntry(cert.SerialNumber, 1))
	}
	spec := func(next time.Time, revoked []x509.RevocationListEntry) crlSpec {
		s := crlSpec{thisUpdate: f.clock.now().Add(-time.Hour), revoked: revoked}
		if !next.IsZero() {
			s.nextUpdate = next
		}
		return s
	}
	files := []string{writeFile(t, f.dir, "ca.crl", f.pki.ca.makeCRL(t, spec(c.caNext, entries)))}
	if !c.noRootCRL {
		var rootEntries []x509.RevocationListEntry
		if c.caRevoked {
			rootEntries = append(rootEntries, revokedEntry(f.pki.ca.cert.SerialNumber, 1))
		}
		files = append(files, writeFile(t, f.dir, "root.crl", f.pki.root.makeCRL(t, spec(c.rootNext, rootEntries))))
	}
	checks := new(atomic.Int32)
	checker := newChecker(t, Config{
		Mode:          ModeCRL,
		CRLFiles:      files,
		CRLIssuers:    []*x509.Certificate{f.pki.ca.cert, f.pki.root.cert},
		FailOpen:      c.failOpen,
		Intermediates: c.interCAs,
		Now:           f.clock.now,
		OnCheck: func(v Verdict, elapsed time.Duration) {
			if elapsed < 0 {
				t.Errorf("OnCheck: negative duration %v", elapsed)
			}
			checks.Add(1)
		},
	})
	return checker, checks
}

func wantChain(t *testing.T, v ChainVerdict, status Status, source string, ca *x509.Certificate) {
	t.Helper()
	wantStatus(t, v.Verdict, status, source)
	if v.CA != ca {
		t.Fatalf("verdict about CA %v, want %v", caName(v.CA), caName(ca))
	}
}

func caName(c *x509.Certificate) string {
	if c == nil {
		return "none (the card)"
	}
	return c.Subject.CommonName
}

func TestCheckChainCard(t *testing.T) {
	f := newChainFixture(t)
	revoked := f.pki.ca.issueLeaf(t, leafOptions{})
	c, _ := f.checker(t, crls{revoked: []*x509.Certificate{revoked}})
	wantChain(t, c.CheckChain(context.Background(), f.chain), StatusGood, SourceCRL, nil)
	v := c.CheckChain(context.Background(), f.chainOf(revoked))
	wantChain(t, v, StatusRevoked, SourceCRL, nil)
	if v.Reason != 1 || v.RevokedAt.IsZero() {
		t.Errorf("revocation details: reason %d at %v", v.Reason, v.RevokedAt)
	}
}

func TestCheckChainIntermediates(t *testing.T) {
	t.Run("a revoked CA names the CA", func(t *testing.T) {
		f := newChainFixture(t)
		c, _ := f.checker(t, crls{caRevoked: true, interCAs: true})
		v := c.CheckChain(context.Background(), f.chain)
		wantChain(t, v, StatusRevoked, SourceCRL, f.pki.ca.cert)
		if v.RevokedAt.IsZero() {
			t.Error("no revocation time")
		}
	})
	t.Run("a revoked card is the card's verdict", func(t *testing.T) {
		f := newChainFixture(t)
		c, checks := f.checker(t, crls{revoked: []*x509.Certificate{f.leaf}, caRevoked: true, interCAs: true})
		wantChain(t, c.CheckChain(context.Background(), f.chain), StatusRevoked, SourceCRL, nil)
		if n := checks.Load(); n != 1 {
			t.Errorf("%d checks, want 1: the CA is not asked about once the card is revoked", n)
		}
	})
	t.Run("off by default", func(t *testing.T) {
		f := newChainFixture(t)
		c, checks := f.checker(t, crls{caRevoked: true})
		wantChain(t, c.CheckChain(context.Background(), f.chain), StatusGood, SourceCRL, nil)
		if n := checks.Load(); n != 1 {
			t.Errorf("%d checks, want 1 (the card)", n)
		}
	})
	t.Run("the trust anchor is not checked", func(t *testing.T) {
		f := newChainFixture(t)
		// The root, last, is trusted by configuration: only the card and
		// the CA below it are checked.
		c, checks := f.checker(t, crls{interCAs: true})
		wantChain(t, c.CheckChain(context.Background(), f.chain), StatusGood, SourceCRL, nil)
		if n := checks.Load(); n != 2 {
			t.Errorf("%d checks, want 2 (card and CA)", n)
		}
	})
}

func TestCheckChainUnknownIssuer(t *testing.T) {
	f := newChainFixture(t)
	c, checks := f.checker(t, crls{failOpen: true, interCAs: true})
	v := c.CheckChain(context.Background(), f.chain[:1])
	wantChain(t, v, StatusUnavailable, "", nil)
	if v.FailedOpen || v.Err == nil || !strings.Contains(v.Err.Error(), "issuing CA is unknown") {
		t.Errorf("unknown issuer, fail open: %+v, want unavailable (never failed open)", v)
	}
	if want := f.clock.now().Add(retryInterval); !v.ValidUntil.Equal(want) {
		t.Errorf("ValidUntil %v, want %v (the retry interval)", v.ValidUntil, want)
	}
	if n := checks.Load(); n != 0 {
		t.Errorf("OnCheck called %d times for a certificate that could not be checked", n)
	}
	// The verdict is reused for the retry interval, then made anew.
	if again := c.CheckChain(context.Background(), f.chain[:1]); !again.ValidUntil.Equal(v.ValidUntil) {
		t.Errorf("second verdict valid until %v, want the cached %v", again.ValidUntil, v.ValidUntil)
	}
	f.clock.advance(retryInterval)
	if again := c.CheckChain(context.Background(), f.chain[:1]); !again.ValidUntil.After(v.ValidUntil) {
		t.Errorf("after the retry interval: valid until %v, want a new verdict", again.ValidUntil)
	}
}

func TestCheckChainCache(t *testing.T) {
	f := newChainFixture(t)
	next := f.clock.now().Add(10 * time.Minute).Truncate(time.Second)
	c, checks := f.checker(t, crls{interCAs: true, caNext: next, rootNext: next})
	ctx := context.Background()
	wantChain(t, c.CheckChain(ctx, f.chain), StatusGood, SourceCRL, nil)
	if n := checks.Load(); n != 2 {
		t.Fatalf("first chain: %d checks, want 2 (card and CA)", n)
	}
	wantChain(t, c.CheckChain(ctx, f.chain), StatusGood, SourceCRL, nil)
	if n := checks.Load(); n != 2 {
		t.Fatalf("second call: %d checks in all, want 2 (both verdicts cached)", n)
	}
	// Another card of the CA: its own check; the CA's verdict is shared.
	wantChain(t, c.CheckChain(ctx, f.chainOf(f.pki.ca.issueLeaf(t, leafOptions{}))), StatusGood, SourceCRL, nil)
	if n := checks.Load(); n != 3 {
		t.Fatalf("second card: %d checks in all, want 3", n)
	}
	// Concurrent first calls for one card share one check.
	third := f.chainOf(f.pki.ca.issueLeaf(t, leafOptions{}))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { c.CheckChain(ctx, third) })
	}
	wg.Wait()
	if n := checks.Load(); n != 4 {
		t.Fatalf("16 concurrent calls for a new card: %d checks in all, want 4", n)
	}
	// Past ValidUntil (the CRLs' nextUpdate) the verdicts are made anew.
	f.clock.advance(next.Sub(f.clock.now()))
	c.CheckChain(ctx, f.chain)
	if n := checks.Load(); n != 6 {
		t.Fatalf("after ValidUntil: %d checks in all, want 6", n)
	}
}

func TestCheckChainFailOpenCA(t *testing.T) {
	t.Run("fail open", func(t *testing.T) {
		f := newChainFixture(t)
		c, _ := f.checker(t, crls{noRootCRL: true, interCAs: true, failOpen: true})
		v := c.CheckChain(context.Background(), f.chain)
		// The card's own verdict (from the CRL), marked failed open by the CA.
		wantChain(t, v, StatusGood, SourceCRL, f.pki.ca.cert)
		if !v.FailedOpen || !errors.Is(v.Err, errNoCRL) {
			t.Errorf("FailedOpen %v, Err %v: want the CA's failure", v.FailedOpen, v.Err)
		}
		if want := f.clock.now().Add(retryInterval); !v.ValidUntil.Equal(want) {
			t.Errorf("ValidUntil %v, want the CA's retry %v", v.ValidUntil, want)
		}
	})
	t.Run("fail closed", func(t *testing.T) {
		f := newChainFixture(t)
		c, _ := f.checker(t, crls{noRootCRL: true, interCAs: true})
		v := c.CheckChain(context.Background(), f.chain)
		wantChain(t, v, StatusUnavailable, "", f.pki.ca.cert)
		if v.FailedOpen || v.Err == nil {
			t.Errorf("%+v", v)
		}
	})
}

func TestCheckChainEarliestValidUntil(t *testing.T) {
	for _, tc := range []struct {
		name           string
		caIn, rootIn   time.Duration
		interCAs       bool
		wantCardsOwnIn bool
	}{
		{"the CA's verdict expires first", 50 * time.Minute, 10 * time.Minute, true, false},
		{"the card's verdict expires first", 10 * time.Minute, 50 * time.Minute, true, true},
		{"intermediates off: the card's", 50 * time.Minute, 10 * time.Minute, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newChainFixture(t)
			caNext := f.clock.now().Add(tc.caIn).Truncate(time.Second)
			rootNext := f.clock.now().Add(tc.rootIn).Truncate(time.Second)
			c, _ := f.checker(t, crls{caNext: caNext, rootNext: rootNext, interCAs: tc.interCAs})
			v := c.CheckChain(context.Background(), f.chain)
			wantChain(t, v, StatusGood, SourceCRL, nil)
			want := rootNext
			if tc.wantCardsOwnIn {
				want = caNext
			}
			if !v.ValidUntil.Equal(want) {
				t.Errorf("ValidUntil %v, want %v", v.ValidUntil, want)
			}
		})
	}
}

func TestCheckChainOff(t *testing.T) {
	f := newChainFixture(t)
	var checks atomic.Int32
	c := newChecker(t, Config{Mode: ModeOff, Intermediates: true, OnCheck: func(Verdict, time.Duration) { checks.Add(1) }})
	for _, chain := range [][]*x509.Certificate{f.chain, f.chain[:1]} {
		v := c.CheckChain(context.Background(), chain)
		wantChain(t, v, StatusGood, SourceOff, nil)
		if !v.ValidUntil.IsZero() || v.FailedOpen || v.Err != nil {
			t.Errorf("revocation off: %+v, want good with no expiry", v)
		}
	}
	if n := checks.Load(); n != 0 {
		t.Errorf("%d checks with revocation off", n)
	}
}

// TestCheckChainDetachedFromCancellation: a caller that gives up does not
// cancel the check, so its verdict is a real one, cached for the others.
func TestCheckChainDetachedFromCancellation(t *testing.T) {
	pki := newTestPKI(t)
	responder := newTestResponder(t, pki.ca)
	leaf := pki.ca.issueLeaf(t, leafOptions{ocsp: []string{responder.url()}})
	responder.set(leaf.SerialNumber, ocsp.Good)
	c := newChecker(t, Config{Mode: ModeOCSP})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	chain := []*x509.Certificate{leaf, pki.ca.cert, pki.root.cert}
	wantChain(t, c.CheckChain(ctx, chain), StatusGood, SourceOCSP, nil)
	wantChain(t, c.CheckChain(ctx, chain), StatusGood, SourceOCSP, nil)
	if n := responder.requests.Load(); n != 1 {
		t.Errorf("%d OCSP requests, want 1", n)
	}
}

func TestCheckChainWithoutCertificate(t *testing.T) {
	c := newChecker(t, Config{FailOpen: true})
	for _, chain := range [][]*x509.Certificate{nil, {nil}} {
		if v := c.CheckChain(context.Background(), chain); v.Status != StatusUnavailable || v.FailedOpen || v.Err == nil {
			t.Errorf("CheckChain(%v) = %+v, want unavailable", chain, v)
		}
	}
}

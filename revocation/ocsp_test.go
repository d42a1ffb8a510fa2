package revocation

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspFixture is a PKI, a responder for its CA, and a card naming it.
type ocspFixture struct {
	pki       *testPKI
	responder *testResponder
}

func newOCSPFixture(t *testing.T) *ocspFixture {
	pki := newTestPKI(t)
	return &ocspFixture{pki: pki, responder: newTestResponder(t, pki.ca)}
}

func (f *ocspFixture) card(t *testing.T, status int) (leaf, issuer *x509.Certificate) {
	leaf = f.pki.ca.issueLeaf(t, leafOptions{ocsp: []string{f.responder.url()}})
	f.responder.set(leaf.SerialNumber, status)
	return leaf, f.pki.ca.cert
}

func (f *ocspFixture) checker(t *testing.T, cfg Config) *Checker {
	if cfg.Mode == "" {
		cfg.Mode = ModeOCSP
	}
	return newChecker(t, cfg)
}

func TestOCSPGood(t *testing.T) {
	f := newOCSPFixture(t)
	leaf, issuer := f.card(t, ocsp.Good)
	c := f.checker(t, Config{})

	v := c.Check(context.Background(), leaf, issuer)
	wantStatus(t, v, StatusGood, SourceOCSP)
	// The response is valid for 4h; MaxCacheAge (1h) bounds its reuse.
	if d := time.Until(v.ValidUntil); d < 59*time.Minute || d > time.Hour {
		t.Errorf("ValidUntil in %v, want about an hour", d)
	}
	if v.Err != nil || v.FailedOpen {
		t.Errorf("Err = %v, FailedOpen = %v", v.Err, v.FailedOpen)
	}
}

func TestOCSPRevoked(t *testing.T) {
	f := newOCSPFixture(t)
	leaf, issuer := f.card(t, ocsp.Revoked)
	c := f.checker(t, Config{})

	v := c.Check(context.Background(), leaf, issuer)
	wantStatus(t, v, StatusRevoked, SourceOCSP)
	if v.Reason != ocsp.KeyCompromise || time.Since(v.RevokedAt) < 23*time.Hour {
		t.Errorf("Reason = %d, RevokedAt = %v; want key compromise a day ago", v.Reason, v.RevokedAt)
	}
}

func TestOCSPValidUntilBoundedByNextUpdate(t *testing.T) {
	f := newOCSPFixture(t)
	f.responder.configure(func(r *testResponder) { r.nextUpdate = 10 * time.Minute })
	leaf, issuer := f.card(t, ocsp.Good)
	v := f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
	wantStatus(t, v, StatusGood, SourceOCSP)
	if d := time.Until(v.ValidUntil); d > 10*time.Minute || d < 9*time.Minute {
		t.Errorf("ValidUntil in %v, want the response's nextUpdate, 10m", d)
	}

	f.responder.configure(func(r *testResponder) { r.nextUpdate = 0 })
	leaf, issuer = f.card(t, ocsp.Good)
	v = f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
	wantStatus(t, v, StatusGood, SourceOCSP)
	if d := time.Until(v.ValidUntil); d > noNextUpdateCacheAge || d < noNextUpdateCacheAge-time.Minute {
		t.Errorf("without nextUpdate, ValidUntil in %v, want %v", d, noNextUpdateCacheAge)
	}
}

func TestOCSPUnknownIsNoVerdict(t *testing.T) {
	f := newOCSPFixture(t)
	leaf, issuer := f.card(t, ocsp.Unknown)
	v := f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
	wantStatus(t, v, StatusUnavailable, "")
	if !errors.Is(v.Err, errOCSPUnknown) {
		t.Errorf("Err = %v, want %v", v.Err, errOCSPUnknown)
	}
}

func TestOCSPResponderDown(t *testing.T) {
	pki := newTestPKI(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // connection refused from now on
	leaf := pki.ca.issueLeaf(t, leafOptions{ocsp: []string{down.URL}})

	closed := newChecker(t, Config{Mode: ModeOCSP}).Check(context.Background(), leaf, pki.ca.cert)
	wantStatus(t, closed, StatusUnavailable, "")
	if closed.Err == nil || closed.FailedOpen {
		t.Errorf("fail closed: Err = %v, FailedOpen = %v", closed.Err, closed.FailedOpen)
	}
	if d := time.Until(closed.ValidUntil); d > retryInterval {
		t.Errorf("unavailable verdict reusable for %v, want at most %v", d, retryInterval)
	}

	open := newChecker(t, Config{Mode: ModeOCSP, FailOpen: true}).Check(context.Background(), leaf, pki.ca.cert)
	wantStatus(t, open, StatusGood, "")
	if open.Err == nil || !open.FailedOpen {
		t.Errorf("fail open: Err = %v, FailedOpen = %v", open.Err, open.FailedOpen)
	}
}

// deadlineRecorder is a transport that notes, as each request leaves, how
// much time its context still gives it.
type deadlineRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	left []time.Duration
}

func (d *deadlineRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if deadline, ok := req.Context().Deadline(); ok {
		d.mu.Lock()
		d.left = append(d.left, time.Until(deadline))
		d.mu.Unlock()
	}
	return d.next.RoundTrip(req)
}

func (d *deadlineRecorder) lefts() []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.left)
}

// checkReturns runs c.Check(ctx, …) and returns its verdict, failing the
// test if it has not returned after a minute (a check that waits for a
// responder that never answers).
func checkReturns(t *testing.T, c *Checker, ctx context.Context, leaf, issuer *x509.Certificate) Verdict {
	t.Helper()
	done := make(chan Verdict, 1)
	go func() { done <- c.Check(ctx, leaf, issuer) }()
	select {
	case v := <-done:
		return v
	case <-time.After(time.Minute):
		t.Fatal("the check still waits for the responder after a minute")
		return Verdict{}
	}
}

// TestOCSPTimeout: a responder that never answers is given up on at the
// configured timeout. What is asserted does not depend on how busy the
// machine is: the responder only answers when the test ends, so the check
// ending at all is the timeout's doing, and the request carried a deadline
// at most the configured 200ms away (never the 5s default), however long
// it took to leave.
func TestOCSPTimeout(t *testing.T) {
	f := newOCSPFixture(t)
	f.responder.holdAnswers(t)
	leaf, issuer := f.card(t, ocsp.Good)
	rec := &deadlineRecorder{next: newDefaultHTTPClient().Transport}
	c := f.checker(t, Config{OCSPTimeout: 200 * time.Millisecond, HTTPClient: &http.Client{Transport: rec}})

	v := checkReturns(t, c, context.Background(), leaf, issuer)
	wantStatus(t, v, StatusUnavailable, "")
	if !errors.Is(v.Err, context.DeadlineExceeded) {
		t.Errorf("Err = %v, want a deadline error", v.Err)
	}
	left := rec.lefts()
	if len(left) != 1 || left[0] > 200*time.Millisecond {
		t.Errorf("the requests left with %v before their deadline, want one with at most 200ms", left)
	}
}

// TestOCSPCallerContextBoundsTheWait: a caller whose context ends stops
// waiting although the request (detached, bounded by the OCSP timeout, a
// minute here) goes on; the shared request's answer is still used. The
// context is cancelled once the request is at the responder, so the
// order does not depend on timing.
func TestOCSPCallerContextBoundsTheWait(t *testing.T) {
	f := newOCSPFixture(t)
	release := f.responder.holdAnswers(t)
	leaf, issuer := f.card(t, ocsp.Good)
	c := f.checker(t, Config{OCSPTimeout: time.Minute})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan Verdict, 1)
	go func() { done <- c.Check(ctx, leaf, issuer) }()
	eventually(t, "the request to reach the responder", func() bool { return f.responder.requests.Load() == 1 })
	cancel()
	select {
	case v := <-done:
		wantStatus(t, v, StatusUnavailable, "")
		if !errors.Is(v.Err, context.Canceled) {
			t.Errorf("Err = %v, want the caller's cancellation", v.Err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the check still waits for the responder a minute after its caller gave up")
	}
	// The abandoned request still completes, and its answer is cached.
	release()
	eventually(t, "the abandoned request's answer", func() bool { return c.Stats().OCSPCached == 1 })
	wantStatus(t, c.Check(context.Background(), leaf, issuer), StatusGood, SourceOCSP)
	if n := f.responder.requests.Load(); n != 1 {
		t.Errorf("%d OCSP requests, want the abandoned one only", n)
	}
}

func TestOCSPRefusesBadSigners(t *testing.T) {
	pki := newTestPKI(t)
	cases := []struct {
		name   string
		signer *testCA
		want   string
	}{
		// Same name as the CA, different key: what a forger can make.
		{"look-alike CA", pki.rogue, "not issued by the certificate's CA"},
		{"responder certificate signed by the CA, response by another key", pki.ca.issueResponder(t, false).withKey(newKey(t)), "bad signature on embedded certificate"},
		{"responder certificate without the OCSP signing usage", pki.ca.issueResponder(t, true), "lacks the OCSP signing usage"},
		{"responder certificate from the look-alike CA", pki.rogue.issueResponder(t, false), "not signed by the certificate's CA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			responder := newTestResponder(t, pki.ca)
			responder.configure(func(r *testResponder) { r.signer = tc.signer })
			leaf := pki.ca.issueLeaf(t, leafOptions{ocsp: []string{responder.url()}})
			responder.set(leaf.SerialNumber, ocsp.Good)

			v := newChecker(t, Config{Mode: ModeOCSP}).Check(context.Background(), leaf, pki.ca.cert)
			wantStatus(t, v, StatusUnavailable, "")
			if v.Err == nil || !strings.Contains(v.Err.Error(), tc.want) {
				t.Errorf("Err = %v, want it to mention %q", v.Err, tc.want)
			}
		})
	}
}

func TestOCSPDelegatedResponderAccepted(t *testing.T) {
	f := newOCSPFixture(t)
	delegate := f.pki.ca.issueResponder(t, false)
	f.responder.configure(func(r *testResponder) { r.signer = delegate })
	leaf, issuer := f.card(t, ocsp.Revoked)
	v := f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
	wantStatus(t, v, StatusRevoked, SourceOCSP)
}

func TestOCSPRefusesResponseAboutAnotherCA(t *testing.T) {
	f := newOCSPFixture(t)
	// Signed by the genuine CA, but the CertID names the look-alike CA (same
	// name, other key) and the card's serial.
	f.responder.configure(func(r *testResponder) { r.ca = f.pki.rogue })
	leaf, issuer := f.card(t, ocsp.Good)
	f.responder.configure(func(r *testResponder) { r.signer = f.pki.ca })
	v := f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
	wantStatus(t, v, StatusUnavailable, "")
	if v.Err == nil || !strings.Contains(v.Err.Error(), "another CA") {
		t.Errorf("Err = %v, want the CertID mismatch", v.Err)
	}
}

func TestOCSPRefusesResponseAboutAnotherCertificate(t *testing.T) {
	f := newOCSPFixture(t)
	leaf, issuer := f.card(t, ocsp.Good)
	other := f.pki.ca.issueLeaf(t, leafOptions{})
	f.responder.configure(func(r *testResponder) {
		r.mutate = func(_, _ []byte) []byte {
			resp, err := ocsp.CreateResponse(f.pki.ca.cert, f.pki.ca.cert, ocsp.Response{
				SerialNumber: other.SerialNumber, Status: ocsp.Good,
				ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
			}, f.pki.ca.key)
			if err != nil {
				t.Error(err)
			}
			return resp
		}
	})
	v := f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
	wantStatus(t, v, StatusUnavailable, "")
}

func TestOCSPNonce(t *testing.T) {
	cases := []struct {
		mode nonceMode
		want Status
	}{
		{nonceEcho, StatusGood},
		{nonceWrong, StatusUnavailable},
		{nonceIgnore, StatusUnavailable},
	}
	for _, tc := range cases {
		f := newOCSPFixture(t)
		f.responder.configure(func(r *testResponder) { r.nonce = tc.mode })
		leaf, issuer := f.card(t, ocsp.Good)
		v := f.checker(t, Config{OCSPNonce: true}).Check(context.Background(), leaf, issuer)
		if v.Status != tc.want {
			t.Errorf("nonce mode %d: status %v (err %v), want %v", tc.mode, v.Status, v.Err, tc.want)
		}
		if tc.want == StatusUnavailable && (v.Err == nil || !strings.Contains(v.Err.Error(), "nonce")) {
			t.Errorf("nonce mode %d: Err = %v, want a nonce error", tc.mode, v.Err)
		}
	}

	// Without OCSPNonce, a responder that ignores nonces is fine.
	f := newOCSPFixture(t)
	leaf, issuer := f.card(t, ocsp.Good)
	wantStatus(t, f.checker(t, Config{}).Check(context.Background(), leaf, issuer), StatusGood, SourceOCSP)
}

func TestOCSPResponseExtensions(t *testing.T) {
	t.Run("nonce in responseExtensions, as RFC 8954 places it", func(t *testing.T) {
		f := newOCSPFixture(t)
		f.responder.configure(func(r *testResponder) {
			r.mutate = func(resp, nonce []byte) []byte {
				return withResponseExtensions(t, resp, f.pki.ca.key, nonceExtension(nonce))
			}
		})
		leaf, issuer := f.card(t, ocsp.Good)
		wantStatus(t, f.checker(t, Config{OCSPNonce: true}).Check(context.Background(), leaf, issuer), StatusGood, SourceOCSP)
	})
	t.Run("unknown critical response extension", func(t *testing.T) {
		f := newOCSPFixture(t)
		f.responder.configure(func(r *testResponder) {
			r.mutate = func(resp, _ []byte) []byte {
				return withResponseExtensions(t, resp, f.pki.ca.key, pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3}, Critical: true, Value: []byte{5, 0}})
			}
		})
		leaf, issuer := f.card(t, ocsp.Good)
		v := f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
		wantStatus(t, v, StatusUnavailable, "")
		if v.Err == nil || !strings.Contains(v.Err.Error(), "critical extension") {
			t.Errorf("Err = %v", v.Err)
		}
	})
}

func TestOCSPRefusesStaleAndFutureResponses(t *testing.T) {
	cases := []struct {
		name                   string
		thisUpdate, nextUpdate time.Duration
		want                   string
	}{
		{"nextUpdate past beyond skew", -3 * time.Hour, -time.Hour, "stale"},
		{"thisUpdate in the future beyond skew", time.Hour, 2 * time.Hour, "not valid yet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newOCSPFixture(t)
			f.responder.configure(func(r *testResponder) { r.thisUpdate, r.nextUpdate = tc.thisUpdate, tc.nextUpdate })
			leaf, issuer := f.card(t, ocsp.Good)
			v := f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
			wantStatus(t, v, StatusUnavailable, "")
			if v.Err == nil || !strings.Contains(v.Err.Error(), tc.want) {
				t.Errorf("Err = %v, want %q", v.Err, tc.want)
			}
		})
	}

	// Within the skew allowance both are accepted; the stale-ish one only
	// until the allowance runs out.
	f := newOCSPFixture(t)
	f.responder.configure(func(r *testResponder) { r.thisUpdate, r.nextUpdate = -time.Hour, -2*time.Minute })
	leaf, issuer := f.card(t, ocsp.Good)
	v := f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
	wantStatus(t, v, StatusGood, SourceOCSP)
	if d := time.Until(v.ValidUntil); d > retryInterval {
		t.Errorf("response past nextUpdate reusable for %v, want at most %v", d, retryInterval)
	}
}

func TestOCSPRefusesBadHTTP(t *testing.T) {
	cases := []struct {
		name      string
		configure func(r *testResponder)
		want      string
	}{
		{"HTTP 500", func(r *testResponder) { r.httpCode = http.StatusInternalServerError }, "HTTP status 500"},
		{"garbage", func(r *testResponder) { r.mutate = func(_, _ []byte) []byte { return []byte("not DER") } }, "malformed"},
		{"truncated", func(r *testResponder) { r.mutate = func(b, _ []byte) []byte { return b[:len(b)/2] } }, "malformed"},
		{"oversized", func(r *testResponder) {
			r.mutate = func(_, _ []byte) []byte { return bytes.Repeat([]byte{0x30}, maxOCSPResponseBytes+1) }
		}, "larger than"},
		{"OCSP error status", func(r *testResponder) { r.mutate = func(_, _ []byte) []byte { return ocsp.TryLaterErrorResponse } }, "responder answered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newOCSPFixture(t)
			f.responder.configure(tc.configure)
			leaf, issuer := f.card(t, ocsp.Good)
			v := f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
			wantStatus(t, v, StatusUnavailable, "")
			if v.Err == nil || !strings.Contains(v.Err.Error(), tc.want) {
				t.Errorf("Err = %v, want %q", v.Err, tc.want)
			}
		})
	}
}

func TestOCSPConcurrentChecksShareOneRequest(t *testing.T) {
	f := newOCSPFixture(t)
	// The responder holds the request until every checker has started, so
	// all of them arrive while it is in flight however slow the machine.
	release := f.responder.holdAnswers(t)
	leaf, issuer := f.card(t, ocsp.Good)
	c := f.checker(t, Config{OCSPTimeout: time.Minute})

	const checkers = 20
	var wg, started sync.WaitGroup
	verdicts := make([]Verdict, checkers)
	started.Add(checkers)
	for i := range checkers {
		wg.Go(func() {
			started.Done()
			verdicts[i] = c.Check(context.Background(), leaf, issuer)
		})
	}
	started.Wait()
	eventually(t, "the request to reach the responder", func() bool { return f.responder.requests.Load() > 0 })
	release()
	wg.Wait()
	for i, v := range verdicts {
		if v.Status != StatusGood {
			t.Errorf("checker %d: %v (%v)", i, v.Status, v.Err)
		}
	}
	if n := f.responder.requests.Load(); n != 1 {
		t.Errorf("%d concurrent first checks made %d OCSP requests, want 1", checkers, n)
	}

	for range 10 {
		wantStatus(t, c.Check(context.Background(), leaf, issuer), StatusGood, SourceOCSP)
	}
	if n := f.responder.requests.Load(); n != 1 {
		t.Errorf("cached checks made %d more requests, want 0", n-1)
	}
	if s := c.Stats(); s.OCSPCached != 1 {
		t.Errorf("Stats.OCSPCached = %d, want 1", s.OCSPCached)
	}
}

func TestOCSPFailuresAreCachedBriefly(t *testing.T) {
	f := newOCSPFixture(t)
	f.responder.configure(func(r *testResponder) { r.httpCode = http.StatusServiceUnavailable })
	leaf, issuer := f.card(t, ocsp.Good)
	c := f.checker(t, Config{})
	for range 5 {
		wantStatus(t, c.Check(context.Background(), leaf, issuer), StatusUnavailable, "")
	}
	if n := f.responder.requests.Load(); n != 1 {
		t.Errorf("5 checks against a failing responder made %d requests, want 1", n)
	}
	if s := c.Stats(); s.OCSPFailures != 1 || s.OCSPCached != 0 {
		t.Errorf("Stats: %d failures, %d cached; want 1 and 0", s.OCSPFailures, s.OCSPCached)
	}
}

func TestOCSPResponderSelection(t *testing.T) {
	f := newOCSPFixture(t)
	noAIA := f.pki.ca.issueLeaf(t, leafOptions{cdp: []string{"ldap://dir.example/cn=crl"}})
	f.responder.set(noAIA.SerialNumber, ocsp.Revoked)

	v := f.checker(t, Config{}).Check(context.Background(), noAIA, f.pki.ca.cert)
	wantStatus(t, v, StatusUnavailable, "")
	if !errors.Is(v.Err, errNoOCSPResponder) {
		t.Errorf("Err = %v, want %v", v.Err, errNoOCSPResponder)
	}

	// The configured responder replaces the certificate's.
	v = f.checker(t, Config{OCSPResponder: f.responder.url()}).Check(context.Background(), noAIA, f.pki.ca.cert)
	wantStatus(t, v, StatusRevoked, SourceOCSP)

	// A second responder is asked when the first fails.
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	twoAIA := f.pki.ca.issueLeaf(t, leafOptions{ocsp: []string{down.URL, f.responder.url()}})
	f.responder.set(twoAIA.SerialNumber, ocsp.Good)
	v = f.checker(t, Config{}).Check(context.Background(), twoAIA, f.pki.ca.cert)
	wantStatus(t, v, StatusGood, SourceOCSP)
}

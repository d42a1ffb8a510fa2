package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/access"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/trust"
)

// TestAdmitOutcomes walks a request through every outcome Admit can give,
// in the order the checks run.
func TestAdmitOutcomes(t *testing.T) {
	h := newHarness(t, SiteConfig{Contact: "help desk"})
	doe := testCard(t, "doe.john.quincy")
	now := time.Now()

	noCard := httptest.NewRequest("GET", "https://localhost/", nil)
	if d := h.site.Admit(noCard, now); d.Outcome != NoCertificate {
		t.Errorf("no certificate: outcome %d", d.Outcome)
	}
	expired := h.request(t, testCard(t, "expired.edward"), true)
	if d := h.site.Admit(expired, now); d.Outcome != CertificateRefused || d.Rejection == nil {
		t.Errorf("expired card: outcome %d, rejection %v", d.Outcome, d.Rejection)
	}
	noEKU := h.request(t, testCard(t, "noeku.nancy"), true)
	if d := h.site.Admit(noEKU, now); d.Outcome != CertificateRefused {
		t.Errorf("card without clientAuth: outcome %d", d.Outcome)
	}
	if d := h.site.Admit(h.request(t, doe, false), now); d.Outcome != ConsentRequired {
		t.Errorf("no banner accepted: outcome %d", d.Outcome)
	}
	if d := h.site.Admit(h.request(t, doe, true), now); d.Outcome != NotRegistered {
		t.Errorf("no account: outcome %d", d.Outcome)
	}

	acct := h.enrollDoe(t)
	h.core.Invalidate()
	d := h.site.Admit(h.request(t, doe, true), now)
	if d.Outcome != Admitted {
		t.Fatalf("enrolled: outcome %d", d.Outcome)
	}
	if got := d.Entry.Values[FieldUser]; got != "john.q.doe" {
		t.Errorf("user %q", got)
	}
	if got := d.Entry.Values[FieldAuthMethod]; got != AuthCAC {
		t.Errorf("auth method %q", got)
	}
	if d.Entry.Values[FieldCertSHA256] != cacid.Fingerprint(doe.Cert.Raw) {
		t.Error("certificate fingerprint not handed on")
	}
	// link_by_edipi registered the card to the account.
	linked, err := h.db.AccountByFingerprint(context.Background(), cacid.Fingerprint(doe.Cert.Raw))
	if err != nil || linked.ID != acct.ID {
		t.Fatalf("card not linked by its DoD ID: %v %v", linked, err)
	}

	if _, err := h.db.SetStatus(context.Background(), acct.Username, store.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	h.core.Invalidate()
	if d := h.site.Admit(h.request(t, doe, true), now); d.Outcome != AccountInactive {
		t.Errorf("disabled: outcome %d", d.Outcome)
	}
}

// TestAdmitAccessRules: the site's rules refuse an active account they do
// not let in, with the decision saying why.
func TestAdmitAccessRules(t *testing.T) {
	p, err := access.Compile([]access.Rule{{Effect: access.EffectRequire, Kind: access.KindGroup, Values: []string{"ops-admins"}}})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, SiteConfig{Access: p})
	h.enrollDoe(t)
	d := h.site.Admit(h.request(t, testCard(t, "doe.john.quincy"), true), time.Now())
	if d.Outcome != AccessDenied || d.Access == nil || d.Access.Allowed {
		t.Fatalf("outcome %d, access %+v", d.Outcome, d.Access)
	}
	ref := h.site.Refuse(h.request(t, testCard(t, "doe.john.quincy"), true), d)
	if ref.Problem.Status != http.StatusForbidden || ref.Problem.Code != CodeAccessDenied || ref.JSON == nil {
		t.Errorf("refusal %+v", ref)
	}
}

// TestRefuseRedirects: a browser without an accepted banner, or with an
// unregistered card, is sent on; a program gets the problem.
func TestRefuseRedirects(t *testing.T) {
	h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
	doe := testCard(t, "doe.john.quincy")
	r := h.request(t, doe, false)
	ref := h.site.Refuse(r, h.site.Admit(r, time.Now()))
	if !strings.HasPrefix(ref.Location, consent.Path+"?next=") {
		t.Errorf("consent: location %q", ref.Location)
	}
	r = h.request(t, doe, true)
	ref = h.site.Refuse(r, h.site.Admit(r, time.Now()))
	if !strings.HasPrefix(ref.Location, EnrollPath+"?next=") {
		t.Errorf("not registered: location %q", ref.Location)
	}
	r.Header.Set("Accept", "application/json")
	ref = h.site.Refuse(r, h.site.Admit(r, time.Now()))
	if ref.Location != "" || ref.Problem.Code != "not_registered" {
		t.Errorf("API client: %+v", ref)
	}
}

// countingStore counts the core's account database calls.
type countingStore struct {
	Store
	calls atomic.Int32
}

func (s *countingStore) AccountByFingerprint(ctx context.Context, fp string) (*store.Account, error) {
	s.calls.Add(1)
	return s.Store.AccountByFingerprint(ctx, fp)
}

// TestHotPathDoesNoIO: once a card is known, admitting it again reads the
// caches only, and the cached assertion is reused.
func TestHotPathDoesNoIO(t *testing.T) {
	h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
	h.enrollDoe(t)
	counting := &countingStore{Store: h.db}
	h.core.cfg.Store = counting
	doe := testCard(t, "doe.john.quincy")
	r := h.request(t, doe, true)
	now := time.Now()
	d := h.site.Admit(r, now)
	if d.Outcome != Admitted {
		t.Fatalf("outcome %d", d.Outcome)
	}
	first := h.site.Assertion(r, &d, now)
	calls := counting.calls.Load()
	for range 10 {
		d = h.site.Admit(h.request(t, doe, true), now)
		if d.Outcome != Admitted {
			t.Fatalf("outcome %d", d.Outcome)
		}
		if tok := h.site.Assertion(r, &d, now); tok != first {
			t.Fatal("the assertion was signed again")
		}
	}
	if n := counting.calls.Load(); n != calls {
		t.Errorf("%d account look-ups on the hot path", n-calls)
	}
}

// TestAccessDecisionIsCached: a site's access decision is kept in the
// certificate's entry until the card entry changes.
func TestAccessDecisionIsCached(t *testing.T) {
	p, err := access.Compile([]access.Rule{{Effect: access.EffectAllow, Kind: access.KindAffiliation, Values: []string{"USA"}}})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, SiteConfig{Access: p})
	h.enrollDoe(t)
	doe := testCard(t, "doe.john.quincy")
	d := h.site.Admit(h.request(t, doe, true), time.Now())
	if d.Outcome != Admitted {
		t.Fatalf("outcome %d", d.Outcome)
	}
	v := d.Site.access.Load()
	if v == nil || !v.decision.Allowed {
		t.Fatal("no cached admitting decision in the site entry")
	}
	h.site.Admit(h.request(t, doe, true), time.Now())
	if d.Site.access.Load() != v {
		t.Error("the cached decision was rebuilt for an unchanged card entry")
	}
	h.core.Invalidate()
	h.site.Admit(h.request(t, doe, true), time.Now())
	if d.Site.access.Load() == v {
		t.Error("the decision outlived its card entry")
	}
}

// BenchmarkAdmit is the core's share of the hot path: an enrolled card
// with an accepted banner, everything cached.
func BenchmarkAdmit(b *testing.B) {
	h := newHarness(b, SiteConfig{ConsentTTL: time.Hour})
	h.enrollDoe(b)
	r := h.request(b, testCard(b, "doe.john.quincy"), true)
	now := time.Now()
	if d := h.site.Admit(r, now); d.Outcome != Admitted {
		b.Fatal(d.Outcome)
	}
	b.ReportAllocs()
	for b.Loop() {
		if h.site.Admit(r, now).Outcome != Admitted {
			b.Fatal("refused")
		}
	}
}

// TestRefusedChainVerifiedOnce: a site verifying chains itself (trust_pool,
// client_auth mode request) judges a refused chain once; the same chain on
// every later request costs a cache lookup, while the same certificate
// with other CA certificates is judged afresh.
func TestRefusedChainVerifiedOnce(t *testing.T) {
	p, err := sharedPKI()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.Root.Cert)
	pol := trust.Policy{Roots: roots}
	if err := pol.Compile(); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, SiteConfig{Policy: pol})
	leaf, inters, err := p.LookAlikeChain(trust.MaxIntermediates)
	if err != nil {
		t.Fatal(err)
	}
	cs := &tls.ConnectionState{PeerCertificates: append([]*x509.Certificate{leaf}, inters...)}
	now := time.Now()
	first, rej := h.site.Certificate(cs, now)
	if rej == nil || rej.Code != trust.CodeUntrusted {
		t.Fatalf("look-alike chain: %v", rej)
	}
	for range 100 {
		if se, _ := h.site.Certificate(cs, now); se != first {
			t.Fatal("a refused chain was verified again")
		}
	}
	other := &tls.ConnectionState{PeerCertificates: append([]*x509.Certificate{leaf}, inters[1:]...)}
	if se, _ := h.site.Certificate(other, now); se == first {
		t.Error("another chain got the first chain's verdict")
	}
	// A real card is verified by the pool and cached by its certificate.
	doe := testCard(t, "doe.john.quincy")
	real := &tls.ConnectionState{PeerCertificates: doe.Chain}
	se, rej := h.site.Certificate(real, now)
	if rej != nil || se.issuer == nil {
		t.Fatalf("real card: %v", rej)
	}
	if again, _ := h.site.Certificate(real, now); again != se {
		t.Error("a verified card was not cached")
	}
}

// BenchmarkRefusedChain is what a request presenting a refused look-alike
// chain costs a trust_pool site after the first: a digest and a lookup.
func BenchmarkRefusedChain(b *testing.B) {
	p, err := sharedPKI()
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.Root.Cert)
	pol := trust.Policy{Roots: roots}
	if err := pol.Compile(); err != nil {
		b.Fatal(err)
	}
	h := newHarness(b, SiteConfig{Policy: pol})
	leaf, inters, err := p.LookAlikeChain(trust.MaxIntermediates)
	if err != nil {
		b.Fatal(err)
	}
	cs := &tls.ConnectionState{PeerCertificates: append([]*x509.Certificate{leaf}, inters...)}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, rej := h.site.Certificate(cs, now); rej == nil {
			b.Fatal("verified")
		}
	}
}

// TestConsentTTLPerSite: the consent cookie is shared by every site of the
// host; each site holds an acceptance to its own consent_ttl, counted from
// when it was made, whatever lifetime the accepting site gave it.
func TestConsentTTLPerSite(t *testing.T) {
	h := newHarness(t, SiteConfig{ConsentTTL: time.Minute})
	h.enrollDoe(t)
	doe := testCard(t, "doe.john.quincy")
	accepted := time.Now()
	tok, err := h.tokens.Issue(cacid.Fingerprint(doe.Cert.Raw), accepted, 12*time.Hour) // a 12h site's acceptance
	if err != nil {
		t.Fatal(err)
	}
	r := h.request(t, doe, false)
	r.Header.Set("Cookie", consent.CookieName+"="+tok)
	if d := h.site.Admit(r, accepted.Add(30*time.Second)); d.Outcome != Admitted {
		t.Fatalf("within the site's minute: outcome %d", d.Outcome)
	}
	if d := h.site.Admit(r, accepted.Add(2*time.Minute)); d.Outcome != ConsentRequired {
		t.Fatalf("past the site's minute: outcome %d, want ConsentRequired", d.Outcome)
	}
	long, err := h.core.NewSite(SiteConfig{ConsentTTL: 12 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d := long.Admit(r, accepted.Add(2*time.Minute)); d.Outcome != Admitted {
		t.Fatalf("a 12h site: outcome %d", d.Outcome)
	}
}

// TestAutoLinkReachesOtherCards: a second card linked by its DoD ID shows
// at once in the account the first card's cached entry holds (the account
// page lists both cards), not after cache_ttl.
func TestAutoLinkReachesOtherCards(t *testing.T) {
	h := newHarness(t, SiteConfig{})
	h.enrollDoe(t)
	first, second := testCard(t, "doe.john.quincy"), testCard(t, "doe.john.quincy.piv")
	d := h.site.Admit(h.request(t, first, true), time.Now())
	if d.Outcome != Admitted || len(d.Entry.Account.Cards) != 1 {
		t.Fatalf("first card: outcome %d", d.Outcome)
	}
	if d := h.site.Admit(h.request(t, second, true), time.Now()); d.Outcome != Admitted || len(d.Entry.Account.Cards) != 2 {
		t.Fatalf("second card: outcome %d", d.Outcome)
	}
	d = h.site.Admit(h.request(t, first, true), time.Now())
	if d.Outcome != Admitted {
		t.Fatalf("first card again: outcome %d", d.Outcome)
	}
	if n := len(d.Entry.Account.Cards); n != 2 {
		t.Errorf("the first card's account lists %d cards after the second was linked, want 2", n)
	}
}

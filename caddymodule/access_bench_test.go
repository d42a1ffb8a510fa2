package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/cacgate/cacgate/internal/access"
)

// withAccessRules gives the hot-path handler a policy of every cheap kind
// plus an edipi_file, as a site might, and warms the cached decision.
func withAccessRules(tb testing.TB, p *hotPath) {
	tb.Helper()
	banned := filepath.Join(tb.TempDir(), "banned.txt")
	if err := os.WriteFile(banned, []byte("1111111111\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	p.h.Access = []access.Rule{
		{Effect: "require", Kind: "policy", Values: []string{"2.16.840.1.101.2.1.11.42"}},
		{Effect: "allow", Kind: "affiliation", Values: []string{"Army", "Air Force"}},
		{Effect: "allow", Kind: "group", Values: []string{"ops-admins"}},
		{Effect: "deny", Kind: "group", Values: []string{"suspended"}},
		{Effect: "deny", Kind: "edipi_file", Values: []string{banned}},
	}
	if err := p.h.provisionAccess(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.h.Cleanup() })
	w := httptest.NewRecorder()
	if err := p.h.ServeHTTP(w, p.replay.next(), p.next); err != nil || w.Code != http.StatusOK {
		tb.Fatalf("warm-up request with access rules: %v, HTTP %d %s", err, w.Code, w.Body)
	}
}

// BenchmarkHotPathAccessRules is BenchmarkHotPath (revocation=crl) with
// access rules: an admitted request must pay only the cached decision.
func BenchmarkHotPathAccessRules(b *testing.B) {
	p := newHotPath(b, "crl")
	withAccessRules(b, p)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.h.ServeHTTP(w, p.replay.next(), p.next); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAccessDecisionIsCached: with rules, an admitted request allocates no
// more than one without, and a cached decision survives until the card
// entry changes.
func TestAccessDecisionIsCached(t *testing.T) {
	p := newHotPath(t, "crl")
	w := &discardWriter{h: http.Header{}}
	serve := func() {
		if err := p.h.ServeHTTP(w, p.replay.next(), p.next); err != nil {
			t.Fatal(err)
		}
	}
	without := testing.AllocsPerRun(200, serve)
	withAccessRules(t, p)
	with := testing.AllocsPerRun(200, serve)
	if with > without {
		t.Errorf("admitted request: %v allocations with access rules, %v without", with, without)
	}
	se, ok := p.h.sites.Get(derKey(p.req.TLS.PeerCertificates[0].Raw))
	if !ok || se.access.Load() == nil || !se.access.Load().decision.Allowed {
		t.Fatal("no cached admitting decision in the site entry")
	}
	v := se.access.Load()
	serve()
	if se.access.Load() != v {
		t.Error("the cached decision was rebuilt for an unchanged card entry")
	}
}

// BenchmarkCheckAccessCached is the access check alone on the hot path: a
// cached admitting decision (the whole cost rules add to a request).
func BenchmarkCheckAccessCached(b *testing.B) {
	p := newHotPath(b, "off")
	withAccessRules(b, p)
	se, _ := p.h.sites.Get(derKey(p.req.TLS.PeerCertificates[0].Raw))
	card := se.card.Load()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		if done, _ := p.h.checkAccess(w, p.req, se, card); done {
			b.Fatal("refused")
		}
	}
}

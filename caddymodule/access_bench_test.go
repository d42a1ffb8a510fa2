package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

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
	// Provisioned again, as a config with these rules would be.
	if err := p.h.provision(p.ctx, p.h.app); err != nil {
		tb.Fatal(err)
	}
	p.h.logger = zap.NewNop()
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

// TestAccessRulesCostNoAllocation: with rules, an admitted request
// allocates no more than one without (the decision is cached; see the
// gateway package's tests).
func TestAccessRulesCostNoAllocation(t *testing.T) {
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
}

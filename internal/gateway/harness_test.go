package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cacgate/cacgate/assertion"
	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/metrics"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
	"github.com/cacgate/cacgate/revocation"
)

// The core is tested without Caddy: a temporary SQLite store, the test
// PKI's cards presented as a verified TLS state, revocation off (its own
// package tests the checks), and real consent tokens and signing keys.

var sharedPKI = sync.OnceValues(func() (*testpki.PKI, error) { return testpki.Generate(testpki.Options{}) })

func testCard(t testing.TB, name string) *testpki.Card {
	t.Helper()
	p, err := sharedPKI()
	if err != nil {
		t.Fatal(err)
	}
	c := p.Card(name)
	if c == nil {
		t.Fatalf("test PKI has no card %q", name)
	}
	return c
}

// verifiedState is the connection state after a handshake that verified
// the card (client_auth mode verify_if_given).
func verifiedState(t testing.TB, c *testpki.Card) *tls.ConnectionState {
	p, _ := sharedPKI()
	return &tls.ConnectionState{
		HandshakeComplete: true,
		Version:           tls.VersionTLS13,
		PeerCertificates:  c.Chain,
		VerifiedChains:    [][]*x509.Certificate{append(append([]*x509.Certificate{}, c.Chain...), p.Root.Cert)},
	}
}

type harness struct {
	core   *Core
	site   *Site
	db     *store.SQLStore
	tokens *consent.Tokens
}

func newHarness(t testing.TB, cfg SiteConfig) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, nil)
}

// newHarnessWith is newHarness with edit applied to the core's config
// (and the site's) before they are made, its store already open: for a
// harness around another store or another audit log.
func newHarnessWith(t testing.TB, cfg SiteConfig, edit func(*Config, *SiteConfig)) *harness {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	checker, err := revocation.New(revocation.Config{Mode: revocation.ModeOff})
	if err != nil {
		t.Fatal(err)
	}
	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := assertion.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := consent.NewTokens([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	coreCfg := Config{
		Store: db, Revocation: checker, Signer: signer,
		Consents: consent.NewCache(tokens, 100, 10*time.Minute),
		Audit:    audit.Nop(), Metrics: metrics.New(prometheus.NewRegistry()),
		CacheSize: 100, CacheTTL: time.Hour, AssertionTTL: 5 * time.Minute, LinkByEDIPI: true,
	}
	if cfg.ConsentTTL == 0 {
		cfg.ConsentTTL = time.Hour
	}
	if edit != nil {
		edit(&coreCfg, &cfg)
	}
	core, err := New(coreCfg)
	if err != nil {
		t.Fatal(err)
	}
	site, err := core.NewSite(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{core: core, site: site, db: db, tokens: tokens}
}

// enrollDoe registers John Q. Doe's account with his card's DoD ID (the
// card itself links by link_by_edipi on first use).
func (h *harness) enrollDoe(t testing.TB) *store.Account {
	t.Helper()
	acct := &store.Account{Username: "john.q.doe", EDIPI: "1234567890", GivenName: "John", FamilyName: "Doe",
		Email: "john.q.doe@mail.mil", Affiliation: "USA", Status: store.StatusActive}
	if err := h.db.CreateAccount(context.Background(), acct); err != nil {
		t.Fatal(err)
	}
	return acct
}

// request is a page load with the card, carrying an accepted banner when
// consented.
func (h *harness) request(t testing.TB, c *testpki.Card, consented bool) *http.Request {
	t.Helper()
	r := httptest.NewRequest("GET", "https://localhost/app/page", nil)
	r.Header.Set("Accept", "text/html")
	r.TLS = verifiedState(t, c)
	if consented {
		// Accepted a minute ago: a test's now, taken before this request
		// was made, must not fall before the token's issue time (whole
		// seconds), which the check refuses.
		tok, err := h.tokens.Issue(cacid.Fingerprint(c.Cert.Raw), time.Now().Add(-time.Minute), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Cookie", consent.CookieName+"="+tok)
	}
	return r
}

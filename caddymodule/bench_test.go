package caddymodule

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
)

// hotPath is a handler wired to a real app (SQLite store in a temp dir) and
// a request for an enrolled card with a valid consent cookie.
type hotPath struct {
	ctx  caddy.Context
	h    *Handler
	req  *http.Request
	next caddyhttp.Handler
	ocsp *ocspResponder // nil unless revocation is checked by OCSP
	// replay puts req's Cookie header back before each use.
	replay *replay
}

// replay makes a request reusable across iterations as if the browser sent
// it anew: the handler may rewrite the Cookie header for the backend (it
// takes a password session out), so each use puts the header back as sent,
// without allocating (one slice, rewritten in place).
type replay struct {
	r      *http.Request
	cookie string
	vals   []string
}

func newReplay(r *http.Request) *replay {
	return &replay{r: r, cookie: r.Header.Get("Cookie"), vals: make([]string, 1)}
}

// next returns the request, its Cookie header as the browser sent it and
// no variable left from the previous use.
func (rp *replay) next() *http.Request {
	rp.vals = rp.vals[:1]
	rp.vals[0] = rp.cookie
	rp.r.Header["Cookie"] = rp.vals
	if vars, ok := rp.r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any); ok {
		delete(vars, sentCookiesVar)
	}
	return rp.r
}

// revocationSetup configures the app's revocation checking for a hot-path
// benchmark: "off", "crl" (the test CA's CRL file) or "ocsp" (a real local
// responder).
func revocationSetup(tb testing.TB, mode string) (*RevocationConfig, *ocspResponder) {
	tb.Helper()
	p := testPKI(tb)
	dir := tb.TempDir()
	crl, issuers := filepath.Join(dir, "ca.crl"), filepath.Join(dir, "intermediate.pem")
	if err := os.WriteFile(crl, p.CRL, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(issuers, p.Intermediate.CertPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	switch mode {
	case "off":
		return &RevocationConfig{Mode: "off"}, nil
	case "crl":
		return &RevocationConfig{Mode: "crl", CRLFiles: []string{crl}, CRLIssuers: []string{issuers}}, nil
	case "ocsp":
		o := startOCSPResponder(tb, p.Intermediate)
		return &RevocationConfig{Mode: "ocsp", OCSPResponder: o.url}, o
	}
	tb.Fatalf("unknown revocation mode %q", mode)
	return nil, nil
}

// newHotPath builds the hot path; configure, if given, adjusts the app's
// options before it is provisioned (cache_size, for one).
func newHotPath(tb testing.TB, revocationMode string, configure ...func(*App)) *hotPath {
	tb.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	rc, responder := revocationSetup(tb, revocationMode)
	app := &App{
		StoreRaw:   json.RawMessage(`{"backend":"sqlite","path":` + jsonString(filepath.Join(tb.TempDir(), "bench.db")) + `}`),
		Revocation: rc,
	}
	for _, f := range configure {
		f(app)
	}
	if err := app.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { app.Cleanup() })
	h := &Handler{Exempt: []string{"/healthz"}}
	if err := h.provision(ctx, app); err != nil {
		tb.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		tb.Fatal(err)
	}
	// Caddy logs at INFO by default; the bare context's logger is at DEBUG
	// and would make the benchmark measure log output.
	h.logger = zap.NewNop()
	app.logger = zap.NewNop()
	app.audit = audit.New(zap.NewNop(), "")

	doe := card(tb, "doe.john.quincy")
	acct := &store.Account{Username: "john.q.doe", EDIPI: "1234567890", GivenName: "John", FamilyName: "Doe", Email: "john.q.doe@mail.mil", Affiliation: "USA", Status: store.StatusActive}
	if err := app.store.CreateAccount(context.Background(), acct); err != nil {
		tb.Fatal(err)
	}
	token, err := app.tokens.Issue(fingerprint(doe), time.Now(), time.Hour)
	if err != nil {
		tb.Fatal(err)
	}

	req := httptest.NewRequest("GET", "https://localhost/app/page?id=42", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	req.Header.Set("Accept-Language", "en-US,en;q=0.9")
	req.Header.Set("Cookie", "theme=dark; "+consent.CookieName+"="+token+"; other=1")
	req.TLS = verifiedState(doe, testPKI(tb))
	// What Caddy's server puts in every request context.
	// (The test replacer captures the request it is given, so it is made
	// after the other values are in place.)
	rctx := context.WithValue(req.Context(), caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields))
	rctx = context.WithValue(rctx, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "127.0.0.1"})
	req = req.WithContext(rctx)
	req = req.WithContext(context.WithValue(rctx, caddy.ReplacerCtxKey, caddyhttp.NewTestReplacer(req)))

	p := &hotPath{ctx: ctx, h: h, req: req, ocsp: responder, next: caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }), replay: newReplay(req)}
	// The first request fills the caches (database lookup, assertion).
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, p.replay.next(), p.next); err != nil || w.Code != http.StatusOK {
		tb.Fatalf("warm-up request: %v, HTTP %d %s", err, w.Code, w.Body)
	}
	if got := req.Header.Get("X-Remote-User"); got != "john.q.doe" {
		tb.Fatalf("warm-up request: X-Remote-User %q", got)
	}
	return p
}

// verifiedState is the connection state after a handshake that verified
// the card (client_auth mode verify_if_given).
func verifiedState(c *testpki.Card, p *testpki.PKI) *tls.ConnectionState {
	return &tls.ConnectionState{
		HandshakeComplete: true,
		Version:           tls.VersionTLS13,
		PeerCertificates:  c.Chain,
		VerifiedChains:    [][]*x509.Certificate{append(append([]*x509.Certificate{}, c.Chain...), p.Root.Cert)},
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// discardWriter is a ResponseWriter that costs nothing, so the benchmark
// measures the handler and not a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkHotPath is what an enrolled card with a valid consent cookie
// pays per request in the handler: certificate checks from cache, consent
// cookie from cache, account from cache, header stripping and injection,
// cached assertion, placeholders. Target: < 5 µs and < 30 allocs.
//
// The sub-benchmarks differ only in revocation checking: with a cached
// verdict, checking revocation must cost nothing on the hot path.
func BenchmarkHotPath(b *testing.B) {
	for _, mode := range []string{"off", "crl", "ocsp"} {
		b.Run("revocation="+mode, func(b *testing.B) {
			p := newHotPath(b, mode)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				if err := p.h.ServeHTTP(w, p.replay.next(), p.next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHotPathParallel is the same under concurrency (lock contention
// in the caches shows up here).
func BenchmarkHotPathParallel(b *testing.B) {
	p := newHotPath(b, "crl")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		// Each goroutine is its own connection: its own request variables.
		ctx := context.WithValue(p.req.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "127.0.0.1"})
		rp := newReplay(p.req.Clone(ctx))
		rp.cookie = p.replay.cookie
		for pb.Next() {
			if err := p.h.ServeHTTP(w, rp.next(), p.next); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestHotPathDoesNoIO checks, for every revocation mode, that a cached
// request touches neither the database nor the OCSP responder: with the
// store closed it is still admitted, and the responder sees no request.
func TestHotPathDoesNoIO(t *testing.T) {
	for _, mode := range []string{"off", "crl", "ocsp"} {
		t.Run("revocation="+mode, func(t *testing.T) {
			p := newHotPath(t, mode)
			if err := p.h.app.store.Close(); err != nil {
				t.Fatal(err)
			}
			var ocspBefore int64
			if p.ocsp != nil {
				ocspBefore = p.ocsp.requests.Load()
			}
			for i := 0; i < 3; i++ {
				w := httptest.NewRecorder()
				if err := p.h.ServeHTTP(w, p.replay.next(), p.next); err != nil || w.Code != http.StatusOK {
					t.Fatalf("cached request %d with the database closed: %v, HTTP %d", i, err, w.Code)
				}
			}
			if p.req.Header.Get("X-Remote-User") == "" {
				t.Fatal("no identity on the cached path")
			}
			if p.ocsp != nil {
				if n := p.ocsp.requests.Load() - ocspBefore; n != 0 {
					t.Errorf("cached requests made %d OCSP requests", n)
				}
			}
		})
	}
}

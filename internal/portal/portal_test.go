package portal

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/store"
)

// The router: which pages need which admission, and the pages besides
// self-service, with the Visitor the gateway would hand over.

// fakeGateway records what the portal asked of the gateway.
type fakeGateway struct{ unavailable []error }

func (g *fakeGateway) Unavailable(w http.ResponseWriter, r *http.Request, err error) error {
	g.unavailable = append(g.unavailable, err)
	w.WriteHeader(http.StatusServiceUnavailable)
	return nil
}

type portalFixture struct {
	p        *Portal
	tokens   *consent.Tokens
	sessions *session.Manager
	logs     *observer.ObservedLogs
	gw       *fakeGateway
	card     *cacid.Identity
}

func newPortal(t *testing.T, pages *Pages, passwordLogin bool) *portalFixture {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	tokens, err := consent.NewTokens(key)
	if err != nil {
		t.Fatal(err)
	}
	stokens, err := session.NewTokens(key)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	core, logs := observer.New(zap.InfoLevel)
	f := &portalFixture{tokens: tokens, sessions: session.NewManager(stokens, db, 10, time.Minute, nil), logs: logs, gw: &fakeGateway{},
		card: &cacid.Identity{EDIPI: "1234567890", FingerprintHex: strings.Repeat("ab", 32), Subject: "CN=DOE.JOHN.1234567890"}}
	f.p, err = New(Config{Gateway: f.gw, Pages: pages, Consent: tokens, Banner: consent.DefaultBanner(), ConsentTTL: time.Hour,
		PasswordLogin: passwordLogin, Sessions: f.sessions, SessionTTL: time.Hour, Contact: "Service desk",
		Audit: audit.New(zap.New(core), "node-a"), JWKS: func() []byte { return []byte(`{"keys":[]}`) }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *portalFixture) serve(t *testing.T, r *http.Request, v Visitor) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	if err := f.p.ServeHTTP(w, WithVisitor(r, v)); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestAdmissionPerPage(t *testing.T) {
	f := newPortal(t, nil, false)
	for _, c := range []struct {
		method, path string
		want         Level
	}{
		{"GET", PathJWKS, Public},
		{"GET", PathAssets + "style.css", Public},
		{"GET", PathLogin, Public},
		{"POST", PathLogin, Public},
		{"GET", "/.cacgate/nothing", Public},
		{"GET", PathLogout, Optional},
		{"POST", PathLogout, Optional},
		{"GET", consent.Path, Identified},
		{"POST", consent.Path, Identified},
		{"PUT", consent.Path, Public}, // refused as a method, before any card check
		{"GET", PathEnroll, Consented},
		{"POST", PathNew, Consented},
		{"DELETE", PathNew, Public},
		{"GET", PathAccount, Registered},
		{"POST", PathAccountPassword, Registered},
		{"PATCH", PathAccount, Public},
	} {
		if got := f.p.Admission(httptest.NewRequest(c.method, c.path, nil)); got != c.want {
			t.Errorf("%s %s: level %d, want %d", c.method, c.path, got, c.want)
		}
	}
}

func TestPublicPages(t *testing.T) {
	f := newPortal(t, nil, false)
	w := f.serve(t, httptest.NewRequest("GET", PathJWKS, nil), Visitor{})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/jwk-set+json" || w.Body.String() != `{"keys":[]}` {
		t.Errorf("JWKS: %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	if w = f.serve(t, httptest.NewRequest("GET", PathAssets+"style.css", nil), Visitor{}); w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d", w.Code)
	}
	if w = f.serve(t, httptest.NewRequest("GET", PathAssets+"../ui.go", nil), Visitor{}); w.Code != http.StatusNotFound {
		t.Errorf("asset outside the directory: %d", w.Code)
	}
	if w = f.serve(t, httptest.NewRequest("PUT", PathNew, nil), Visitor{}); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT on an enrollment page: %d", w.Code)
	}
	if w = f.serve(t, httptest.NewRequest("GET", "/.cacgate/nothing", nil), Visitor{}); w.Code != http.StatusNotFound {
		t.Errorf("unknown page: %d", w.Code)
	}
	// Password sign-in is off here.
	if w = f.serve(t, httptest.NewRequest("GET", PathLogin, nil), Visitor{}); w.Code != http.StatusNotFound {
		t.Errorf("sign-in page where it is off: %d", w.Code)
	}
}

// TestConsentAcceptance: a forged acceptance is refused and audited; a
// real one sets the consent cookie for the card and goes on, safely.
func TestConsentAcceptance(t *testing.T) {
	f := newPortal(t, nil, false)
	v := Visitor{Card: f.card, Holder: "John Doe"}
	w := f.serve(t, httptest.NewRequest("GET", consent.Path+"?next=/app", nil), v)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "John Doe") {
		t.Fatalf("banner: %d", w.Code)
	}
	post := func(csrf, next string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", consent.Path, strings.NewReader(url.Values{"csrf": {csrf}, "next": {next}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return f.serve(t, r, v)
	}
	if w = post("forged", "/app"); w.Code != http.StatusForbidden {
		t.Fatalf("forged acceptance: %d", w.Code)
	}
	if e := f.logs.FilterField(zap.String("reason", "csrf")).All(); len(e) != 1 || e[0].ContextMap()["edipi"] != "1234567890" {
		t.Fatalf("audit: %+v", e)
	}
	w = post(f.tokens.CSRF(f.card.FingerprintHex, time.Now()), "//evil.example")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("acceptance: %d to %q", w.Code, w.Header().Get("Location"))
	}
	if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != consent.CookieName {
		t.Fatalf("cookies %v", c)
	} else if claims, err := f.tokens.Verify(c[0].Value, time.Now()); err != nil || claims.Fingerprint != f.card.FingerprintHex {
		t.Fatalf("consent token: %+v %v", claims, err)
	}
}

// TestSignOutEndsPasswordSession: signing out ends the session on every
// node (the store records it) and clears both cookies; a forged
// sign-out is refused.
func TestSignOutEndsPasswordSession(t *testing.T) {
	f := newPortal(t, nil, true)
	now := time.Now()
	s, token, _, err := f.sessions.Start(context.Background(), "john.doe", now, time.Hour, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	v := Visitor{Session: &s}
	if w := f.serve(t, httptest.NewRequest("GET", PathLogout, nil), v); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "username and password") {
		t.Fatalf("sign-out page: %d", w.Code)
	}
	forged := httptest.NewRequest("POST", PathLogout, nil)
	forged.Header.Set("Sec-Fetch-Site", "cross-site")
	if w := f.serve(t, forged, v); w.Code != http.StatusForbidden {
		t.Fatalf("cross-site sign-out: %d", w.Code)
	}
	w := f.serve(t, httptest.NewRequest("POST", PathLogout, nil), v)
	if w.Code != http.StatusSeeOther || len(w.Result().Cookies()) != 2 {
		t.Fatalf("sign-out: %d, cookies %v", w.Code, w.Result().Cookies())
	}
	if _, ok, _ := f.sessions.Session(context.Background(), token, now); ok {
		t.Error("the session outlived its sign-out")
	}
	if e := f.logs.FilterMessage("signout.password").All(); len(e) != 1 || e[0].ContextMap()["session_ended_in_store"] != true {
		t.Fatalf("audit: %+v", f.logs.All())
	}
	// Signed out: the page offers signing in again.
	r := httptest.NewRequest("GET", PathLogout, nil)
	r.Header.Set("Accept", "text/html")
	if w = f.serve(t, r, Visitor{}); !strings.Contains(w.Body.String(), "Sign in again") {
		t.Error("no sign-in link after signing out")
	}
}

// TestEnrollWithoutSelfService: where the site offers no self-enrollment,
// an unregistered card is told whom to contact, and a registered one goes
// on where it was going.
func TestEnrollWithoutSelfService(t *testing.T) {
	f := newPortal(t, nil, false)
	r := httptest.NewRequest("GET", PathEnroll, nil)
	r.Header.Set("Accept", "text/html")
	w := f.serve(t, r, Visitor{Card: f.card, Holder: "John Doe", ByEDIPI: &store.Account{}})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "1234567890") || !strings.Contains(w.Body.String(), "Service desk") {
		t.Fatalf("not registered: %d\n%s", w.Code, w.Body)
	}
	w = f.serve(t, httptest.NewRequest("GET", PathEnroll+"?next=/app/x", nil), Visitor{Card: f.card, Account: &store.Account{Username: "john.doe"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/app/x" {
		t.Fatalf("registered: %d to %q", w.Code, w.Header().Get("Location"))
	}
	if w = f.serve(t, httptest.NewRequest("GET", PathAccount, nil), Visitor{Card: f.card, Account: &store.Account{}}); w.Code != http.StatusNotFound {
		t.Fatalf("account page without self-service: %d", w.Code)
	}
}

package portal

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/storefault"
)

// Every form that reaches the account database, when the database cannot
// serve it: 503 with Retry-After, the form sent shown again with what was
// typed (never a password, answer or identity fact) to send once the
// database is back, nothing half-written, and the refusal audited as the
// step's event with its cause, under one repeatable series per card.

// faultHarness is a store harness whose flow works on a store that fails
// on demand, recording the series keys of the repeatable audit entries.
type faultHarness struct {
	*storeHarness
	fault *storefault.Store
	mu    sync.Mutex
	keys  []string // AuditRepeatable's keys, in order
}

func newFaultHarness(t *testing.T) *faultHarness {
	t.Helper()
	sh := newStoreHarness(t, selfservice.Config{})
	h := &faultHarness{storeHarness: sh, fault: storefault.New(sh.db)}
	sh.deps.Accounts, sh.deps.Throttle, sh.deps.States = h.fault, h.fault, h.fault
	audit := sh.deps.Audit
	sh.deps.AuditRepeatable = func(ctx context.Context, key, event, outcome string, fields map[string]string) {
		h.mu.Lock()
		h.keys = append(h.keys, key)
		h.mu.Unlock()
		audit(ctx, event, outcome, fields)
	}
	sh.rebuild()
	return h
}

// wantFormAgain checks the answer to a form the database could not serve:
// 503, Retry-After, the form (its action) again saying what was not done,
// with contains, and nothing of the database's own error.
func wantFormAgain(t *testing.T, w *httptest.ResponseRecorder, action, nothing string, contains ...string) {
	t.Helper()
	wantStatus(t, w, http.StatusServiceUnavailable, append([]string{`action="` + action + `"`, nothing,
		"account database is not available", "send this form again"}, contains...)...)
	if got := w.Header().Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After %q", got)
	}
	for _, internal := range []string{"SQLITE", "disk is full", "database or disk", "readonly", "store:"} {
		if strings.Contains(w.Body.String(), internal) {
			t.Errorf("page shows %q", internal)
		}
	}
}

// wantAudited checks that event was audited as unavailable with reason
// and cause, and returns the entry.
func (h *faultHarness) wantAudited(t *testing.T, event, reason, cause string) *auditRecord {
	t.Helper()
	a := h.audited(event, "unavailable")
	if a == nil || a.Fields["reason"] != reason || a.Fields["cause"] != cause {
		t.Fatalf("not audited as %s unavailable (%s, %s): %+v", event, reason, cause, h.audits)
	}
	return a
}

// addressCount is the attempts counted for the harness's client address
// (none given: the pages count under "invalid").
func (h *faultHarness) addressCount(t *testing.T) int {
	t.Helper()
	n, _, err := h.db.Attempts(context.Background(), "ip:invalid", h.now, selfservice.AddressWindow)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUnavailableIdentity(t *testing.T) {
	h := newFaultHarness(t)
	h.fault.Fail(storefault.DiskFull(t), "AccountByFingerprint")
	form := identityForm()
	form.Set("idtype", "fin")
	w := h.post(PathNew, form)
	wantFormAgain(t, w, PathNew, "No account was created.", `value="fin" checked`)
	if h.roster.verifies != 0 {
		t.Error("roster asked")
	}
	h.wantAudited(t, "enroll.identity", selfservice.StoreUnavailableReason, store.CauseDiskFull)
	// The attempt could not be checked: it does not count against the
	// address.
	if n := h.addressCount(t); n != 0 {
		t.Errorf("address count %d", n)
	}
	h.fault.Heal()
	wantStatus(t, h.post(PathNew, identityForm()), http.StatusOK, "1 of 2")
}

// TestUnavailableAddressCount: the gap. The per-address count
// cannot be written: the identity step answers 503 and is audited as
// enroll.identity (reason throttle_unavailable), as the README promises.
func TestUnavailableAddressCount(t *testing.T) {
	h := newFaultHarness(t)
	h.fault.Fail(storefault.DiskFull(t), "TakeAttempt")
	wantFormAgain(t, h.post(PathNew, identityForm()), PathNew, "No account was created.")
	a := h.wantAudited(t, "enroll.identity", selfservice.ThrottleUnavailableReason, store.CauseDiskFull)
	if a.Fields["card"] != h.card.FingerprintHex || a.Fields["edipi"] != h.card.EDIPI {
		t.Errorf("entry %+v", a)
	}
}

func TestUnavailableProfile(t *testing.T) {
	h := newFaultHarness(t)
	w := h.post(PathNew, identityForm())
	state := stateOf(t, w)
	h.fault.Fail(storefault.ReadOnly(t), "UseState")
	w = h.post(PathProfile, profileForm(state))
	wantFormAgain(t, w, PathProfile, "No account was created.", `value="john.doe@example.com"`, `value="Building 12, Wiesbaden"`,
		`value="&#43;49 611 555 0100"`, `<option value="USA" selected>`, `<option value="Europe" selected>`)
	h.wantAudited(t, "enroll.profile", selfservice.ThrottleUnavailableReason, store.CauseReadOnly)
	// Sent again once the database is back, the same form goes on.
	h.fault.Heal()
	wantStatus(t, h.post(PathProfile, profileForm(stateOf(t, w))), http.StatusOK, "2 of 2")
}

// TestUnavailableEnrollment: the case. The account cannot be
// created on a full disk: the questions form again with the questions
// picked, nothing created, audited once per card however often it is sent
// again; once the disk has room the same page's form creates the
// account.
func TestUnavailableEnrollment(t *testing.T) {
	h := newFaultHarness(t)
	state := h.walkToQuestions()
	h.fault.Fail(storefault.DiskFull(t), "Enroll")
	var w *httptest.ResponseRecorder
	for range 4 {
		w = h.post(PathQuestions, questionsForm(state))
		wantFormAgain(t, w, PathQuestions, "No account was created.", `<option value="first-pet" selected>`,
			`<option value="childhood-street" selected>`, `<option value="first-car" selected>`)
		state = stateOf(t, w)
	}
	a := h.wantAudited(t, "enroll.completed", selfservice.StoreUnavailableReason, store.CauseDiskFull)
	if a.Fields["card"] != h.card.FingerprintHex {
		t.Errorf("entry %+v", a)
	}
	if h.cardOwner(h.card.FingerprintHex) != "" {
		t.Fatal("account created on a full disk")
	}
	// Every refusal is one series: the audit log writes it once a minute.
	if len(h.keys) != 4 || h.keys[0] != h.keys[3] || !strings.Contains(h.keys[0], h.card.FingerprintHex) {
		t.Errorf("series keys %q", h.keys)
	}
	h.fault.Heal()
	wantStatus(t, h.post(PathQuestions, questionsForm(state)), http.StatusOK, "john.q.doe")
	if h.cardOwner(h.card.FingerprintHex) != "john.q.doe" {
		t.Fatal("no account after the disk had room")
	}
}

func TestUnavailableLink(t *testing.T) {
	h := newFaultHarness(t)
	a := h.addAccount("john.q.doe", "1234567890", testPassword)
	h.fault.Fail(storefault.Closed(t), "AccountByUsername")
	w := h.post(PathLink, linkForm("John.Q.Doe", testPassword))
	wantFormAgain(t, w, PathLink, "The card was not registered.", `value="john.q.doe"`)
	h.wantAudited(t, "card.linked", selfservice.StoreUnavailableReason, store.CauseUnreachable)
	// The password checked out, but the card cannot be registered.
	h.fault.Heal()
	h.fault.Fail(storefault.DiskFull(t), "LinkCard")
	wantFormAgain(t, h.post(PathLink, linkForm("john.q.doe", testPassword)), PathLink, "The card was not registered.")
	if h.cardOwner(h.card.FingerprintHex) != "" {
		t.Fatal("card registered")
	}
	if st := h.failures(a); st.Failures != 0 {
		t.Errorf("the right password counted: %+v", st)
	}
	h.fault.Heal()
	wantStatus(t, h.post(PathLink, linkForm("john.q.doe", testPassword)), http.StatusOK)
	if h.cardOwner(h.card.FingerprintHex) != "john.q.doe" {
		t.Fatal("card not registered once the database was back")
	}
}

func TestUnavailableReset(t *testing.T) {
	h := newFaultHarness(t)
	h.addResetAccount("john.q.doe", "1234567890")
	h.fault.Fail(storefault.Closed(t), "AccountByUsername")
	wantFormAgain(t, h.post(PathReset, url.Values{"username": {"john.q.doe"}}), PathReset, "The password was not changed.", `value="john.q.doe"`)
	h.wantAudited(t, "password.reset", selfservice.StoreUnavailableReason, store.CauseUnreachable)
	h.fault.Heal()
	state := h.resetStart("john.q.doe")
	h.fault.Fail(storefault.DiskFull(t), "SetPassword")
	w := h.post(PathReset, rightAnswers(state, testNewPassword))
	wantFormAgain(t, w, PathReset, "The password was not changed.", `name="answer-1"`, "What was the name of your first pet?")
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Fatal("password changed on a full disk")
	}
	h.fault.Heal()
	wantStatus(t, h.post(PathReset, rightAnswers(stateOf(t, w), testNewPassword)), http.StatusOK, "Your password has been changed")
}

func TestUnavailableAccountPages(t *testing.T) {
	h := newFaultHarness(t)
	h.addResetAccount("john.q.doe", "1234567890")
	if err := h.db.LinkCard(context.Background(), h.account("john.q.doe").ID, h.thisCard()); err != nil {
		t.Fatal(err)
	}
	other := storeCard("cd")
	if err := h.db.LinkCard(context.Background(), h.account("john.q.doe").ID, other); err != nil {
		t.Fatal(err)
	}

	h.fault.Fail(storefault.DiskFull(t), "UnlinkCard")
	w := h.postAccount(PathAccountClearCard, url.Values{"sha256": {other.Fingerprint}})
	wantFormAgain(t, w, PathAccountClearCard, "The card&#39;s registration was not cleared.", other.Subject)
	if h.cardOwner(other.Fingerprint) != "john.q.doe" {
		t.Fatal("card cleared")
	}
	h.wantAudited(t, "card.unlinked", selfservice.StoreUnavailableReason, store.CauseDiskFull)

	h.fault.Heal()
	h.fault.Fail(storefault.DiskFull(t), "SetPassword")
	w = h.postAccount(PathAccountPassword, passwordForm(testPassword, testNewPassword, testNewPassword))
	wantFormAgain(t, w, PathAccountPassword, "Your password was not changed.", `for="current"`)
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Fatal("password changed")
	}
	h.wantAudited(t, "password.changed", selfservice.StoreUnavailableReason, store.CauseDiskFull)

	h.fault.Heal()
	h.fault.Fail(storefault.ReadOnly(t), "SetAnswers")
	w = h.postAccount(PathAccountAnswers, answersForm(testPassword))
	wantFormAgain(t, w, PathAccountAnswers, "Your security questions were not changed.", `<option value="first-car" selected>`)
	creds, err := h.db.Credentials(context.Background(), h.account("john.q.doe").ID)
	if err != nil || creds.Answers[0].QuestionID != "first-pet" {
		t.Fatalf("answers changed: %+v %v", creds, err)
	}
	h.wantAudited(t, "answers.changed", selfservice.StoreUnavailableReason, store.CauseReadOnly)

	// Neither change counted against the card's ten: the database failed.
	h.fault.Heal()
	wantStatus(t, h.postAccount(PathAccountAnswers, answersForm(testPassword)), http.StatusOK, "were changed")
}

// TestUnavailableAPIClient: a program gets the problem as JSON.
func TestUnavailableAPIClient(t *testing.T) {
	h := newFaultHarness(t)
	h.fault.Fail(storefault.Closed(t))
	r := httptest.NewRequest(http.MethodPost, PathLink, strings.NewReader(url.Values{"csrf": {"csrf-token"},
		"username": {"john.q.doe"}, "password": {testPassword}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	if err := h.flow.Serve(w, r, h.card, fakeCSRF{}); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "30" ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") || !strings.Contains(w.Body.String(), `"error":"account_service_unavailable"`) {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}

func TestUnavailableSignIn(t *testing.T) {
	h := newFaultHarness(t)
	h.addAccount("john.q.doe", "1234567890", testPassword)
	signIn := func() *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, PathLogin, strings.NewReader(url.Values{
			"csrf": {"csrf-token"}, "username": {"john.q.doe"}, "password": {testPassword}, "next": {"/app"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Accept", "text/html")
		w := httptest.NewRecorder()
		if err := h.flow.ServeLogin(w, r, Login{CSRF: fakeCSRF{}, Next: "/", SignIn: func(*store.Account, string) error {
			t.Fatal("signed in")
			return nil
		}}); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		h.bodies = append(h.bodies, w.Body.String())
		h.mu.Unlock()
		return w
	}
	for _, op := range []string{"AccountByUsername", "TakeLoginAttempt", "TakeAttempt"} {
		h.fault.Heal()
		h.fault.Fail(storefault.Closed(t), op)
		wantFormAgain(t, signIn(), PathLogin, "You were not signed in.", `value="john.q.doe"`, `value="/app"`)
	}
	a := h.wantAudited(t, "signin.password", selfservice.StoreUnavailableReason, store.CauseUnreachable)
	if a.Fields["username"] != "" || a.Fields["card"] != "" {
		t.Errorf("entry names what was typed: %+v", a)
	}
	// No card: one series per client address.
	for _, k := range h.keys {
		if strings.Contains(k, "\x00") {
			t.Errorf("series key %q names a card", k)
		}
	}
	if h.audited("signin.password", "success") != nil {
		t.Error("a sign-in audited as done")
	}
}

// TestUnavailableSessionRecord: with session_limit the session must be
// recorded; when it cannot be, nobody is signed in: the form again.
func TestUnavailableSessionRecord(t *testing.T) {
	h := newFaultHarness(t)
	h.addAccount("john.q.doe", "1234567890", testPassword)
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
	core, _ := observer.New(zap.InfoLevel)
	p, err := New(Config{Gateway: &fakeGateway{}, Pages: h.flow, Consent: tokens, Banner: consent.DefaultBanner(), ConsentTTL: time.Hour,
		PasswordLogin: true, Sessions: session.NewManager(stokens, h.fault, 10, time.Minute, nil), SessionTTL: time.Hour, SessionLimit: 2,
		Audit: audit.New(zap.New(core), "node-a"), JWKS: func() []byte { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	h.fault.Fail(storefault.DiskFull(t), "StartSession")
	get := httptest.NewRequest(http.MethodGet, PathLogin, nil)
	w := httptest.NewRecorder()
	if err := p.ServeHTTP(w, get); err != nil {
		t.Fatal(err)
	}
	cookie := w.Result().Cookies()[0]
	csrf := loginCSRF{tokens: tokens, nonce: cookie.Value, now: time.Now()}.Token()
	r := httptest.NewRequest(http.MethodPost, PathLogin, strings.NewReader(url.Values{
		"csrf": {csrf}, "username": {"john.q.doe"}, "password": {testPassword}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "text/html")
	r.AddCookie(cookie)
	w = httptest.NewRecorder()
	if err := p.ServeHTTP(w, r); err != nil {
		t.Fatal(err)
	}
	wantFormAgain(t, w, PathLogin, "You were not signed in.", `value="john.q.doe"`)
	for _, c := range w.Result().Cookies() {
		if c.Name == session.CookieName {
			t.Fatal("a session cookie without its record")
		}
	}
	if a := h.wantAudited(t, "signin.password", selfservice.StoreUnavailableReason, store.CauseDiskFull); a.Fields["username"] != "john.q.doe" {
		t.Errorf("entry %+v", a)
	}
}

// TestUnavailablePageViaGateway: a page that must read the database to be
// shown (the change-password form) is the gateway's refusal when it
// cannot: never an empty 500.
func TestUnavailablePageViaGateway(t *testing.T) {
	h := newFaultHarness(t)
	acct := h.addAccount("john.q.doe", "1234567890", testPassword)
	gw := &fakeGateway{}
	tokens, err := consent.NewTokens(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Gateway: gw, Pages: h.flow, Consent: tokens, Banner: consent.DefaultBanner(), ConsentTTL: time.Hour,
		JWKS: func() []byte { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	h.fault.Fail(storefault.Closed(t), "Credentials")
	for _, path := range []string{PathAccountPassword, PathAccountAnswers} {
		w := httptest.NewRecorder()
		if err := p.ServeHTTP(w, WithVisitor(httptest.NewRequest(http.MethodGet, path, nil), Visitor{Card: h.card, Account: acct})); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s: %d", path, w.Code)
		}
	}
	if len(gw.unavailable) != 2 || !errors.Is(gw.unavailable[0], selfservice.ErrUnavailable) || store.Cause(gw.unavailable[0]) != store.CauseUnreachable {
		t.Fatalf("gateway asked %v", gw.unavailable)
	}
}

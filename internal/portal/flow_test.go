package portal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// Secrets the tests type. None may appear in a page or an audit record.
const (
	testSSN      = "219-09-9999"
	testDOB      = "1971-03-14"
	testPEBD     = "1990-06-01"
	testPassword = "Zebra!Quartz@Mango"
	testAnswer1  = "fluffy kitten"
	testAnswer2  = "maple avenue"
	testAnswer3  = "honda civic"
)

var secrets = []string{testSSN, "219099999", testDOB, testPEBD, testPassword, testAnswer1, testAnswer2, testAnswer3}

// fakeRoster knows one person.
type fakeRoster struct {
	mu          sync.Mutex
	unavailable bool
	needsPEBD   bool
	records     []roster.Record
	verifies    int
}

func (f *fakeRoster) Verify(_ context.Context, c roster.Claim) (roster.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verifies++
	if f.unavailable {
		return roster.Result{}, fmt.Errorf("%w: test", roster.ErrUnavailable)
	}
	ssn := strings.ReplaceAll(c.SSN, "-", "")
	if c.EDIPI != "1234567890" || ssn != "219099999" || c.DOB != testDOB {
		return roster.Result{}, nil
	}
	if f.needsPEBD && c.PEBD != testPEBD {
		return roster.Result{}, nil
	}
	return roster.Result{Match: true, Records: f.records}, nil
}

func (f *fakeRoster) NeedsPEBD(context.Context, string) (roster.PEBDNeed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unavailable {
		return roster.PEBDNotAsked, fmt.Errorf("%w: test", roster.ErrUnavailable)
	}
	if f.needsPEBD {
		return roster.PEBDRequired, nil
	}
	return roster.PEBDNotAsked, nil
}

// fakeStore enforces the store's uniqueness rules.
type fakeStore struct {
	mu       sync.Mutex
	accounts []*store.Enrollment
}

func (s *fakeStore) Enroll(_ context.Context, e *store.Enrollment) (*store.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range s.accounts {
		if old.Account.EDIPI == e.Account.EDIPI {
			return nil, fmt.Errorf("store: enroll: %w", store.ErrEDIPITaken)
		}
		if old.Card.Fingerprint == e.Card.Fingerprint {
			return nil, fmt.Errorf("store: enroll: %w", store.ErrCardTaken)
		}
	}
	cp := *e
	s.accounts = append(s.accounts, &cp)
	a := e.Account
	a.ID = int64(len(s.accounts))
	a.Username = e.UsernameBase
	return &a, nil
}

func (s *fakeStore) byFingerprint(fingerprint string) *store.Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.accounts {
		if e.Card.Fingerprint == fingerprint {
			a := e.Account
			a.ID, a.Username = int64(i+1), e.UsernameBase
			return &a
		}
	}
	return nil
}

func (s *fakeStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accounts)
}

type fakeCSRF struct{}

func (fakeCSRF) Token() string       { return "csrf-token" }
func (fakeCSRF) Check(t string) bool { return t == "csrf-token" }

type auditRecord struct {
	Event, Outcome string
	Fields         map[string]string
}

type harness struct {
	t *testing.T
	// db counts the guard's attempts, as the gateway's account database
	// does; storeHarness also keeps its accounts there.
	db     *store.SQLStore
	dbPath string
	flow   *Pages
	cfg    selfservice.Config
	deps   selfservice.Deps
	roster *fakeRoster
	store  *fakeStore
	sealer *selfservice.Sealer
	card   *cacid.Identity
	now    time.Time
	mu     sync.Mutex
	audits []auditRecord
	bodies []string // every page rendered, for the secrets check
}

func testCard(edipi, fingerprint string) *cacid.Identity {
	return &cacid.Identity{
		EDIPI: edipi, FamilyName: "DOE", GivenName: "JOHN", MiddleName: "QUINCY",
		Affiliation: "USA", FingerprintHex: fingerprint,
		Subject:  "CN=DOE.JOHN.QUINCY." + edipi + ",OU=USA,OU=PKI,OU=DoD,O=U.S. Government,C=US",
		Issuer:   "CN=DOD ID CA-70,OU=PKI,OU=DoD,O=U.S. Government,C=US",
		Serial:   "0a1b2c",
		NotAfter: time.Date(2029, 5, 31, 23, 59, 59, 0, time.UTC),
	}
}

func newHarness(t *testing.T, cfg selfservice.Config) *harness {
	t.Helper()
	h := &harness{
		t: t,
		roster: &fakeRoster{records: []roster.Record{
			{EDIPI: "1234567890", Category: "Active Army", Last: "DOE", First: "JOHN", Middle: "QUINCY", Organization: "1st Battalion"},
		}},
		store:  &fakeStore{},
		sealer: newSealer(t),
		card:   testCard("1234567890", strings.Repeat("ab", 32)),
		now:    time.Now(),
	}
	if cfg.Contact == "" {
		cfg.Contact = "Service desk, 555-0100"
	}
	h.dbPath = filepath.Join(t.TempDir(), "cacgate.db")
	db, err := store.OpenSQLite(context.Background(), h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.db = db
	h.cfg = cfg
	h.deps = selfservice.Deps{
		Roster:   h.roster,
		Accounts: harnessAccounts{db, h.store.Enroll, h.store.byFingerprint},
		Throttle: db,
		States:   db,
		Hasher:   credential.NewHasher(credential.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}, 4),
		Sealer:   h.sealer,
		Audit: func(_ context.Context, event, outcome string, fields map[string]string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.audits = append(h.audits, auditRecord{event, outcome, fields})
		},
		Now: func() time.Time {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.now
		},
	}
	h.rebuild()
	t.Cleanup(h.checkNoSecrets)
	return h
}

// rebuild makes the harness's pages again from h.cfg and h.deps, after a
// test changed them.
func (h *harness) rebuild() {
	h.t.Helper()
	svc, err := selfservice.New(h.cfg, h.deps)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.flow, err = NewPages(svc); err != nil {
		h.t.Fatal(err)
	}
}

// harnessAccounts is the harness's database with enrollment going to
// enroll (the fake store that counts accounts, or one that fails).
type harnessAccounts struct {
	selfservice.Accounts
	enroll func(context.Context, *store.Enrollment) (*store.Account, error)
	// enrolled finds a card among the accounts enroll made (nil: none).
	enrolled func(fingerprint string) *store.Account
}

func (a harnessAccounts) AccountByFingerprint(ctx context.Context, fingerprint string) (*store.Account, error) {
	if a.enrolled != nil {
		if acct := a.enrolled(fingerprint); acct != nil {
			return acct, nil
		}
	}
	return a.Accounts.AccountByFingerprint(ctx, fingerprint)
}

func (a harnessAccounts) Enroll(ctx context.Context, e *store.Enrollment) (*store.Account, error) {
	return a.enroll(ctx, e)
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

// do sends a request as card and returns the response.
func (h *harness) do(method, path string, form url.Values, card *cacid.Identity, csrf CSRF) *httptest.ResponseRecorder {
	h.t.Helper()
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	if err := h.flow.Serve(w, r, card, csrf); err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	body := w.Body.String()
	h.mu.Lock()
	h.bodies = append(h.bodies, body)
	h.mu.Unlock()
	if strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		checkAccessible(h.t, method+" "+path, body)
	}
	return w
}

func (h *harness) get(path string) *httptest.ResponseRecorder {
	return h.do(http.MethodGet, path, nil, h.card, fakeCSRF{})
}

func (h *harness) post(path string, form url.Values) *httptest.ResponseRecorder {
	if form.Get("csrf") == "" {
		form.Set("csrf", "csrf-token")
	}
	return h.do(http.MethodPost, path, form, h.card, fakeCSRF{})
}

func (h *harness) checkNoSecrets() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, body := range h.bodies {
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(body), strings.ToLower(s)) {
				h.t.Errorf("page %d shows the secret %q", i, s)
			}
		}
	}
	for _, a := range h.audits {
		for k, v := range a.Fields {
			for _, s := range secrets {
				if strings.Contains(strings.ToLower(v), strings.ToLower(s)) || strings.Contains(strings.ToLower(k), strings.ToLower(s)) {
					h.t.Errorf("audit %s/%s field %s carries a secret", a.Event, a.Outcome, k)
				}
			}
		}
	}
}

func (h *harness) audited(event, outcome string) *auditRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.audits {
		if h.audits[i].Event == event && h.audits[i].Outcome == outcome {
			return &h.audits[i]
		}
	}
	return nil
}

var stateRE = regexp.MustCompile(`name="state" value="([^"]*)"`)

func stateOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	m := stateRE.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no state in page (status %d):\n%s", w.Code, w.Body)
	}
	return m[1]
}

func identityForm() url.Values {
	return url.Values{"idtype": {"ssn"}, "ssn": {testSSN}, "dob": {testDOB}}
}

func profileForm(state string) url.Values {
	return url.Values{"state": {state}, "email": {"john.doe@example.com"}, "organization": {"USA"}, "location": {"Europe"},
		"address": {"Building 12, Wiesbaden"}, "phone": {"+49 611 555 0100"}, "password": {testPassword}, "confirm": {testPassword}}
}

func questionsForm(state string) url.Values {
	return url.Values{"state": {state},
		"question-1": {"first-pet"}, "answer-1": {testAnswer1}, "confirm-1": {testAnswer1},
		"question-2": {"childhood-street"}, "answer-2": {testAnswer2}, "confirm-2": {"Maple  Avenue"},
		"question-3": {"first-car"}, "answer-3": {testAnswer3}, "confirm-3": {testAnswer3}}
}

// walk runs the flow up to the questions form and returns its state.
func (h *harness) walkToQuestions() string {
	h.t.Helper()
	w := h.post(PathNew, identityForm())
	if w.Code != http.StatusOK {
		h.t.Fatalf("identity: %d\n%s", w.Code, w.Body)
	}
	w = h.post(PathProfile, profileForm(stateOf(h.t, w)))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "2 of 2") {
		h.t.Fatalf("profile: %d\n%s", w.Code, w.Body)
	}
	return stateOf(h.t, w)
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, code int, contains ...string) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d\n%s", w.Code, code, w.Body)
	}
	for _, s := range contains {
		if !strings.Contains(w.Body.String(), s) {
			t.Errorf("page lacks %q:\n%s", s, w.Body)
		}
	}
}

func TestFlowHappyPath(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	wantStatus(t, h.get(PathEnroll), http.StatusOK, `href="/.cacgate/enroll/new"`, `href="/.cacgate/enroll/link"`, "Create a new account")
	wantStatus(t, h.get(PathNew), http.StatusOK, `name="ssn"`, `name="fin"`, `type="date"`, `autocomplete="off"`)

	w := h.post(PathNew, identityForm())
	wantStatus(t, w, http.StatusOK, "Self registration: 1 of 2", "JOHN QUINCY DOE", "1234567890", "Active Army")
	if strings.Contains(w.Body.String(), `name="edipi"`) {
		t.Error("EDIPI is an input")
	}
	if a := h.audited("enroll.identity", "success"); a == nil || a.Fields["edipi"] != "1234567890" {
		t.Errorf("identity success not audited: %+v", h.audits)
	}
	w = h.post(PathProfile, profileForm(stateOf(t, w)))
	wantStatus(t, w, http.StatusOK, "Self registration: 2 of 2", "What was the name of your first pet?")
	w = h.post(PathQuestions, questionsForm(stateOf(t, w)))
	wantStatus(t, w, http.StatusOK, "Account registration complete", "john.q.doe", "john.doe@example.com", "USA", "Europe",
		"Active Army", "CN=DOE.JOHN.QUINCY.1234567890", "DOD ID CA-70", "2029-05-31", `href="/"`)

	if h.store.count() != 1 {
		t.Fatalf("%d accounts", h.store.count())
	}
	e := h.store.accounts[0]
	if e.UsernameBase != "john.q.doe" || e.Account.Status != store.StatusActive || e.Account.EDIPI != "1234567890" ||
		e.Account.Email != "john.doe@example.com" || e.Account.Organization != "USA" || e.Account.Location != "Europe" ||
		e.Account.WorkAddress != "Building 12, Wiesbaden" || e.Account.Phone != "+49 611 555 0100" ||
		len(e.Account.Categories) != 1 || e.Card.Fingerprint != h.card.FingerprintHex || e.Card.Serial != "0a1b2c" {
		t.Errorf("enrollment: %+v", e)
	}
	hasher := credential.NewHasher(credential.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}, 1)
	if ok, err := hasher.Verify(context.Background(), testPassword, e.PasswordHash); !ok || err != nil {
		t.Errorf("password hash does not verify: %v", err)
	}
	for i, want := range []string{testAnswer1, testAnswer2, testAnswer3} {
		if ok, err := hasher.VerifyAnswer(context.Background(), want, e.Answers[i].Hash); !ok || err != nil {
			t.Errorf("answer %d hash does not verify: %v", i, err)
		}
	}
	if e.Answers[0].QuestionID != "first-pet" || e.Answers[2].QuestionID != "first-car" {
		t.Errorf("answers: %+v", e.Answers)
	}
	if a := h.audited("enroll.completed", "success"); a == nil || a.Fields["username"] != "john.q.doe" {
		t.Errorf("completion not audited: %+v", h.audits)
	}
}

func TestFlowRosterMismatch(t *testing.T) {
	h := newHarness(t, selfservice.Config{Contact: "the Army help desk"})
	form := identityForm()
	form.Set("dob", "1971-03-15")
	w := h.post(PathNew, form)
	wantStatus(t, w, http.StatusUnprocessableEntity, "does not match the personnel records for your DoD ID", "the Army help desk", `role="alert"`)
	if strings.Contains(w.Body.String(), "1971-03-15") || strings.Contains(w.Body.String(), `name="state"`) {
		t.Error("mismatch page echoes the DOB or carries a state")
	}
	a := h.audited("enroll.identity", "failure")
	if a == nil {
		t.Fatalf("mismatch not audited: %+v", h.audits)
	}
	for k, v := range a.Fields {
		if strings.Contains(v, "1971") || strings.Contains(v, "219") {
			t.Errorf("audit field %s=%q", k, v)
		}
	}
	if h.store.count() != 0 {
		t.Error("account created")
	}
}

func TestFlowRosterUnavailable(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	h.roster.unavailable = true
	wantStatus(t, h.post(PathNew, identityForm()), http.StatusServiceUnavailable, "Try again later")
	if a := h.audited("enroll.identity", "unavailable"); a == nil {
		t.Errorf("not audited: %+v", h.audits)
	}
	// Asking whether to show the PEBD needs the roster too.
	h2 := newHarness(t, selfservice.Config{AskPEBD: true})
	h2.roster.unavailable = true
	wantStatus(t, h2.get(PathNew), http.StatusServiceUnavailable)
	if h.store.count() != 0 {
		t.Error("account created")
	}
}

func TestFlowIneligible(t *testing.T) {
	h := newHarness(t, selfservice.Config{Eligible: []string{"Contractor", "DoD Civilian"}})
	w := h.post(PathNew, identityForm())
	wantStatus(t, w, http.StatusForbidden, "Contractor", "DoD Civilian", "Active Army")
	if strings.Contains(w.Body.String(), `name="state"`) {
		t.Error("ineligible page carries a state")
	}
	if h.audited("enroll.identity", "ineligible") == nil {
		t.Errorf("not audited: %+v", h.audits)
	}
	if h.store.count() != 0 {
		t.Error("account created")
	}
}

func TestFlowAttemptLimit(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	bad := identityForm()
	bad.Set("dob", "1980-01-01")
	for range maxFailures {
		wantStatus(t, h.post(PathNew, bad), http.StatusUnprocessableEntity)
	}
	wantStatus(t, h.post(PathNew, bad), http.StatusTooManyRequests)
	// Even the right answer is refused until the window passes, without
	// asking the roster.
	before := h.roster.verifies
	wantStatus(t, h.post(PathNew, identityForm()), http.StatusTooManyRequests)
	if h.roster.verifies != before {
		t.Error("roster consulted while limited")
	}
	// Another card is not affected.
	other := testCard("1234567890", strings.Repeat("cd", 32))
	f := identityForm()
	f.Set("csrf", "csrf-token")
	wantStatus(t, h.do(http.MethodPost, PathNew, f, other, fakeCSRF{}), http.StatusOK)

	h.advance(failureWindow)
	wantStatus(t, h.post(PathNew, identityForm()), http.StatusOK, "1 of 2")
}

func TestFlowFieldErrorsKeepNonSecrets(t *testing.T) {
	h := newHarness(t, selfservice.Config{RequirePhone: true})

	// Identity: malformed SSN → field error, nothing echoed.
	form := identityForm()
	form.Set("ssn", "98-7")
	w := h.post(PathNew, form)
	wantStatus(t, w, http.StatusUnprocessableEntity, `href="#ssn"`, `id="ssn-error"`, `aria-describedby="ssn-error"`)
	if strings.Contains(w.Body.String(), "98-7") {
		t.Error("identity form echoes the SSN")
	}
	// FIN chosen keeps the radio.
	w = h.post(PathNew, url.Values{"idtype": {"fin"}, "fin": {""}, "dob": {testDOB}})
	wantStatus(t, w, http.StatusUnprocessableEntity, `value="fin" checked`)

	// Profile: bad confirm and missing phone; email and address kept.
	w = h.post(PathNew, identityForm())
	state := stateOf(t, w)
	pf := profileForm(state)
	pf.Set("confirm", testPassword+"x")
	pf.Del("phone")
	w = h.post(PathProfile, pf)
	wantStatus(t, w, http.StatusUnprocessableEntity, `value="john.doe@example.com"`, `value="Building 12, Wiesbaden"`,
		`href="#confirm"`, `href="#phone"`, `id="phone-error"`, `<option value="USA" selected>`, `<option value="Europe" selected>`)
	if strings.Contains(w.Body.String(), "Zebra") {
		t.Error("profile form echoes the password")
	}
	// A weak password that contains the name.
	pf = profileForm(stateOf(t, w))
	pf.Set("password", "John!Doe@Quincy")
	pf.Set("confirm", "John!Doe@Quincy")
	pf.Set("email", "not an email")
	w = h.post(PathProfile, pf)
	wantStatus(t, w, http.StatusUnprocessableEntity, `href="#password"`, `href="#email"`, "Do not include your username or your name.", `value="not an email"`)
	if strings.Contains(w.Body.String(), "John!Doe") {
		t.Error("profile form echoes the password")
	}

	// Questions: the same question twice, answers not echoed, choices kept.
	pf = profileForm(stateOf(t, w))
	w = h.post(PathProfile, pf)
	wantStatus(t, w, http.StatusOK, "2 of 2")
	qf := questionsForm(stateOf(t, w))
	qf.Set("question-3", "first-pet")
	qf.Set("confirm-1", "something else")
	w = h.post(PathQuestions, qf)
	wantStatus(t, w, http.StatusUnprocessableEntity, `href="#question-3"`, `href="#confirm-1"`, `id="question-3-error"`,
		`<option value="childhood-street" selected>`)
	if strings.Contains(w.Body.String(), "something else") {
		t.Error("questions form echoes an answer")
	}
	// The re-rendered state still works.
	wantStatus(t, h.post(PathQuestions, questionsForm(stateOf(t, w))), http.StatusOK, "Account registration complete")
}

func TestFlowStepSkipping(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	restart := func(w *httptest.ResponseRecorder, name string) {
		t.Helper()
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != PathNew+"?restart=1" {
			t.Errorf("%s: %d %q, want restart", name, w.Code, w.Header().Get("Location"))
		}
	}
	restart(h.post(PathQuestions, questionsForm("")), "no state")
	restart(h.post(PathProfile, profileForm("")), "profile without state")

	good := h.walkToQuestions()
	raw := []byte(good)
	if raw[10] == 'A' {
		raw[10] = 'B'
	} else {
		raw[10] = 'A'
	}
	restart(h.post(PathQuestions, questionsForm(string(raw))), "tampered")

	// A valid state sealed for another card.
	other, err := h.sealer.Seal(strings.Repeat("cd", 32), map[string]any{"card": strings.Repeat("cd", 32), "step": 3,
		"cat": []string{"Active Army"}, "pw": "x"}, h.now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	restart(h.post(PathQuestions, questionsForm(other)), "other card")

	// The step-2 state cannot skip the profile.
	w := h.post(PathNew, identityForm())
	restart(h.post(PathQuestions, questionsForm(stateOf(t, w))), "step 2 state")

	// An expired state.
	h.advance(31 * time.Minute)
	restart(h.post(PathQuestions, questionsForm(good)), "expired")

	// GET of a later step goes to the start.
	for _, p := range []string{PathProfile, PathQuestions} {
		if w := h.get(p); w.Code != http.StatusSeeOther || w.Header().Get("Location") != PathNew {
			t.Errorf("GET %s: %d %q", p, w.Code, w.Header().Get("Location"))
		}
	}
	if h.store.count() != 0 {
		t.Error("account created")
	}
}

func TestFlowCSRF(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	for _, p := range []string{PathNew, PathProfile, PathQuestions} {
		form := identityForm()
		w := h.do(http.MethodPost, p, form, h.card, fakeCSRF{})
		wantStatus(t, w, http.StatusForbidden)
		form.Set("csrf", "forged")
		wantStatus(t, h.do(http.MethodPost, p, form, h.card, fakeCSRF{}), http.StatusForbidden)
	}
	if h.roster.verifies != 0 {
		t.Error("roster consulted without a valid CSRF token")
	}
}

func TestFlowDoubleSubmit(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	state := h.walkToQuestions()
	wantStatus(t, h.post(PathQuestions, questionsForm(state)), http.StatusOK, "Account registration complete")
	// The card is registered now: the second submit is refused before
	// anything is hashed, with a way to the account page.
	wantStatus(t, h.post(PathQuestions, questionsForm(state)), http.StatusConflict, "You already have an account", `href="/"`, `href="/.cacgate/account"`)
	if h.store.count() != 1 {
		t.Errorf("%d accounts", h.store.count())
	}
	if a := h.audited("enroll.questions", "failure"); a == nil || a.Fields["reason"] != "registered" {
		t.Errorf("not audited: %+v", h.audits)
	}
}

func TestFlowApproval(t *testing.T) {
	h := newHarness(t, selfservice.Config{Approval: true})
	state := h.walkToQuestions()
	wantStatus(t, h.post(PathQuestions, questionsForm(state)), http.StatusOK, "Your account is waiting for approval", "john.q.doe")
	if h.store.accounts[0].Account.Status != store.StatusPending {
		t.Errorf("status %q", h.store.accounts[0].Account.Status)
	}
}

func TestFlowPEBD(t *testing.T) {
	h := newHarness(t, selfservice.Config{AskPEBD: true})
	h.roster.needsPEBD = true
	wantStatus(t, h.get(PathNew), http.StatusOK, `name="pebd"`)
	wantStatus(t, h.post(PathNew, identityForm()), http.StatusUnprocessableEntity, `href="#pebd"`)
	form := identityForm()
	form.Set("pebd", testPEBD)
	wantStatus(t, h.post(PathNew, form), http.StatusOK, "1 of 2")

	// Without AskPEBD the field is never shown.
	h2 := newHarness(t, selfservice.Config{})
	h2.roster.needsPEBD = true
	if strings.Contains(h2.get(PathNew).Body.String(), `name="pebd"`) {
		t.Error("PEBD asked although AskPEBD is off")
	}
}

func TestFlowMethodsAndLimits(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		w := h.do(m, PathNew, nil, h.card, fakeCSRF{})
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d", m, w.Code)
		}
	}
	if w := h.post(PathEnroll, url.Values{}); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST choice: %d", w.Code)
	}
	if w := h.get(PathEnroll + "/nope"); w.Code != http.StatusNotFound {
		t.Errorf("unknown page: %d", w.Code)
	}
	big := identityForm()
	big.Set("pad", strings.Repeat("x", maxBody))
	if w := h.post(PathNew, big); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: %d", w.Code)
	}
	if h.roster.verifies != 0 {
		t.Error("roster consulted")
	}
}

// TestFlowStoreErrorIsUnavailable: the account cannot be created (the
// database fails however it fails): 503 with Retry-After and the
// questions form again, never an empty 500; an API client gets JSON;
// nothing was created, and no error text or secret is shown.
func TestFlowStoreErrorIsUnavailable(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	state := h.walkToQuestions()
	h.deps.Accounts = harnessAccounts{h.db, failingStore{}.Enroll, nil}
	h.rebuild()
	w := h.post(PathQuestions, questionsForm(state))
	wantStatus(t, w, http.StatusServiceUnavailable, "No account was created.", `action="/.cacgate/enroll/questions"`)
	if w.Header().Get("Retry-After") == "" || strings.Contains(w.Body.String(), "locked") {
		t.Errorf("Retry-After %q, page:\n%s", w.Header().Get("Retry-After"), w.Body)
	}
	if a := h.audited("enroll.completed", "unavailable"); a == nil || a.Fields["reason"] != selfservice.StoreUnavailableReason || a.Fields["cause"] != "error" {
		t.Errorf("audit: %+v", h.audits)
	}
	state = stateOf(t, w)
	r := httptest.NewRequest(http.MethodPost, PathQuestions, strings.NewReader(questionsForm(state).Encode()+"&csrf=csrf-token"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "application/json")
	w = httptest.NewRecorder()
	if err := h.flow.Serve(w, r, h.card, fakeCSRF{}); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"error":"account_service_unavailable"`) || w.Header().Get("Retry-After") == "" {
		t.Fatalf("API client: %d %s", w.Code, w.Body)
	}
	for _, s := range append(secrets, "database is locked") {
		if strings.Contains(w.Body.String(), s) {
			t.Errorf("answer carries %q: %s", s, w.Body)
		}
	}
	if h.store.count() != 0 {
		t.Error("account created")
	}
}

type failingStore struct{}

func (failingStore) Enroll(context.Context, *store.Enrollment) (*store.Account, error) {
	return nil, errors.New("database is locked")
}

// Parallel wrong attempts cannot get past the limit: each is counted
// before the roster answers.
func TestFlowAttemptLimitParallel(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	bad := identityForm()
	bad.Set("dob", "1980-01-01")
	bad.Set("csrf", "csrf-token")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			r := httptest.NewRequest(http.MethodPost, PathNew, strings.NewReader(bad.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if err := h.flow.Serve(httptest.NewRecorder(), r, h.card, fakeCSRF{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if h.roster.verifies != maxFailures {
		t.Errorf("roster asked %d times, want %d", h.roster.verifies, maxFailures)
	}
}

func TestNewServiceNeedsDeps(t *testing.T) {
	if _, err := selfservice.New(selfservice.Config{}, selfservice.Deps{}); err == nil {
		t.Error("selfservice.New accepted no dependencies")
	}
}

// checkAccessible parses a page and checks that every visible input and
// select has a <label for>, that ids are unique, that aria-describedby and
// error-summary links point at elements that exist, and that there is no
// script.
func checkAccessible(t *testing.T, name, body string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ids := map[string]int{}
	labels := map[string]bool{}
	var controls []string
	var described, links []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			if id, ok := attr["id"]; ok {
				ids[id]++
			}
			switch n.Data {
			case "script":
				t.Errorf("%s: has a script", name)
			case "label":
				labels[attr["for"]] = true
			case "input", "select", "textarea":
				if attr["type"] != "hidden" {
					if attr["id"] == "" {
						t.Errorf("%s: %s %q has no id", name, n.Data, attr["name"])
					}
					controls = append(controls, attr["id"])
				}
			case "a":
				if strings.HasPrefix(attr["href"], "#") && attr["href"] != "#main" {
					links = append(links, attr["href"][1:])
				}
			}
			if d, ok := attr["aria-describedby"]; ok {
				described = append(described, strings.Fields(d)...)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, id := range controls {
		if !labels[id] {
			t.Errorf("%s: control %q has no <label for>", name, id)
		}
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("%s: id %q used %d times", name, id, n)
		}
	}
	for _, id := range append(described, links...) {
		if ids[id] == 0 {
			t.Errorf("%s: reference to missing id %q", name, id)
		}
	}
}

func newSealer(t *testing.T) *selfservice.Sealer {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	s, err := selfservice.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The guard's limits, as the tests count them.
const (
	maxFailures      = selfservice.MaxFailures
	failureWindow    = selfservice.FailureWindow
	loginWindow      = selfservice.LoginWindow
	loginMaxFailures = selfservice.LoginMaxFailures
)

// The guard's per-card keys, and its namespace in the attempts table.
func identityKey(c *cacid.Identity) string { return "identity:" + c.FingerprintHex }
func resetKey(c *cacid.Identity) string    { return "reset:" + c.FingerprintHex }

const cardPrefix = "enroll:"

const passwordHistory = selfservice.PasswordHistory

func mustSeal(t *testing.T, s *selfservice.Sealer, v any) string {
	t.Helper()
	out, err := s.Seal("card-a", v, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

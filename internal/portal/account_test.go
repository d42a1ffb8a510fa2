package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// doAccount sends a request to the account pages as the harness's card,
// for the account as the store holds it now (as the gateway would).
func (s *storeHarness) doAccount(method, path string, form url.Values, csrf CSRF) *httptest.ResponseRecorder {
	s.t.Helper()
	acct, err := s.db.AccountByFingerprint(context.Background(), s.card.FingerprintHex)
	if err != nil {
		s.t.Fatal(err)
	}
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	if err := s.flow.ServeAccount(w, r, s.card, acct, csrf); err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	body := w.Body.String()
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
	if strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		checkAccessible(s.t, method+" "+path, body)
	}
	return w
}

func (s *storeHarness) getAccount(path string) *httptest.ResponseRecorder {
	return s.doAccount(http.MethodGet, path, nil, fakeCSRF{})
}

func (s *storeHarness) postAccount(path string, form url.Values) *httptest.ResponseRecorder {
	if form.Get("csrf") == "" {
		form.Set("csrf", "csrf-token")
	}
	return s.doAccount(http.MethodPost, path, form, fakeCSRF{})
}

// thisCard is the harness card as the store holds it.
func (s *storeHarness) thisCard() store.Card {
	c := s.card
	return store.Card{Fingerprint: c.FingerprintHex, Subject: c.Subject, Issuer: c.Issuer, Serial: c.Serial, NotAfter: c.NotAfter}
}

func TestAccountPage(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword, h.thisCard(), storeCard("cd"))
	w := h.getAccount(PathAccount)
	wantStatus(t, w, http.StatusOK, "john.q.doe", "JOHN QUINCY DOE", "1234567890", "john.doe@example.com", "USA", "Europe",
		"Active Army", "active", "Last sign-in</dt><dd>never", "(this card)", h.card.Subject, "CN=cd", "2029-05-31",
		`value="`+h.card.FingerprintHex+`"`, `value="`+fingerprintOf("cd")+`"`,
		`href="/.cacgate/account/password"`, `href="/.cacgate/account/answers"`)
	if n := strings.Count(w.Body.String(), "Clear registration</button>"); n != 2 {
		t.Errorf("%d clear buttons, want 2", n)
	}
	if strings.Count(w.Body.String(), "(this card)") != 1 {
		t.Error("this card marked more than once")
	}

	// A sign-in shows.
	if err := h.db.TouchCard(context.Background(), h.card.FingerprintHex, h.now); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, h.getAccount(PathAccount+"/"), http.StatusOK, h.now.UTC().Format("2006-01-02 15:04 UTC"))
}

func TestAccountClearOtherCard(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword, h.thisCard(), storeCard("cd"))
	w := h.postAccount(PathAccountClearCard, url.Values{"sha256": {fingerprintOf("cd")}})
	wantStatus(t, w, http.StatusOK, "was cleared", "(this card)")
	if strings.Contains(w.Body.String(), fingerprintOf("cd")) {
		t.Error("cleared card still listed")
	}
	if h.cardOwner(fingerprintOf("cd")) != "" || h.cardOwner(h.card.FingerprintHex) != "john.q.doe" {
		t.Error("wrong card cleared")
	}
	if h.changes.Load() != 1 {
		t.Errorf("OnChange called %d times", h.changes.Load())
	}
	if a := h.audited("card.unlinked", "success"); a == nil || a.Fields["via"] != "holder" || a.Fields["cleared"] != fingerprintOf("cd") ||
		a.Fields["username"] != "john.q.doe" {
		t.Errorf("unlink not audited: %+v", h.audits)
	}
	// Now this card is the only one: no button, a note, and a POST is refused.
	w = h.getAccount(PathAccount)
	wantStatus(t, w, http.StatusOK, "only card registered to your account")
	if strings.Contains(w.Body.String(), "Clear registration</button>") {
		t.Error("the only card can be cleared")
	}
	w = h.postAccount(PathAccountClearCard, url.Values{"sha256": {h.card.FingerprintHex}})
	wantStatus(t, w, http.StatusConflict, "There is a problem", "cannot be cleared")
	if h.cardOwner(h.card.FingerprintHex) != "john.q.doe" || h.changes.Load() != 1 {
		t.Error("the only card was cleared")
	}
}

func TestAccountClearThisCard(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword, h.thisCard(), storeCard("cd"))
	acct := h.account("john.q.doe")
	r := httptest.NewRequest(http.MethodPost, PathAccountClearCard,
		strings.NewReader(url.Values{"csrf": {"csrf-token"}, "sha256": {h.card.FingerprintHex}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	if err := h.flow.ServeAccount(w, r, h.card, acct, fakeCSRF{}); err != nil {
		t.Fatal(err)
	}
	checkAccessible(t, "clear this card", w.Body.String())
	wantStatus(t, w, http.StatusOK, "was cleared", "no longer registered")
	if h.cardOwner(h.card.FingerprintHex) != "" || h.cardOwner(fingerprintOf("cd")) != "john.q.doe" {
		t.Error("wrong card cleared")
	}
}

func TestAccountClearForeignCard(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword, h.thisCard(), storeCard("cd"))
	h.addAccount("other.person", "5555555555", "", storeCard("ef"))
	for _, fp := range []string{fingerprintOf("ef"), "", "not-a-fingerprint"} {
		wantStatus(t, h.postAccount(PathAccountClearCard, url.Values{"sha256": {fp}}), http.StatusNotFound)
	}
	if h.cardOwner(fingerprintOf("ef")) != "other.person" || h.cardOwner(fingerprintOf("cd")) != "john.q.doe" || h.changes.Load() != 0 {
		t.Error("a card was cleared")
	}
	if h.audited("card.unlinked", "failure") == nil {
		t.Error("refusal not audited")
	}
}

func passwordForm(current, password, confirm string) url.Values {
	return url.Values{"current": {current}, "password": {password}, "confirm": {confirm}}
}

func (s *storeHarness) passwordIs(username, password string) bool {
	s.t.Helper()
	creds, err := s.db.Credentials(context.Background(), s.account(username).ID)
	if err != nil {
		s.t.Fatal(err)
	}
	ok, err := s.deps.Hasher.Verify(context.Background(), password, creds.PasswordHash)
	if err != nil {
		s.t.Fatal(err)
	}
	return ok
}

func TestAccountPassword(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword, h.thisCard())
	wantStatus(t, h.getAccount(PathAccountPassword), http.StatusOK, `for="current"`, `for="password"`, `for="confirm"`,
		`autocomplete="current-password"`, `autocomplete="new-password"`, "15 to 20 characters")

	// Policy and confirmation problems are shown; the current password is
	// not checked (nor counted) for them.
	w := h.postAccount(PathAccountPassword, passwordForm(testWrongPassword, "short", "short"))
	wantStatus(t, w, http.StatusUnprocessableEntity, `href="#password"`, "Choose a password that follows the rules")
	w = h.postAccount(PathAccountPassword, passwordForm(testPassword, "Doe!Quartz@Mango12", "Doe!Quartz@Mango12"))
	wantStatus(t, w, http.StatusUnprocessableEntity, "Choose a password that follows the rules")
	w = h.postAccount(PathAccountPassword, passwordForm(testPassword, testNewPassword, testNewPassword2))
	wantStatus(t, w, http.StatusUnprocessableEntity, `href="#confirm"`, "do not match")
	w = h.postAccount(PathAccountPassword, passwordForm("", testNewPassword, testNewPassword))
	wantStatus(t, w, http.StatusUnprocessableEntity, `href="#current"`, "Enter your current password.")

	// A wrong current password counts like a sign-in.
	w = h.postAccount(PathAccountPassword, passwordForm(testWrongPassword, testNewPassword, testNewPassword))
	wantStatus(t, w, http.StatusUnprocessableEntity, `href="#current"`, "The current password is not correct.", "2 tries remaining")
	if a := h.audited("password.changed", "failure"); a == nil || a.Fields["reason"] != "bad_password" {
		t.Errorf("audits: %+v", h.audits)
	}

	// The page states the change rule; the current password cannot be
	// reused, and at least 8 of its characters must change (ASD STIG
	// V-222541): one changed character, or seven, is refused.
	wantStatus(t, h.getAccount(PathAccountPassword), http.StatusOK, "Change at least 8 characters of your current password.")
	for _, tooClose := range []string{testPassword, "Zebra!Quartz@Mangp", "Zebra!Quartz@M" + "ABCD", "Zebra!Quar" + "~ABCDEFG"[:7] + "o"} {
		w = h.postAccount(PathAccountPassword, passwordForm(testPassword, tooClose, tooClose))
		wantStatus(t, w, http.StatusUnprocessableEntity, `href="#password"`, "Choose a password further from your current one.")
		if strings.Contains(w.Body.String(), tooClose) {
			t.Fatalf("the refused password is echoed:\n%s", w.Body)
		}
	}
	if a := h.audited("password.changed", "failure"); a == nil {
		t.Errorf("audits: %+v", h.audits)
	}
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Fatal("a too-similar password was stored")
	}

	w = h.postAccount(PathAccountPassword, passwordForm(testPassword, testNewPassword, testNewPassword))
	wantStatus(t, w, http.StatusOK, "Your password was changed.")
	if !h.passwordIs("john.q.doe", testNewPassword) {
		t.Fatal("password not changed")
	}
	if h.audited("password.changed", "success") == nil {
		t.Error("change not audited")
	}
	// The previous password is in the history now.
	w = h.postAccount(PathAccountPassword, passwordForm(testNewPassword, testPassword, testPassword))
	wantStatus(t, w, http.StatusUnprocessableEntity, "not used recently")
	w = h.postAccount(PathAccountPassword, passwordForm(testNewPassword, testNewPassword2, testNewPassword2))
	wantStatus(t, w, http.StatusOK, "Your password was changed.")
	if !h.passwordIs("john.q.doe", testNewPassword2) {
		t.Fatal("password not changed")
	}
	// Exactly eight characters changed is enough.
	const eightAway = "Copper^Fal~XYZWVUT"
	if n := credential.CharactersChanged(testNewPassword2, eightAway); n != 8 {
		t.Fatalf("test data: %d characters changed, want 8", n)
	}
	w = h.postAccount(PathAccountPassword, passwordForm(testNewPassword2, eightAway, eightAway))
	wantStatus(t, w, http.StatusOK, "Your password was changed.")
}

func TestAccountPasswordLock(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword, h.thisCard())
	wantStatus(t, h.postAccount(PathAccountPassword, passwordForm(testWrongPassword, testNewPassword, testNewPassword)),
		http.StatusUnprocessableEntity, "2 tries remaining")
	wantStatus(t, h.postAccount(PathAccountPassword, passwordForm(testWrongPassword, testNewPassword, testNewPassword)),
		http.StatusUnprocessableEntity, "1 try remaining")
	wantStatus(t, h.postAccount(PathAccountPassword, passwordForm(testWrongPassword, testNewPassword, testNewPassword)),
		http.StatusForbidden, "Account locked")
	wantStatus(t, h.postAccount(PathAccountPassword, passwordForm(testPassword, testNewPassword, testNewPassword)),
		http.StatusForbidden, "Account locked")
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Error("password changed while locked")
	}
}

func answersForm(current string) url.Values {
	return url.Values{"current": {current},
		"question-1": {"first-car"}, "answer-1": {testNewAnswer}, "confirm-1": {testNewAnswer},
		"question-2": {"first-pet"}, "answer-2": {testAnswer1}, "confirm-2": {testAnswer1},
		"question-3": {"childhood-street"}, "answer-3": {testAnswer2}, "confirm-3": {testAnswer2}}
}

func TestAccountAnswers(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword, h.thisCard())
	wantStatus(t, h.getAccount(PathAccountAnswers), http.StatusOK, `for="current"`, `for="question-1"`, `for="answer-3"`, `for="confirm-2"`)

	form := answersForm(testPassword)
	form.Set("question-2", "first-car")
	form.Set("confirm-3", "something else")
	w := h.postAccount(PathAccountAnswers, form)
	wantStatus(t, w, http.StatusUnprocessableEntity, `href="#question-2"`, `href="#confirm-3"`, `<option value="first-car" selected>`)

	w = h.postAccount(PathAccountAnswers, answersForm(testWrongPassword))
	wantStatus(t, w, http.StatusUnprocessableEntity, "The current password is not correct.", "2 tries remaining")

	w = h.postAccount(PathAccountAnswers, answersForm(testPassword))
	wantStatus(t, w, http.StatusOK, "Your security questions and answers were changed.")
	creds, err := h.db.Credentials(context.Background(), h.account("john.q.doe").ID)
	if err != nil {
		t.Fatal(err)
	}
	if creds.Answers[0].QuestionID != "first-car" || creds.Answers[2].QuestionID != "childhood-street" {
		t.Fatalf("answers: %+v", creds.Answers)
	}
	if ok, err := h.deps.Hasher.VerifyAnswer(context.Background(), "Blue  HERON", creds.Answers[0].Hash); err != nil || !ok {
		t.Errorf("answer 1 does not verify: %v %v", ok, err)
	}
	if a := h.audited("answers.changed", "success"); a == nil || a.Fields["username"] != "john.q.doe" {
		t.Errorf("audits: %+v", h.audits)
	}
	// The form shows the questions now chosen, never the answers.
	wantStatus(t, h.getAccount(PathAccountAnswers), http.StatusOK, `<option value="first-car" selected>`)
}

func TestAccountMethodsAndCSRF(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword, h.thisCard(), storeCard("cd"))
	for _, p := range []string{PathAccount, PathAccountClearCard, PathAccountPassword, PathAccountAnswers} {
		for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
			if w := h.doAccount(m, p, nil, fakeCSRF{}); w.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d", m, p, w.Code)
			}
		}
	}
	if w := h.postAccount(PathAccount, url.Values{}); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST account: %d", w.Code)
	}
	if w := h.getAccount(PathAccount + "/nope"); w.Code != http.StatusNotFound {
		t.Errorf("unknown page: %d", w.Code)
	}
	if w := h.getAccount(PathAccountClearCard); w.Code != http.StatusSeeOther {
		t.Errorf("GET clear: %d", w.Code)
	}
	forms := map[string]url.Values{
		PathAccountClearCard: {"sha256": {fingerprintOf("cd")}},
		PathAccountPassword:  passwordForm(testPassword, testNewPassword, testNewPassword),
		PathAccountAnswers:   answersForm(testPassword),
	}
	for p, form := range forms {
		wantStatus(t, h.doAccount(http.MethodPost, p, form, fakeCSRF{}), http.StatusForbidden)
		form.Set("csrf", "forged")
		wantStatus(t, h.doAccount(http.MethodPost, p, form, fakeCSRF{}), http.StatusForbidden)
	}
	if h.cardOwner(fingerprintOf("cd")) != "john.q.doe" || !h.passwordIs("john.q.doe", testPassword) || h.changes.Load() != 0 {
		t.Error("a forged form changed the account")
	}
}

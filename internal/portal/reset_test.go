package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// addResetAccount creates an account with a password and the three answers
// of questionsForm.
func (s *storeHarness) addResetAccount(username, edipi string) *store.Account {
	s.t.Helper()
	a := s.addAccount(username, edipi, testPassword)
	ctx := context.Background()
	var answers [credential.QuestionsRequired]store.Answer
	for i, qa := range [][2]string{{"first-pet", testAnswer1}, {"childhood-street", testAnswer2}, {"first-car", testAnswer3}} {
		h, err := s.deps.Hasher.HashAnswer(ctx, qa[1])
		if err != nil {
			s.t.Fatal(err)
		}
		answers[i] = store.Answer{QuestionID: qa[0], Hash: h}
	}
	if err := s.db.SetAnswers(ctx, a.ID, answers); err != nil {
		s.t.Fatal(err)
	}
	return a
}

func (s *storeHarness) failures(a *store.Account) store.LoginState {
	s.t.Helper()
	st, err := s.db.LoginState(context.Background(), a.ID, s.deps.Now(), loginWindow, loginMaxFailures)
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

// resetStart posts step 1 and returns the questions page's state.
func (s *storeHarness) resetStart(username string, contains ...string) string {
	s.t.Helper()
	w := s.post(PathReset, url.Values{"username": {username}})
	wantStatus(s.t, w, http.StatusOK, append([]string{"2 of 2", `name="step" value="answers"`, `for="answer-1"`, `for="answer-2"`,
		`for="answer-3"`, `for="password"`, `for="confirm"`, `aria-describedby="password-rules"`}, contains...)...)
	return stateOf(s.t, w)
}

func resetForm(state, a1, a2, a3, password, confirm string) url.Values {
	return url.Values{"step": {"answers"}, "state": {state}, "answer-1": {a1}, "answer-2": {a2}, "answer-3": {a3},
		"password": {password}, "confirm": {confirm}}
}

func rightAnswers(state, password string) url.Values {
	// Case and spacing do not matter.
	return resetForm(state, "Fluffy  Kitten", testAnswer2, testAnswer3, password, password)
}

func TestResetSuccess(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	a := h.addResetAccount("john.q.doe", "1234567890")
	wantStatus(t, h.get(PathReset), http.StatusOK, "1 of 2", `for="username"`, `action="/.cacgate/enroll/reset"`)
	wantStatus(t, h.get(PathLink), http.StatusOK, `href="/.cacgate/enroll/reset"`, "Forgot your password?")
	state := h.resetStart("john.q.doe", "john.q.doe", "What was the name of your first pet?",
		"What was the name of the street you lived on as a child?", "What was the make and model of your first car?")
	// A wrong answer first, to see the count cleared.
	wantStatus(t, h.post(PathReset, resetForm(state, testAnswer1, testAnswer2, "wrong car", testNewPassword, testNewPassword)),
		http.StatusUnprocessableEntity)
	w := h.post(PathReset, rightAnswers(state, testNewPassword))
	wantStatus(t, w, http.StatusOK, "Your password has been changed", `href="/.cacgate/enroll/link"`, `href="/"`)
	if h.passwordIs("john.q.doe", testPassword) || !h.passwordIs("john.q.doe", testNewPassword) {
		t.Error("password not changed")
	}
	if st := h.failures(a); st.Failures != 0 {
		t.Errorf("failures not reset: %+v", st)
	}
	if au := h.audited("password.reset", "success"); au == nil || au.Fields["username"] != "john.q.doe" || au.Fields["edipi"] != "1234567890" {
		t.Errorf("reset not audited: %+v", h.audits)
	}
	// The old password is history now.
	state = h.resetStart("john.q.doe")
	wantStatus(t, h.post(PathReset, rightAnswers(state, testPassword)), http.StatusUnprocessableEntity, "not used recently")
}

func TestResetWrongAnswerLocks(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{LockoutPeriod: time.Hour})
	a := h.addResetAccount("john.q.doe", "1234567890")
	state := h.resetStart("john.q.doe")
	wrong := resetForm(state, testAnswer1, "elm street", testAnswer3, testNewPassword, testNewPassword)
	w := h.post(PathReset, wrong)
	wantStatus(t, w, http.StatusUnprocessableEntity, "One or more answers are not correct.", "2 tries remaining", "There is a problem")
	if strings.Contains(w.Body.String(), "question 2") || strings.Contains(w.Body.String(), `href="#answer-2"`) {
		t.Error("the page tells which answer was wrong")
	}
	if au := h.audited("password.reset", "failure"); au == nil || au.Fields["reason"] != "bad_answers" || au.Fields["username"] != "john.q.doe" {
		t.Errorf("failure audit: %+v", h.audits)
	}
	wantStatus(t, h.post(PathReset, wrong), http.StatusUnprocessableEntity, "1 try remaining")
	wantStatus(t, h.post(PathReset, wrong), http.StatusForbidden, "Account locked", "locked until", `href="/.cacgate/enroll/reset"`)
	// Locked: the right answers are refused too, and the lock is shared
	// with sign-in.
	wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusForbidden, "Account locked")
	wantStatus(t, h.post(PathLink, linkForm("john.q.doe", testPassword)), http.StatusForbidden, "Account locked")
	if st := h.failures(a); !st.Locked() || st.LockedUntil.Sub(h.deps.Now()) < 59*time.Minute {
		t.Errorf("login state %+v", st)
	}
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Error("password changed while locked")
	}
	// After the lock, the right answers work.
	h.advance(time.Hour + time.Minute)
	state = h.resetStart("john.q.doe") // the old form expired meanwhile
	wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusOK, "Your password has been changed")
}

func TestResetPasswordRules(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	a := h.addResetAccount("john.q.doe", "1234567890")
	state := h.resetStart("john.q.doe")
	for _, c := range []struct {
		form url.Values
		want []string
	}{
		{rightAnswers(state, "short"), []string{`href="#password"`, "Choose a password that follows the rules"}},
		{rightAnswers(state, "Doe!Quartz@Mango12"), []string{"Choose a password that follows the rules"}},
		{rightAnswers(state, testPassword), []string{`href="#password"`, "not used recently"}},
		{resetForm(state, testAnswer1, testAnswer2, testAnswer3, testNewPassword, testNewPassword2), []string{`href="#confirm"`, "do not match"}},
		{resetForm(state, "", testAnswer2, testAnswer3, testNewPassword, testNewPassword), []string{`href="#answer-1"`, `aria-describedby="answer-1-error"`}},
		{resetForm(state, testAnswer1, testAnswer2, testAnswer3, "", ""), []string{`href="#password"`, "Enter a new password."}},
	} {
		w := h.post(PathReset, c.form)
		wantStatus(t, w, http.StatusUnprocessableEntity, c.want...)
		stateOf(t, w) // the form goes on
	}
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Error("password changed")
	}
	// None of these counted as a wrong answer.
	if st := h.failures(a); st.Failures != 0 {
		t.Errorf("failures counted: %+v", st)
	}
	if au := h.audited("password.reset", "failure"); au == nil || au.Fields["reason"] != "policy" {
		t.Errorf("audits: %+v", h.audits)
	}
}

// TestResetNeutral: usernames that cannot be reset answer like one that
// can, and never succeed.
func TestResetNeutral(t *testing.T) {
	for _, c := range []struct {
		name, username, reason string
		setup                  func(h *storeHarness)
	}{
		{"unknown", "nobody.here", decoyUnknown, func(*storeHarness) {}},
		{"no password", "no.password", decoyNoPassword, func(h *storeHarness) { h.addAccount("no.password", "1234567890", "") }},
		{"no answers", "no.answers", decoyNoAnswers, func(h *storeHarness) { h.addAccount("no.answers", "1234567890", testPassword) }},
		{"disabled", "john.q.doe", decoyDisabled, func(h *storeHarness) {
			h.addResetAccount("john.q.doe", "1234567890")
			if _, err := h.db.SetStatus(context.Background(), "john.q.doe", store.StatusDisabled); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"another person's", "jane.doe", decoyEDIPIMismatch, func(h *storeHarness) { h.addResetAccount("jane.doe", "9999999999") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newStoreHarness(t, selfservice.Config{})
			c.setup(h)
			// The questions shown for a username that cannot be reset
			// are the same each time, and not the account's.
			shown := h.questionsShown(c.username)
			if shown != h.questionsShown(c.username) || (c.username == "john.q.doe" && shown == [3]string{"first-pet", "childhood-street", "first-car"}) {
				t.Errorf("questions shown: %v", shown)
			}
			state := h.resetStart(c.username)
			if c.reason == decoyEDIPIMismatch {
				if au := h.audited("password.reset", "failure"); au == nil || au.Fields["reason"] != decoyEDIPIMismatch || au.Fields["username"] != "jane.doe" {
					t.Errorf("step 1 audit: %+v", h.audits)
				}
			}
			wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusUnprocessableEntity,
				"One or more answers are not correct.", "2 tries remaining")
			au := h.audited("password.reset", "failure")
			if au == nil || au.Fields["reason"] != c.reason {
				t.Errorf("audit: %+v", h.audits)
			}
			if c.reason == decoyUnknown && au != nil && au.Fields["username"] != "" {
				t.Error("typed unknown username audited")
			}
			wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusUnprocessableEntity, "1 try remaining")
			wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusForbidden, "Account locked")
			wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusForbidden, "Account locked")
			if h.audited("password.reset", "success") != nil {
				t.Error("reset succeeded")
			}
			if c.username != "nobody.here" && c.reason != decoyNoPassword && !h.passwordIs(c.username, testPassword) {
				t.Error("password changed")
			}
		})
	}
}

// TestResetRefusedBetweenSteps: an account disabled after step 1 is refused
// clearly at step 2, but only to right answers: wrong ones are told they
// are wrong, as for any account.
func TestResetRefusedBetweenSteps(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addResetAccount("john.q.doe", "1234567890")
	state := h.resetStart("john.q.doe")
	if _, err := h.db.SetStatus(context.Background(), "john.q.doe", store.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	w := h.post(PathReset, resetForm(state, "wrong", "wrong", "wrong", testNewPassword, testNewPassword))
	wantStatus(t, w, http.StatusUnprocessableEntity, "One or more answers are not correct.", "2 tries remaining")
	if strings.Contains(w.Body.String(), "disabled") {
		t.Error("wrong answers were told the account is disabled")
	}
	wantStatus(t, h.post(PathReset, rightAnswers(stateOf(t, w), testNewPassword)), http.StatusForbidden, "is disabled")
	if got := h.failureReasons("password.reset"); strings.Join(got, ",") != "bad_answers,"+decoyDisabled {
		t.Errorf("audited reasons %v", got)
	}
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Error("password changed")
	}
}

func TestResetStateChecks(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addResetAccount("john.q.doe", "1234567890")
	state := h.resetStart("john.q.doe")
	restart := func(w interface{ Result() *http.Response }) {
		t.Helper()
		res := w.Result()
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != PathReset+"?restart=1" {
			t.Errorf("not restarted: %d %q", res.StatusCode, res.Header.Get("Location"))
		}
	}
	tampered := []byte(state)
	tampered[len(tampered)/2] ^= 1
	restart(h.post(PathReset, rightAnswers(string(tampered), testNewPassword)))
	restart(h.post(PathReset, rightAnswers("", testNewPassword)))
	// An enrollment state is not a reset state.
	restart(h.post(PathReset, rightAnswers(mustSeal(t, h.sealer, map[string]any{"card": h.card.FingerprintHex, "step": 1}), testNewPassword)))
	// Another card (same person, new CAC) cannot use this card's state.
	other := testCard("1234567890", fingerprintOf("ef"))
	form := rightAnswers(state, testNewPassword)
	form.Set("csrf", "csrf-token")
	restart(h.do(http.MethodPost, PathReset, form, other, fakeCSRF{}))
	// Expired.
	h.advance(30*time.Minute + time.Second)
	restart(h.post(PathReset, rightAnswers(state, testNewPassword)))
	wantStatus(t, h.get(PathReset+"?restart=1"), http.StatusOK, "expired")
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Error("password changed")
	}
}

func TestResetMethodsAndCSRF(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	a := h.addResetAccount("john.q.doe", "1234567890")
	state := h.resetStart("john.q.doe")
	for _, form := range []url.Values{{"username": {"john.q.doe"}}, resetForm(state, "x", "y", "z", testNewPassword, testNewPassword),
		rightAnswers(state, testNewPassword)} {
		wantStatus(t, h.do(http.MethodPost, PathReset, form, h.card, fakeCSRF{}), http.StatusForbidden, "Form expired")
		form.Set("csrf", "forged")
		wantStatus(t, h.do(http.MethodPost, PathReset, form, h.card, fakeCSRF{}), http.StatusForbidden, "Form expired")
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if w := h.do(m, PathReset, nil, h.card, fakeCSRF{}); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d", m, w.Code)
		}
	}
	big := rightAnswers(state, testNewPassword)
	big.Set("csrf", "csrf-token")
	big.Set("pad", strings.Repeat("x", maxBody))
	if w := h.do(http.MethodPost, PathReset, big, h.card, fakeCSRF{}); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: %d", w.Code)
	}
	if st := h.failures(a); st.Failures != 0 || !h.passwordIs("john.q.doe", testPassword) {
		t.Errorf("a forged form counted or changed something: %+v", st)
	}
	wantStatus(t, h.post(PathReset, url.Values{"username": {""}}), http.StatusUnprocessableEntity, `href="#username"`, `aria-describedby="username-error"`)
}

func TestResetCardLimiter(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	// Wrong answers spread over usernames: the card runs out first.
	for i := range maxFailures {
		state := h.resetStart("nobody" + string(rune('a'+i)))
		wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusUnprocessableEntity)
	}
	h.addResetAccount("john.q.doe", "1234567890")
	state := h.resetStart("john.q.doe")
	wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusTooManyRequests)
	h.advance(failureWindow)
	state = h.resetStart("john.q.doe")
	wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusOK)
}

// The audit reasons of a reset that cannot succeed.
const (
	decoyUnknown       = "unknown_username"
	decoyNoPassword    = "no_password"
	decoyNoAnswers     = "no_answers"
	decoyDisabled      = "disabled"
	decoyEDIPIMismatch = "edipi_mismatch"
)

package portal

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/selfservice"
)

// wantRestart checks that w sends the person back to the start because the
// sealed state was refused.
func wantRestart(t *testing.T, what string, w *httptest.ResponseRecorder, path string) {
	t.Helper()
	res := w.Result()
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), path+"?restart=1") {
		t.Errorf("%s: %d %q, want a restart at %s", what, res.StatusCode, res.Header.Get("Location"), path)
	}
}

// Re-posting an invalid profile form re-renders it with a new sealed state,
// which must keep the identity check's deadline: the state TTL (30 minutes)
// counts from the identity check, not from the last post.
func TestEnrollProfileRepostDoesNotExtendStateDeadline(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	state := stateOf(t, h.post(PathNew, identityForm()))
	h.advance(29 * time.Minute)
	bad := profileForm(state)
	bad.Set("email", "not-an-email")
	w := h.post(PathProfile, bad)
	wantStatus(t, w, http.StatusUnprocessableEntity)
	state = stateOf(t, w)
	h.advance(2 * time.Minute) // 31 minutes after the identity check
	wantRestart(t, "profile posted 31 minutes after the identity check", h.post(PathProfile, profileForm(state)), PathNew)
	if h.store.count() != 0 {
		t.Error("account created")
	}
}

// The same on the questions form, whose state comes from the profile step.
func TestEnrollQuestionsRepostDoesNotExtendStateDeadline(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	state := stateOf(t, h.post(PathNew, identityForm()))
	h.advance(20 * time.Minute)
	w := h.post(PathProfile, profileForm(state))
	wantStatus(t, w, http.StatusOK, "2 of 2")
	state = stateOf(t, w)
	h.advance(9 * time.Minute)
	bad := questionsForm(state)
	bad.Set("confirm-1", "something else")
	w = h.post(PathQuestions, bad)
	wantStatus(t, w, http.StatusUnprocessableEntity)
	state = stateOf(t, w)
	h.advance(2 * time.Minute) // 31 minutes after the identity check
	wantRestart(t, "questions posted 31 minutes after the identity check", h.post(PathQuestions, questionsForm(state)), PathNew)
	if h.store.count() != 0 {
		t.Error("account created from an expired identity check")
	}

	// Within the deadline, the re-rendered state still works.
	h2 := newHarness(t, selfservice.Config{})
	state = stateOf(t, h2.post(PathNew, identityForm()))
	h2.advance(29 * time.Minute)
	w = h2.post(PathProfile, profileForm(state))
	wantStatus(t, w, http.StatusOK, "2 of 2")
	wantStatus(t, h2.post(PathQuestions, questionsForm(stateOf(t, w))), http.StatusOK)
	if h2.store.count() != 1 {
		t.Error("no account created within the deadline")
	}
}

// The password reset's answers form keeps step 1's deadline too.
func TestResetAnswersRepostDoesNotExtendStateDeadline(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addResetAccount("john.q.doe", "1234567890")
	state := h.resetStart("john.q.doe")
	h.advance(29 * time.Minute)
	w := h.post(PathReset, resetForm(state, testAnswer1, testAnswer2, testAnswer3, testNewPassword, "mismatch"))
	wantStatus(t, w, http.StatusUnprocessableEntity)
	state = stateOf(t, w)
	h.advance(2 * time.Minute)
	wantRestart(t, "answers posted 31 minutes after step 1", h.post(PathReset, rightAnswers(state, testNewPassword)), PathReset)
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Error("password reset on an expired state")
	}
}

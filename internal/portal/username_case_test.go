package portal

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// Usernames are stored lowercase. "Register this card" looks up what was
// typed as the sign-in page does, so a capitalised or padded username is
// the same account, and a right password is not counted as wrong.
func TestLinkAcceptsCapitalisedUsername(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	a := h.addAccount("john.q.doe", "1234567890", testPassword)
	wantStatus(t, h.post(PathLink, linkForm("  John.Q.DOE ", testPassword)), http.StatusOK,
		"This card is now registered to <strong>john.q.doe</strong>")
	if got := h.cardOwner(h.card.FingerprintHex); got != "john.q.doe" {
		t.Errorf("card owner %q", got)
	}
	if st := h.failures(a); st.Failures != 0 {
		t.Errorf("a right password was counted as a failure: %+v", st)
	}
}

// The password reset finds the account, not the decoy, for a capitalised
// username.
func TestResetAcceptsCapitalisedUsername(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addResetAccount("john.q.doe", "1234567890")
	state := h.resetStart("John.Q.Doe", "What was the name of your first pet?")
	wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusOK, "Your password has been changed")
	if !h.passwordIs("john.q.doe", testNewPassword) {
		t.Error("password not changed")
	}
}

// failingReset is an account manager whose ResetLoginFailures fails.
type failingReset struct{ selfservice.Accounts }

func (failingReset) ResetLoginFailures(context.Context, int64) error {
	return errors.New("database went away")
}

// Once the new password is stored, a failure to clear the sign-in failures
// must neither turn the page into an error nor leave the change unaudited.
func TestResetSucceedsAndIsAuditedWhenClearingFailuresFails(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addResetAccount("john.q.doe", "1234567890")
	state := h.resetStart("john.q.doe")
	h.deps.Accounts = failingReset{h.deps.Accounts}
	h.rebuild()
	wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusOK, "Your password has been changed")
	if !h.passwordIs("john.q.doe", testNewPassword) {
		t.Error("password not changed")
	}
	if au := h.audited("password.reset", "success"); au == nil || au.Fields["username"] != "john.q.doe" {
		t.Errorf("reset not audited: %+v", h.audits)
	}
}

// An account waiting for approval cannot sign in with its password: no
// session is started (every page would refuse it), the page says why, and
// the refusal is audited with its reason. A wrong password still tells
// nothing about the account.
func TestPasswordSignInRefusesPendingAccount(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword)
	if _, err := h.db.SetStatus(context.Background(), "john.q.doe", store.StatusPending); err != nil {
		t.Fatal(err)
	}
	var signedIn atomic.Int32
	w := signIn(t, h.flow, "john.q.doe", testWrongPassword, &signedIn)
	wantStatus(t, w, http.StatusUnauthorized, "The username or password is not correct.")
	w = signIn(t, h.flow, "john.q.doe", testPassword, &signedIn)
	wantStatus(t, w, http.StatusForbidden, "waiting for approval")
	if signedIn.Load() != 0 {
		t.Error("a pending account signed in")
	}
	if !auditedWithReason(h, "signin.password", "pending") {
		t.Errorf("refusal not audited: %+v", h.audits)
	}
	if au := h.audited("signin.password", "success"); au != nil {
		t.Errorf("pending sign-in audited as a success: %+v", au)
	}
}

package portal

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// dodAges are the STIG's password lifetimes, as the gateway sets them by default.
var dodAges = selfservice.Config{PasswordMinAge: 24 * time.Hour, PasswordMaxAge: 60 * 24 * time.Hour}

func TestPasswordMinimumAge(t *testing.T) {
	h := newStoreHarness(t, dodAges)
	h.addAccount("john.q.doe", "1234567890", testPassword, h.thisCard())
	wantStatus(t, h.getAccount(PathAccount), http.StatusOK, "<dt>Password</dt><dd>changed ", "; expires ")

	// Changed a moment ago (when the account was made): not again for a day.
	w := h.postAccount(PathAccountPassword, passwordForm(testPassword, testNewPassword, testNewPassword))
	wantStatus(t, w, http.StatusUnprocessableEntity, `href="#password"`, "changed less than 24 hours ago", "You can change it again after ")
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Fatal("password changed within the minimum age")
	}
	if a := h.audited("password.changed", "failure"); a == nil || a.Fields["reason"] != "too_soon" {
		t.Errorf("audits: %+v", h.audits)
	}

	h.advance(24*time.Hour + time.Minute)
	w = h.postAccount(PathAccountPassword, passwordForm(testPassword, testNewPassword, testNewPassword))
	wantStatus(t, w, http.StatusOK, "Your password was changed.")
	if !h.passwordIs("john.q.doe", testNewPassword) {
		t.Fatal("password not changed after the minimum age")
	}
}

func TestPasswordMaximumAge(t *testing.T) {
	h := newStoreHarness(t, dodAges)
	h.addAccount("john.q.doe", h.card.EDIPI, testPassword)
	h.advance(60*24*time.Hour + time.Minute)

	// A wrong password learns nothing about the expiry.
	w := h.post(PathLink, linkForm("john.q.doe", testWrongPassword))
	wantStatus(t, w, http.StatusUnprocessableEntity, "The username or password is not correct.")
	if strings.Contains(w.Body.String(), "expired") {
		t.Fatalf("a wrong password was told of the expiry:\n%s", w.Body)
	}
	// The right one no longer registers a card.
	w = h.post(PathLink, linkForm("john.q.doe", testPassword))
	wantStatus(t, w, http.StatusForbidden, "Password expired", "Your password expired on ", "Forgot your password?", "The card was not registered.")
	if got := h.cardOwner(h.card.FingerprintHex); got != "" {
		t.Fatalf("card registered to %q with an expired password", got)
	}
	if !auditedWithReason(h, "card.linked", "password_expired") {
		t.Errorf("audits: %+v", h.audits)
	}

	// Nor signs in.
	signedIn := false
	login := func(password string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, PathLogin, strings.NewReader(url.Values{
			"csrf": {"csrf-token"}, "username": {"john.q.doe"}, "password": {password}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Accept", "text/html")
		w := httptest.NewRecorder()
		if err := h.flow.ServeLogin(w, r, Login{CSRF: fakeCSRF{}, Next: "/", SignIn: func(*store.Account, string) error { signedIn = true; return nil }}); err != nil {
			t.Fatal(err)
		}
		return w
	}
	w = login(testPassword)
	wantStatus(t, w, http.StatusForbidden, "Your password expired on ", "change it on your account page")
	if signedIn {
		t.Fatal("signed in with an expired password")
	}
	if !auditedWithReason(h, "signin.password", "password_expired") {
		t.Errorf("audits: %+v", h.audits)
	}

	// The holder changes it on the account page with the card (an
	// expired password is past its minimum age, and still proves who is
	// changing it); then it works again.
	if err := h.db.LinkCard(t.Context(), h.account("john.q.doe").ID, h.thisCard()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, h.getAccount(PathAccount), http.StatusOK, "; expired: change it")
	w = h.postAccount(PathAccountPassword, passwordForm(testPassword, testNewPassword, testNewPassword))
	wantStatus(t, w, http.StatusOK, "Your password was changed.")
	// The store stamps the change with the real clock; bring the flow's
	// clock back to it.
	h.advance(-(60*24*time.Hour + time.Minute))
	w = login(testNewPassword)
	if !signedIn {
		t.Fatalf("the new password does not sign in: HTTP %d\n%s", w.Code, w.Body)
	}
}

func TestPasswordAgesOff(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword, h.thisCard())
	h.advance(400 * 24 * time.Hour)
	wantStatus(t, h.getAccount(PathAccount), http.StatusOK, "<dt>Password</dt><dd>changed ")
	if body := h.getAccount(PathAccount).Body.String(); strings.Contains(body, "expire") {
		t.Fatalf("account page speaks of expiry with no maximum age:\n%s", body)
	}
	w := h.postAccount(PathAccountPassword, passwordForm(testPassword, testNewPassword, testNewPassword))
	wantStatus(t, w, http.StatusOK, "Your password was changed.")
}

// auditedWithReason reports whether a failure of event was audited with reason.
func auditedWithReason(h *storeHarness, event, reason string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.audits {
		if a.Event == event && a.Outcome == "failure" && a.Fields["reason"] == reason {
			return true
		}
	}
	return false
}

package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// The pages of enrollment's hashing steps against replays and a busy
// hasher.

// TestFlowReplayedState: a profile form sent a second time is answered
// "already sent" (409, start again), audited, and hashes nothing.
func TestFlowReplayedState(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	w := h.post(PathNew, identityForm())
	state := stateOf(t, w)
	wantStatus(t, h.post(PathProfile, profileForm(state)), http.StatusOK, "2 of 2")
	wantStatus(t, h.post(PathProfile, profileForm(state)), http.StatusConflict, "This form was already sent", `href="`+PathNew+`"`)
	if a := h.audited("enroll.profile", "failure"); a == nil || a.Fields["reason"] != "state_replayed" {
		t.Errorf("replay not audited: %+v", h.audits)
	}
}

// TestFlowRegisteredCardGetsNoState: the identity step of a card that has
// an account answers "you already have an account" with a way to the
// account page, and no profile form (no state).
func TestFlowRegisteredCardGetsNoState(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	if _, err := h.store.Enroll(context.Background(), &store.Enrollment{
		Account: store.Account{EDIPI: h.card.EDIPI}, UsernameBase: "john.q.doe",
		Card: store.Card{Fingerprint: h.card.FingerprintHex}}); err != nil {
		t.Fatal(err)
	}
	w := h.post(PathNew, identityForm())
	wantStatus(t, w, http.StatusConflict, "You already have an account", `href="/.cacgate/account"`)
	if strings.Contains(w.Body.String(), `name="state"`) {
		t.Error("a registered card was given an enrollment state")
	}
	if a := h.audited("enroll.identity", "failure"); a == nil || a.Fields["reason"] != "registered" {
		t.Errorf("not audited: %+v", h.audits)
	}
}

// TestFlowBusyHasher: a profile post whose hash finds no slot in time is
// answered 503 with Retry-After (a page for people, JSON for programs),
// audited as hash.busy, and leaves the state usable: the same form sent
// again once the hasher has room goes through.
func TestFlowBusyHasher(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	hasher := credential.NewQueuedHasher(credential.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}, 1,
		credential.Queue{MaxWait: time.Millisecond})
	h.deps.Hasher = hasher
	h.rebuild()
	state := stateOf(t, h.post(PathNew, identityForm()))
	release, err := hasher.Reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	w := h.post(PathProfile, profileForm(state))
	wantStatus(t, w, http.StatusServiceUnavailable, "Try again in a moment")
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1 (the wait bound, rounded up)", got)
	}
	if a := h.audited("hash.busy", "unavailable"); a == nil || a.Fields["reason"] != credential.BusyWaitTimeout || a.Fields["priority"] != "enrollment" {
		t.Errorf("not audited: %+v", h.audits)
	}

	form := profileForm(state)
	form.Set("csrf", "csrf-token")
	r := httptest.NewRequest(http.MethodPost, PathProfile, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "application/json")
	jw := httptest.NewRecorder()
	if err := h.flow.Serve(jw, r, h.card, fakeCSRF{}); err != nil {
		t.Fatal(err)
	}
	if jw.Code != http.StatusServiceUnavailable || !strings.Contains(jw.Body.String(), `"error":"busy"`) || jw.Header().Get("Retry-After") == "" {
		t.Errorf("API client: %d %s %q", jw.Code, jw.Body, jw.Header().Get("Retry-After"))
	}

	release()
	wantStatus(t, h.post(PathProfile, profileForm(state)), http.StatusOK, "2 of 2")
}

package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// More secrets the link and account tests type.
const (
	testWrongPassword = "Wrong!Password@Guess"
	testNewPassword   = "Violet$Harbor%Lamp"
	testNewPassword2  = "Copper^Falcon*Dune"
	testNewAnswer     = "blue heron"
)

var accountSecrets = []string{testPassword, testWrongPassword, testNewPassword, testNewPassword2, testNewAnswer}

// storeHarness is a harness whose flow works with a real SQLite store.
type storeHarness struct {
	*harness
	db      *store.SQLStore
	path    string // db's file, for a second handle as another node's
	changes atomic.Int32
}

func newStoreHarness(t *testing.T, cfg selfservice.Config) *storeHarness {
	t.Helper()
	h := newHarness(t, cfg)
	db, path := h.db, h.dbPath
	sh := &storeHarness{harness: h, db: db, path: path}
	if cfg.Contact == "" {
		cfg.Contact = "Service desk, 555-0100"
	}
	h.cfg = cfg
	h.deps.Accounts = db
	h.deps.OnChange = func() { sh.changes.Add(1) }
	h.rebuild()
	t.Cleanup(sh.checkNoAccountSecrets)
	return sh
}

func (s *storeHarness) checkNoAccountSecrets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, body := range s.bodies {
		for _, x := range accountSecrets {
			if strings.Contains(body, x) {
				s.t.Errorf("page %d shows the secret %q", i, x)
			}
		}
	}
	for _, a := range s.audits {
		for k, v := range a.Fields {
			for _, x := range accountSecrets {
				if strings.Contains(v, x) || strings.Contains(k, x) {
					s.t.Errorf("audit %s/%s field %s carries a secret", a.Event, a.Outcome, k)
				}
			}
		}
	}
}

func storeCard(seed string) store.Card {
	c := testCard("1234567890", fingerprintOf(seed))
	c.Subject = "CN=" + seed
	return store.Card{Fingerprint: c.FingerprintHex, Subject: c.Subject, Issuer: c.Issuer, Serial: c.Serial, NotAfter: c.NotAfter}
}

func fingerprintOf(seed string) string {
	return strings.Repeat(seed[:2], 32)
}

// addAccount creates an account with the given cards and, unless password
// is "", that password.
func (s *storeHarness) addAccount(username, edipi, password string, cards ...store.Card) *store.Account {
	s.t.Helper()
	ctx := context.Background()
	a := &store.Account{Username: username, EDIPI: edipi, GivenName: "JOHN", MiddleName: "QUINCY", FamilyName: "DOE",
		Email: "john.doe@example.com", Organization: "USA", Location: "Europe", Status: store.StatusActive,
		Categories: []string{"Active Army"}, Cards: cards}
	if err := s.db.CreateAccount(ctx, a); err != nil {
		s.t.Fatal(err)
	}
	if password != "" {
		hash, err := s.deps.Hasher.Hash(ctx, password)
		if err != nil {
			s.t.Fatal(err)
		}
		if err := s.db.SetPassword(ctx, a.ID, hash, passwordHistory); err != nil {
			s.t.Fatal(err)
		}
	}
	return a
}

func (s *storeHarness) account(username string) *store.Account {
	s.t.Helper()
	a, err := s.db.AccountByUsername(context.Background(), username)
	if err != nil {
		s.t.Fatal(err)
	}
	return a
}

func (s *storeHarness) cardOwner(fp string) string {
	s.t.Helper()
	a, err := s.db.AccountByFingerprint(context.Background(), fp)
	if errors.Is(err, store.ErrNotFound) {
		return ""
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return a.Username
}

func linkForm(username, password string) url.Values {
	return url.Values{"username": {username}, "password": {password}}
}

func TestLinkSuccess(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword, storeCard("cd"))
	wantStatus(t, h.get(PathLink), http.StatusOK, `for="username"`, `for="password"`, `autocomplete="username"`,
		`autocomplete="current-password"`, `action="/.cacgate/enroll/link"`)
	w := h.post(PathLink, linkForm("john.q.doe", testPassword))
	wantStatus(t, w, http.StatusOK, "This card is now registered to <strong>john.q.doe</strong>", `href="/"`)
	if got := h.cardOwner(h.card.FingerprintHex); got != "john.q.doe" {
		t.Errorf("card owner %q", got)
	}
	if h.changes.Load() != 1 {
		t.Errorf("OnChange called %d times", h.changes.Load())
	}
	if a := h.audited("card.linked", "success"); a == nil || a.Fields["via"] != "holder" || a.Fields["username"] != "john.q.doe" ||
		a.Fields["card"] != h.card.FingerprintHex {
		t.Errorf("link not audited: %+v", h.audits)
	}
	// Linking again: the card is taken now.
	wantStatus(t, h.post(PathLink, linkForm("john.q.doe", testPassword)), http.StatusConflict, "already registered to an account")
}

func TestLinkWrongPasswordLocks(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{LockoutPeriod: time.Hour})
	a := h.addAccount("john.q.doe", "1234567890", testPassword)
	w := h.post(PathLink, linkForm("john.q.doe", testWrongPassword))
	wantStatus(t, w, http.StatusUnprocessableEntity, "The username or password is not correct.", "2 tries remaining", `value="john.q.doe"`)
	w = h.post(PathLink, linkForm("john.q.doe", testWrongPassword))
	wantStatus(t, w, http.StatusUnprocessableEntity, "The username or password is not correct.", "1 try remaining")
	w = h.post(PathLink, linkForm("john.q.doe", testWrongPassword))
	wantStatus(t, w, http.StatusForbidden, "Account locked", "locked until", "password reset", "Service desk, 555-0100")
	// Locked: even the right password is refused, and the lock is shown.
	w = h.post(PathLink, linkForm("john.q.doe", testPassword))
	wantStatus(t, w, http.StatusForbidden, "Account locked")
	st, err := h.db.LoginState(context.Background(), a.ID, h.deps.Now(), loginWindow, loginMaxFailures)
	if err != nil || !st.Locked() || st.LockedUntil.Sub(h.deps.Now()) < 59*time.Minute {
		t.Errorf("login state %+v, %v", st, err)
	}
	if h.cardOwner(h.card.FingerprintHex) != "" || h.changes.Load() != 0 {
		t.Error("card linked to a locked account")
	}
	if h.audited("card.linked", "failure") == nil {
		t.Error("failures not audited")
	}
}

func TestLinkSuccessResetsFailures(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	a := h.addAccount("john.q.doe", "1234567890", testPassword)
	h.post(PathLink, linkForm("john.q.doe", testWrongPassword))
	wantStatus(t, h.post(PathLink, linkForm("john.q.doe", testPassword)), http.StatusOK)
	st, err := h.db.LoginState(context.Background(), a.ID, h.deps.Now(), loginWindow, loginMaxFailures)
	if err != nil || st.Failures != 0 {
		t.Errorf("failures not reset: %+v, %v", st, err)
	}
}

func TestLinkUnknownUsername(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword)
	h.addAccount("no.password", "1234567891", "")
	for _, user := range []string{"nobody.here", "no.password"} {
		w := h.post(PathLink, linkForm(user, testPassword))
		wantStatus(t, w, http.StatusUnprocessableEntity, "The username or password is not correct.")
	}
	if a := h.audited("card.linked", "failure"); a == nil || a.Fields["reason"] != "unknown_username" || a.Fields["username"] != "" {
		t.Errorf("unknown username audit: %+v", h.audits)
	}
	if h.cardOwner(h.card.FingerprintHex) != "" {
		t.Error("card linked")
	}
	// Field errors do not count.
	w := h.post(PathLink, linkForm("", ""))
	wantStatus(t, w, http.StatusUnprocessableEntity, `href="#username"`, `href="#password"`, `aria-describedby="username-error"`)
}

func TestLinkRefusals(t *testing.T) {
	t.Run("edipi mismatch", func(t *testing.T) {
		h := newStoreHarness(t, selfservice.Config{})
		h.addAccount("jane.doe", "9999999999", testPassword)
		wantStatus(t, h.post(PathLink, linkForm("jane.doe", testPassword)), http.StatusForbidden,
			"This card belongs to a different DoD ID than the account")
		if a := h.audited("card.linked", "failure"); a == nil || a.Fields["reason"] != "edipi_mismatch" {
			t.Errorf("audits: %+v", h.audits)
		}
		if h.cardOwner(h.card.FingerprintHex) != "" || h.changes.Load() != 0 {
			t.Error("card linked")
		}
	})
	t.Run("max cards", func(t *testing.T) {
		h := newStoreHarness(t, selfservice.Config{MaxCards: 2})
		h.addAccount("john.q.doe", "1234567890", testPassword, storeCard("c1"), storeCard("c2"))
		wantStatus(t, h.post(PathLink, linkForm("john.q.doe", testPassword)), http.StatusConflict, "already has 2 cards registered")
		if h.cardOwner(h.card.FingerprintHex) != "" {
			t.Error("card linked")
		}
	})
	t.Run("card taken", func(t *testing.T) {
		h := newStoreHarness(t, selfservice.Config{})
		h.addAccount("john.q.doe", "1234567890", testPassword)
		taken := storeCard("ab") // h.card's fingerprint
		h.addAccount("other.person", "5555555555", "", taken)
		wantStatus(t, h.post(PathLink, linkForm("john.q.doe", testPassword)), http.StatusConflict, "This card is already registered to an account")
		if h.cardOwner(h.card.FingerprintHex) != "other.person" || h.changes.Load() != 0 {
			t.Error("card moved")
		}
	})
	t.Run("disabled", func(t *testing.T) {
		h := newStoreHarness(t, selfservice.Config{})
		h.addAccount("john.q.doe", "1234567890", testPassword)
		if _, err := h.db.SetStatus(context.Background(), "john.q.doe", store.StatusDisabled); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, h.post(PathLink, linkForm("john.q.doe", testPassword)), http.StatusForbidden, "is disabled")
		if h.cardOwner(h.card.FingerprintHex) != "" {
			t.Error("card linked")
		}
	})
}

func TestLinkCSRF(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	a := h.addAccount("john.q.doe", "1234567890", testPassword)
	form := linkForm("john.q.doe", testWrongPassword)
	wantStatus(t, h.do(http.MethodPost, PathLink, form, h.card, fakeCSRF{}), http.StatusForbidden)
	form.Set("csrf", "forged")
	wantStatus(t, h.do(http.MethodPost, PathLink, form, h.card, fakeCSRF{}), http.StatusForbidden)
	st, err := h.db.LoginState(context.Background(), a.ID, h.deps.Now(), loginWindow, loginMaxFailures)
	if err != nil || st.Failures != 0 {
		t.Errorf("failure counted without a CSRF token: %+v, %v", st, err)
	}
	if w := h.do(http.MethodPut, PathLink, nil, h.card, fakeCSRF{}); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", w.Code)
	}
}

func TestLinkCardLimiter(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	// Wrong passwords spread over many accounts: the card runs out first.
	for i := range maxFailures {
		user := fmt.Sprintf("user%d", i)
		h.addAccount(user, fmt.Sprintf("99999999%02d", i), testPassword)
		wantStatus(t, h.post(PathLink, linkForm(user, testWrongPassword)), http.StatusUnprocessableEntity)
	}
	wantStatus(t, h.post(PathLink, linkForm("user0", testPassword)), http.StatusTooManyRequests)
	h.advance(failureWindow)
	h.addAccount("john.q.doe", "1234567890", testPassword)
	wantStatus(t, h.post(PathLink, linkForm("john.q.doe", testPassword)), http.StatusOK)
}

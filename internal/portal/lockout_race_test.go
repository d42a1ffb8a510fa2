package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// gatedAccounts holds every attempt the store allows between being
// counted and being verified, until release is closed, so a test can line
// up concurrent attempts deterministically.
type gatedAccounts struct {
	selfservice.Accounts
	taken   atomic.Int32 // TakeLoginAttempt calls answered
	allowed atomic.Int32 // of which allowed, and so verified
	release chan struct{}
	// took is signalled once per TakeLoginAttempt answered.
	took chan struct{}
}

func gate(s *storeHarness) *gatedAccounts {
	g := &gatedAccounts{Accounts: s.deps.Accounts, release: make(chan struct{}), took: make(chan struct{}, 256)}
	s.deps.Accounts = g
	s.rebuild()
	return g
}

func (g *gatedAccounts) TakeLoginAttempt(ctx context.Context, id int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (store.LoginState, bool, error) {
	st, ok, err := g.Accounts.TakeLoginAttempt(ctx, id, now, window, maxFailures, lockFor)
	g.taken.Add(1)
	g.took <- struct{}{}
	if ok {
		g.allowed.Add(1)
		<-g.release
	}
	return st, ok, err
}

// waitTaken returns once n attempts were answered in all (the test's
// timeout catches a hang).
func (g *gatedAccounts) waitTaken(t *testing.T, n int32) {
	t.Helper()
	for g.taken.Load() < n {
		<-g.took
	}
}

// lockWatch reports the login state of every attempt counted.
type lockWatch struct {
	selfservice.Accounts
	states chan store.LoginState
}

func (l *lockWatch) TakeLoginAttempt(ctx context.Context, id int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (store.LoginState, bool, error) {
	st, ok, err := l.Accounts.TakeLoginAttempt(ctx, id, now, window, maxFailures, lockFor)
	l.states <- st
	return st, ok, err
}

// signIn posts the password sign-in form; safe from any goroutine.
func signIn(t *testing.T, f *Pages, username, password string, signedIn *atomic.Int32) *httptest.ResponseRecorder {
	form := url.Values{"csrf": {"csrf-token"}, "username": {username}, "password": {password}}
	r := httptest.NewRequest(http.MethodPost, PathLogin, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	err := f.ServeLogin(w, r, Login{CSRF: fakeCSRF{}, Next: "/", SignIn: func(*store.Account, string) error {
		signedIn.Add(1)
		w.WriteHeader(http.StatusSeeOther)
		return nil
	}})
	if err != nil {
		t.Error(err)
	}
	return w
}

// Wrong passwords sent at once must not all get past the "locked?" check
// before any failure is counted: at most three are verified, and a right
// password sent once the third was counted is refused, not signed in.
func TestPasswordSignInConcurrentGuessesVerifyAtMostThree(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	a := h.addAccount("john.q.doe", "1234567890", testPassword)
	g := gate(h)
	const guesses = 12
	var (
		wg          sync.WaitGroup
		signedIn    atomic.Int32
		wrong, lock atomic.Int32
	)
	for range guesses {
		wg.Go(func() {
			switch signIn(t, h.flow, "john.q.doe", testWrongPassword, &signedIn).Code {
			case http.StatusUnauthorized:
				wrong.Add(1)
			case http.StatusForbidden:
				lock.Add(1)
			}
		})
	}
	g.waitTaken(t, guesses)
	// The lock began with the third attempt counted, before any password
	// was verified: the right one is refused without being verified.
	var right *httptest.ResponseRecorder
	wg.Go(func() { right = signIn(t, h.flow, "john.q.doe", testPassword, &signedIn) })
	g.waitTaken(t, guesses+1)
	close(g.release)
	wg.Wait()

	if n := g.allowed.Load(); n != loginMaxFailures {
		t.Errorf("%d of %d concurrent attempts verified, want %d", n, guesses+1, loginMaxFailures)
	}
	if wrong.Load() != 2 || lock.Load() != guesses-2 {
		t.Errorf("wrong-password answers: %d \"not correct\", %d locked", wrong.Load(), lock.Load())
	}
	wantStatus(t, right, http.StatusForbidden, "It is locked until")
	if signedIn.Load() != 0 {
		t.Error("the right password signed in while the account was locked")
	}
	if st := h.failures(a); !st.Locked() || st.Failures != loginMaxFailures {
		t.Errorf("login state %+v, want locked after %d failures", st, loginMaxFailures)
	}
}

// The reviewer's scenario, unstaged: a realistic, slow hasher with one
// slot; a right guess queued behind the wrong ones must not sign in.
func TestPasswordSignInRightGuessQueuedBehindWrongOnesIsRefused(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	// Every guess must get its turn: the line's default bound (10 s) is
	// about a busy gateway turning hashes away, and on a loaded machine
	// eleven real argon2id hashes (each followed by its slot's rest) take
	// longer than that; the ones turned away would have their attempts
	// given back, and no lock would ever be seen.
	h.deps.Hasher = credential.NewQueuedHasher(credential.DefaultParams, 1, credential.Queue{MaxWait: time.Hour})
	watch := &lockWatch{Accounts: h.deps.Accounts, states: make(chan store.LoginState, 64)}
	h.deps.Accounts = watch
	h.rebuild()
	a := h.addAccount("john.q.doe", "1234567890", testPassword)
	const guesses = 11
	var (
		wg       sync.WaitGroup
		signedIn atomic.Int32
	)
	for range guesses {
		wg.Go(func() { signIn(t, h.flow, "john.q.doe", testWrongPassword, &signedIn) })
	}
	// Once an attempt has locked the account (the test's timeout catches
	// a hang), the right password comes.
	for st := range watch.states {
		if st.Locked() {
			break
		}
	}
	w := signIn(t, h.flow, "john.q.doe", testPassword, &signedIn)
	wg.Wait()
	wantStatus(t, w, http.StatusForbidden, "It is locked until")
	if st := h.failures(a); signedIn.Load() != 0 || st.Failures > loginMaxFailures || !st.Locked() {
		t.Errorf("signed in %d times; login state %+v", signedIn.Load(), st)
	}
}

// A right password whose attempt was counted before two wrong ones locked
// the account is refused too: the lock began before it was verified.
func TestPasswordRightButOvertakenByLockIsRefused(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	a := h.addAccount("john.q.doe", "1234567890", testPassword)
	g := gate(h)
	var (
		wg       sync.WaitGroup
		signedIn atomic.Int32
		codes    [3]int
	)
	for i, pw := range []string{testPassword, testWrongPassword, testWrongPassword} {
		wg.Go(func() { codes[i] = signIn(t, h.flow, "john.q.doe", pw, &signedIn).Code })
		g.waitTaken(t, int32(i+1))
	}
	close(g.release)
	wg.Wait()
	if codes[0] != http.StatusForbidden || signedIn.Load() != 0 {
		t.Errorf("right password: %d, signed in %d; want refused as locked", codes[0], signedIn.Load())
	}
	if st := h.failures(a); !st.Locked() {
		t.Errorf("login state %+v, want locked", st)
	}
}

// The attempt that reaches the limit locks the account while it is being
// verified; a right password there lifts that lock again.
func TestPasswordRightOnLastTrySignsInAndClearsLock(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	a := h.addAccount("john.q.doe", "1234567890", testPassword)
	var signedIn atomic.Int32
	wantStatus(t, signIn(t, h.flow, "John.Q.Doe", testWrongPassword, &signedIn), http.StatusUnauthorized, "2 tries remaining")
	wantStatus(t, signIn(t, h.flow, "john.q.doe", testWrongPassword, &signedIn), http.StatusUnauthorized, "1 try remaining")
	if w := signIn(t, h.flow, "john.q.doe", testPassword, &signedIn); w.Code != http.StatusSeeOther || signedIn.Load() != 1 {
		t.Fatalf("right password on the last try: %d\n%s", w.Code, w.Body)
	}
	if st := h.failures(a); st.Locked() || st.Failures != 0 {
		t.Errorf("login state after the right password %+v, want cleared", st)
	}
	// The link page, sharing the count, still allows three tries.
	wantStatus(t, h.post(PathLink, linkForm("john.q.doe", testWrongPassword)), http.StatusUnprocessableEntity, "2 tries remaining")
}

// Wrong security answers sent at once (here with several cards, so that
// the per-card throttle is not what stops them) are verified at most three
// times per account; right answers after the lock change nothing.
func TestResetConcurrentWrongAnswersVerifyAtMostThree(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	a := h.addResetAccount("john.q.doe", "1234567890")
	const guesses = 6
	cards := make([]*cacid.Identity, guesses+1)
	states := make([]string, guesses+1)
	for i := range cards {
		cards[i] = testCard("1234567890", fingerprintOf(string(rune('a'+i))+"1"))
		w := h.do(http.MethodPost, PathReset, url.Values{"csrf": {"csrf-token"}, "username": {"john.q.doe"}}, cards[i], fakeCSRF{})
		states[i] = stateOf(t, w)
	}
	g := gate(h)
	post := func(i int, form url.Values) *httptest.ResponseRecorder {
		form.Set("csrf", "csrf-token")
		r := httptest.NewRequest(http.MethodPost, PathReset, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		if err := h.flow.Serve(w, r, cards[i], fakeCSRF{}); err != nil {
			t.Error(err)
		}
		return w
	}
	var wg sync.WaitGroup
	for i := range guesses {
		wg.Go(func() {
			post(i, resetForm(states[i], testAnswer1, "elm street", testAnswer3, testNewPassword, testNewPassword))
		})
	}
	g.waitTaken(t, guesses)
	var right *httptest.ResponseRecorder
	wg.Go(func() { right = post(guesses, rightAnswers(states[guesses], testNewPassword)) })
	g.waitTaken(t, guesses+1)
	close(g.release)
	wg.Wait()

	if n := g.allowed.Load(); n != loginMaxFailures {
		t.Errorf("%d of %d concurrent answer sets verified, want %d", n, guesses+1, loginMaxFailures)
	}
	wantStatus(t, right, http.StatusForbidden, "Account locked")
	if !h.passwordIs("john.q.doe", testPassword) {
		t.Error("password reset while the account was locked")
	}
	if st := h.failures(a); !st.Locked() || st.Failures != loginMaxFailures {
		t.Errorf("login state %+v", st)
	}
}

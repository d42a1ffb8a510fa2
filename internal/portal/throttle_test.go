package portal

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// failingThrottle counts in the harness's database but fails the chosen
// methods, for the keys that contain match ("" for all), as a database
// that is down would.
type failingThrottle struct {
	inner store.Throttler
	match string

	mu                                 sync.Mutex
	failFailures, failTake, failRefund bool
	refunds                            int
}

var errDatabaseDown = errors.New("dial tcp 10.0.0.5:5432: connection refused")

func newFailingThrottle(db store.Throttler) *failingThrottle {
	return &failingThrottle{inner: db}
}

func (f *failingThrottle) set(failures, take, refund bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failFailures, f.failTake, f.failRefund = failures, take, refund
}

func (f *failingThrottle) fails(key string, which *bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *which && strings.Contains(key, f.match)
}

func (f *failingThrottle) TakeAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (bool, error) {
	if f.fails(key, &f.failTake) {
		return false, errDatabaseDown
	}
	return f.inner.TakeAttempt(ctx, key, now, window, max)
}

func (f *failingThrottle) RefundAttempt(ctx context.Context, key string) error {
	f.mu.Lock()
	f.refunds++
	f.mu.Unlock()
	if f.fails(key, &f.failRefund) {
		return errDatabaseDown
	}
	return f.inner.RefundAttempt(ctx, key)
}

func (f *failingThrottle) Attempts(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	if f.fails(key, &f.failFailures) {
		return 0, time.Time{}, errDatabaseDown
	}
	return f.inner.Attempts(ctx, key, now, window)
}

func (f *failingThrottle) PruneAttempts(ctx context.Context, before time.Time) (int64, error) {
	return f.inner.PruneAttempts(ctx, before)
}

// counted returns the attempts the inner throttle holds for key.
func (f *failingThrottle) counted(t *testing.T, key string, now time.Time) int {
	t.Helper()
	n, _, err := f.inner.Attempts(context.Background(), cardPrefix+key, now, failureWindow)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// useThrottle rebuilds the harness's flow with th as its throttle.
func (h *harness) useThrottle(th store.Throttler) {
	h.t.Helper()
	h.deps.Throttle = th
	h.rebuild()
}

// wantUnavailable checks the fail-closed answer: 503 with Retry-After, the
// form that was sent (its action is form) shown again to send once the
// database is back, saying what was not done, without the error's text,
// and audited.
func wantUnavailable(t *testing.T, h *harness, w *httptest.ResponseRecorder, event, nothing, form string) {
	t.Helper()
	wantStatus(t, w, http.StatusServiceUnavailable, nothing, "send this form again", `action="`+form+`"`)
	if w.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	for _, s := range []string{"connection refused", "10.0.0.5"} {
		if strings.Contains(w.Body.String(), s) {
			t.Errorf("page shows %q", s)
		}
	}
	if a := h.audited(event, "unavailable"); a == nil || a.Fields["reason"] != selfservice.ThrottleUnavailableReason || a.Fields["cause"] == "" {
		t.Errorf("not audited as %s unavailable: %+v", event, h.audits)
	}
}

func TestThrottleErrorFailsClosedIdentity(t *testing.T) {
	for _, c := range []struct {
		name                   string
		failures, take, refund bool
		asksRoster             bool
	}{
		{"reading the count", true, false, false, false},
		{"counting", false, true, false, false},
		// The roster matched, but the attempt could not be taken back:
		// no profile step is offered on a throttle that cannot be
		// trusted.
		{"refunding a match", false, false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, selfservice.Config{})
			th := newFailingThrottle(h.db)
			th.set(c.failures, c.take, c.refund)
			h.useThrottle(th)
			w := h.post(PathNew, identityForm())
			wantUnavailable(t, h, w, "enroll.identity", "No account was created.", PathNew)
			if strings.Contains(w.Body.String(), `name="state"`) {
				t.Error("a state to go on with")
			}
			if asked := h.roster.verifies > 0; asked != c.asksRoster {
				t.Errorf("roster asked: %v, want %v", asked, c.asksRoster)
			}
			if h.audited("enroll.identity", "success") != nil || h.store.count() != 0 {
				t.Error("identity accepted or account created")
			}
			// Once the throttle works again, so does the flow.
			th.set(false, false, false)
			wantStatus(t, h.post(PathNew, identityForm()), http.StatusOK, "1 of 2")
		})
	}
}

// A failed refund of a mismatch is never attempted: a mismatch is counted
// whatever the throttle's state, and the person sees the mismatch.
func TestThrottleRefundNotNeededForMismatch(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	th := newFailingThrottle(h.db)
	th.set(false, false, true)
	h.useThrottle(th)
	bad := identityForm()
	bad.Set("dob", "1980-01-01")
	wantStatus(t, h.post(PathNew, bad), http.StatusUnprocessableEntity, "does not match")
	if n := th.counted(t, identityKey(h.card), h.now); n != 1 {
		t.Errorf("%d counted, want 1", n)
	}
}

func TestThrottleErrorFailsClosedLink(t *testing.T) {
	for _, c := range []struct {
		name                   string
		failures, take, refund bool
	}{
		{"reading the count", true, false, false},
		{"counting", false, true, false},
		{"refunding a right password", false, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newStoreHarness(t, selfservice.Config{})
			h.addAccount("john.q.doe", "1234567890", testPassword)
			th := newFailingThrottle(h.db)
			th.set(c.failures, c.take, c.refund)
			h.useThrottle(th)
			w := h.post(PathLink, linkForm("john.q.doe", testPassword))
			wantUnavailable(t, h.harness, w, "card.linked", "The card was not registered.", PathLink)
			wantStatus(t, w, http.StatusServiceUnavailable, `value="john.q.doe"`)
			if h.cardOwner(h.card.FingerprintHex) != "" || h.changes.Load() != 0 || h.audited("card.linked", "success") != nil {
				t.Error("card linked")
			}
			th.set(false, false, false)
			wantStatus(t, h.post(PathLink, linkForm("john.q.doe", testPassword)), http.StatusOK)
		})
	}
}

func TestThrottleErrorFailsClosedReset(t *testing.T) {
	for _, c := range []struct {
		name                   string
		username, match        string
		failures, take, refund bool
	}{
		{"reading the card's count", "john.q.doe", "", true, false, false},
		{"counting for the card", "john.q.doe", "", false, true, false},
		{"refunding right answers", "john.q.doe", "", false, false, true},
		// An unknown username's own countdown, after the card's attempt
		// was counted: that attempt is taken back.
		{"reading a decoy's count", "nobody.here", "decoy:", true, false, false},
		{"counting for a decoy", "nobody.here", "decoy:", false, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newStoreHarness(t, selfservice.Config{})
			a := h.addResetAccount("john.q.doe", "1234567890")
			th := newFailingThrottle(h.db)
			th.match = c.match
			h.useThrottle(th)
			state := h.resetStart(c.username)
			th.set(c.failures, c.take, c.refund)
			w := h.post(PathReset, rightAnswers(state, testNewPassword))
			wantUnavailable(t, h.harness, w, "password.reset", "The password was not changed.", PathReset)
			// The answers form again, with a state to send them with.
			wantStatus(t, w, http.StatusServiceUnavailable, `name="answer-1"`, `name="state"`)
			if !h.passwordIs("john.q.doe", testPassword) || h.audited("password.reset", "success") != nil {
				t.Error("password changed")
			}
			if c.match != "" {
				if n := th.counted(t, resetKey(h.card), h.now); n != 0 {
					t.Errorf("card's attempt left counted: %d", n)
				}
			}
			if st := h.failures(a); st.Failures != 0 {
				t.Errorf("account failures counted: %+v", st)
			}
			th.set(false, false, false)
			if c.username == "john.q.doe" {
				wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusOK)
			} else {
				wantStatus(t, h.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusUnprocessableEntity, "2 tries remaining")
			}
		})
	}
}

// node is one gateway node's flow over its own handle of the shared
// account database.
type node struct {
	*harness
	db   *store.SQLStore
	path string
}

// twoNodes returns two flows, as on two gateway nodes behind a load
// balancer: separate processes' worth of state (flow, store handle,
// audits) sharing one database file, one sealing key and one clock.
func twoNodes(t *testing.T) (a, b *node) {
	t.Helper()
	sh := newStoreHarness(t, selfservice.Config{})
	a = &node{sh.harness, sh.db, sh.path}

	db2, err := store.OpenSQLite(context.Background(), sh.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	hb := newHarness(t, selfservice.Config{})
	hb.deps.Roster, hb.deps.Accounts = sh.roster, db2
	hb.deps.Sealer, hb.deps.Now = sh.sealer, sh.deps.Now
	hb.deps.Throttle = db2
	hb.roster, hb.sealer = sh.roster, sh.sealer
	hb.rebuild()
	return a, &node{hb, db2, sh.path}
}

// TestSharedThrottleIdentityAcrossNodes: a card's five failed identity
// checks, spread over two nodes, lock it on both.
func TestSharedThrottleIdentityAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	bad := identityForm()
	bad.Set("dob", "1980-01-01")
	for i := range maxFailures {
		n := a
		if i%2 == 1 {
			n = b
		}
		wantStatus(t, n.post(PathNew, bad), http.StatusUnprocessableEntity, "does not match")
	}
	verifies := a.roster.verifies
	wantStatus(t, a.post(PathNew, identityForm()), http.StatusTooManyRequests)
	wantStatus(t, b.post(PathNew, identityForm()), http.StatusTooManyRequests)
	if a.roster.verifies != verifies || verifies != maxFailures {
		t.Errorf("roster asked %d times, want %d", a.roster.verifies, maxFailures)
	}
	if a.audited("enroll.identity", "limited") == nil || b.audited("enroll.identity", "limited") == nil {
		t.Error("limit not audited on both nodes")
	}
	// The count is per card: another card goes ahead on either node.
	other := testCard("1234567890", strings.Repeat("cd", 32))
	form := identityForm()
	form.Set("csrf", "csrf-token")
	wantStatus(t, b.do(http.MethodPost, PathNew, form, other, fakeCSRF{}), http.StatusOK, "1 of 2")
	// And the window ends for both.
	a.advance(failureWindow)
	wantStatus(t, b.post(PathNew, identityForm()), http.StatusOK, "1 of 2")
}

// TestSharedThrottleParallelAcrossNodes: wrong identity checks sent to two
// nodes at once reach the roster at most maxFailures times in all.
func TestSharedThrottleParallelAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	bad := identityForm()
	bad.Set("dob", "1980-01-01")
	bad.Set("csrf", "csrf-token")
	var wg sync.WaitGroup
	for i := range 16 {
		n := a
		if i%2 == 1 {
			n = b
		}
		wg.Go(func() {
			r := httptest.NewRequest(http.MethodPost, PathNew, strings.NewReader(bad.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			if err := n.flow.Serve(w, r, n.card, fakeCSRF{}); err != nil {
				t.Error(err)
			}
			if w.Code != http.StatusUnprocessableEntity && w.Code != http.StatusTooManyRequests {
				t.Errorf("status %d", w.Code)
			}
		})
	}
	wg.Wait()
	if a.roster.verifies != maxFailures {
		t.Errorf("roster asked %d times across two nodes, want %d", a.roster.verifies, maxFailures)
	}
}

// TestSharedThrottleDecoyAcrossNodes: an unknown username counts down and
// locks across nodes exactly as a real account, whose count is in the
// accounts table, does; and the typed username is not stored.
func TestSharedThrottleDecoyAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	sa := &storeHarness{harness: a.harness, db: a.db}
	sa.addResetAccount("john.q.doe", "1234567890")
	for _, username := range []string{"nobody.here", "john.q.doe"} {
		t.Run(username, func(t *testing.T) {
			state := sa.resetStart(username)
			wrong := resetForm(state, "wrong", "wrong", "wrong", testNewPassword, testNewPassword)
			wantStatus(t, a.post(PathReset, wrong), http.StatusUnprocessableEntity, "2 tries remaining")
			if username == "nobody.here" {
				// A decoy's count ignores case, as username lookups do.
				wrong = resetForm(sa.resetStart("NOBODY.Here"), "wrong", "wrong", "wrong", testNewPassword, testNewPassword)
			}
			wantStatus(t, b.post(PathReset, wrong), http.StatusUnprocessableEntity, "1 try remaining")
			wantStatus(t, a.post(PathReset, resetForm(state, "wrong", "wrong", "wrong", testNewPassword, testNewPassword)),
				http.StatusForbidden, "Account locked")
			wantStatus(t, b.post(PathReset, rightAnswers(state, testNewPassword)), http.StatusForbidden, "Account locked")
		})
		a.advance(time.Hour) // past the lock and the card's window
	}

	raw, err := sql.Open("sqlite", a.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`SELECT name FROM attempts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	decoys, locks := 0, 0
	for _, name := range names {
		if strings.Contains(strings.ToLower(name), "nobody") {
			t.Errorf("attempt name %q holds the typed username", name)
		}
		switch {
		case strings.HasPrefix(name, "enroll:decoy:") && strings.HasSuffix(name, ":lock"):
			locks++
		case strings.HasPrefix(name, "enroll:decoy:"):
			decoys++
		}
	}
	if decoys != 1 || locks != 1 {
		t.Errorf("attempt names %q: want exactly one decoy count and its lock", names)
	}
}

// A key longer than selfservice.MaxThrottleKeyLen, which only a malformed fingerprint
// could make, is refused like a throttle failure rather than counted under
// a name a shared throttle might cut or reject.
func TestThrottleKeyTooLongFailsClosed(t *testing.T) {
	h := newHarness(t, selfservice.Config{})
	h.card = testCard("1234567890", strings.Repeat("ab", selfservice.MaxThrottleKeyLen))
	wantUnavailable(t, h, h.post(PathNew, identityForm()), "enroll.identity", "No account was created.", PathNew)
	if h.roster.verifies != 0 {
		t.Error("roster asked")
	}
}

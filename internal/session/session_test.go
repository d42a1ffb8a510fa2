package session

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/store"
)

// newTokens returns session tokens and the consent banner's tokens made
// from one master key, as the gateway makes them.
func newTokens(t testing.TB) (*Tokens, *consent.Tokens) {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	tok, err := NewTokens(key)
	if err != nil {
		t.Fatal(err)
	}
	banner, err := consent.NewTokens(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok, banner
}

const fpA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// fakeEnder is the account store's record of sessions, in memory.
type fakeEnder struct {
	ended   func(id string) (bool, error)
	endings []string
	live    []store.LiveSession
	pruned  int
}

func (f *fakeEnder) EndSession(_ context.Context, id string, _ time.Time) error {
	f.endings = append(f.endings, id)
	return nil
}

func (f *fakeEnder) SessionEnded(_ context.Context, id string) (bool, error) {
	if f.ended == nil {
		return false, nil
	}
	return f.ended(id)
}

func (f *fakeEnder) PruneEndedSessions(context.Context, time.Time) (int64, error) {
	f.pruned++
	return 0, nil
}

func (f *fakeEnder) StartSession(_ context.Context, s store.LiveSession, limit int, _ time.Time) ([]store.LiveSession, error) {
	f.live = append(f.live, s)
	var ended []store.LiveSession
	for len(f.live) > limit {
		ended, f.live = append(ended, f.live[0]), f.live[1:]
	}
	return ended, nil
}

func TestSessionTokens(t *testing.T) {
	tok, banner := newTokens(t)
	now := time.Now()
	s, err := tok.Issue("john.q.doe", now, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tok.Verify(s, now); err != nil || got.Username != "john.q.doe" || got.ID == "" || !got.IdleUntil.IsZero() {
		t.Fatalf("verify: %+v %v", got, err)
	}
	if _, err := tok.Verify(s, now.Add(2*time.Hour)); err == nil {
		t.Error("expired session verified")
	}
	// A consent token is not a session token, nor the other way round.
	c, _ := banner.Issue(fpA, now, time.Hour)
	if _, err := tok.Verify(c, now); err == nil {
		t.Error("a consent token verified as a session")
	}
	if _, err := banner.Verify(s, now); err == nil {
		t.Error("a session token verified as consent")
	}
	cache := NewManager(tok, &fakeEnder{}, 10, time.Minute, nil)
	for i := 0; i < 2; i++ {
		if u, ok := cache.User(t.Context(), s, now); !ok || u != "john.q.doe" {
			t.Fatalf("cache round %d: %q %v", i, u, ok)
		}
	}
	if _, ok := cache.User(t.Context(), s, now.Add(2*time.Hour)); ok {
		t.Error("cached session accepted after expiry")
	}
	if _, ok := cache.User(t.Context(), s[:len(s)-2]+"xx", now); ok {
		t.Error("tampered session accepted")
	}
	if got := consent.CookieByName([]string{"a=1; " + CookieName + "=tok"}, CookieName); got != "tok" {
		t.Errorf("CookieByName = %q", got)
	}
	if _, err := tok.Issue("john.q.doe", now, time.Hour, -time.Minute); err == nil {
		t.Error("negative idle limit accepted")
	}
}

func TestSessionIdleLimit(t *testing.T) {
	tok, _ := newTokens(t)
	now := time.Now().Truncate(time.Second)
	const idle = 15 * time.Minute
	s, err := tok.Issue("john.q.doe", now, 8*time.Hour, idle)
	if err != nil {
		t.Fatal(err)
	}
	first, err := tok.Verify(s, now)
	if err != nil || !first.IdleUntil.Equal(now.Add(idle)) || !first.Expires.Equal(now.Add(8*time.Hour)) {
		t.Fatalf("verify: %+v %v", first, err)
	}
	if _, err := tok.Verify(s, now.Add(idle)); err == nil {
		t.Error("session verified after its idle limit")
	}
	cache := NewManager(tok, &fakeEnder{}, 10, time.Hour, nil)
	if _, ok, _ := cache.Session(t.Context(), s, now.Add(time.Minute)); !ok {
		t.Fatal("live session refused")
	}
	if _, ok, _ := cache.Session(t.Context(), s, now.Add(idle+time.Second)); ok {
		t.Error("cached session accepted after its idle limit")
	}

	// Activity renews it: same session and absolute end, a new deadline.
	later := now.Add(10 * time.Minute)
	r, err := tok.Renew(first, later, idle)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := tok.Verify(r, now.Add(20*time.Minute))
	if err != nil || renewed.ID != first.ID || !renewed.Expires.Equal(first.Expires) || !renewed.IdleUntil.Equal(later.Add(idle)) {
		t.Fatalf("renewed: %+v %v (first %+v)", renewed, err, first)
	}
	// Never past the absolute end.
	nearEnd := now.Add(8*time.Hour - 5*time.Minute)
	active := renewed
	active.IdleUntil = nearEnd.Add(time.Minute) // as if renewed all day long
	last, err := tok.Renew(active, nearEnd, idle)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tok.Verify(last, nearEnd); err != nil || !got.IdleUntil.Equal(first.Expires) {
		t.Fatalf("renewed near the end: %+v %v", got, err)
	}
	// A session that has already ended cannot be renewed back to life.
	if _, err := tok.Renew(first, now.Add(idle+time.Minute), idle); err == nil {
		t.Error("an idle session was renewed")
	}
	if _, err := tok.Renew(first, later, 0); err == nil {
		t.Error("renewed without an idle limit")
	}
}

func TestSessionEnded(t *testing.T) {
	tok, _ := newTokens(t)
	now := time.Now()
	a, _ := tok.Issue("john.q.doe", now, time.Hour, 0)
	b, _ := tok.Issue("jane.r.roe", now, time.Hour, 0)
	sa, _ := tok.Verify(a, now)

	// Ended elsewhere: the shared store says so on first sight.
	var asked []string
	storeDown := false
	endedElsewhere := map[string]bool{}
	cache := NewManager(tok, &fakeEnder{ended: func(id string) (bool, error) {
		asked = append(asked, id)
		if storeDown {
			return false, errors.New("database unreachable")
		}
		return endedElsewhere[id], nil
	}}, 10, time.Hour, nil)
	if _, ok, err := cache.Session(t.Context(), a, now); !ok || err != nil {
		t.Fatalf("live session: %v %v", ok, err)
	}
	if _, ok, _ := cache.Session(t.Context(), a, now); !ok || len(asked) != 1 {
		t.Fatalf("cached session asked the store again: %v", asked)
	}

	// Signed out here: refused at once, cached or not, until it expires.
	cache.End(sa.ID, sa.Expires, now)
	if _, ok, _ := cache.Session(t.Context(), a, now); ok {
		t.Fatal("ended session accepted from the cache")
	}
	renewedA, _ := tok.Renew(Session{Username: sa.Username, ID: sa.ID, Expires: sa.Expires, IdleUntil: now.Add(time.Minute)}, now, time.Minute)
	if _, ok, _ := cache.Session(t.Context(), renewedA, now); ok {
		t.Fatal("a renewed token of an ended session accepted")
	}

	// The store cannot be asked: the token is refused and not remembered.
	storeDown = true
	if _, ok, err := cache.Session(t.Context(), b, now); ok || err == nil {
		t.Fatalf("unchecked session: %v %v", ok, err)
	}
	storeDown = false
	sb, _ := tok.Verify(b, now)
	endedElsewhere[sb.ID] = true
	if _, ok, err := cache.Session(t.Context(), b, now); ok || err != nil {
		t.Fatalf("session ended on another node: %v %v", ok, err)
	}

	// Purge makes a cached token ask again.
	c, _ := tok.Issue("x.y.z", now, time.Hour, 0)
	sc, _ := tok.Verify(c, now)
	if _, ok, _ := cache.Session(t.Context(), c, now); !ok {
		t.Fatal("live session refused")
	}
	endedElsewhere[sc.ID] = true
	cache.Purge()
	if _, ok, _ := cache.Session(t.Context(), c, now); ok {
		t.Fatal("after Purge, a session ended elsewhere was still accepted")
	}

	// Records are swept once their session is over.
	cache.End("other", now.Add(time.Minute), now.Add(2*time.Hour))
	if _, ok := cache.ended.Load(sa.ID); ok {
		t.Error("an expired session's end record was kept")
	}
}

// TestStartLimitsAndEnds: with a limit the session is recorded and the
// oldest beyond it end at once on this node; EndEverywhere records the end
// in the store.
func TestStartLimitsAndEnds(t *testing.T) {
	tok, _ := newTokens(t)
	st := &fakeEnder{}
	m := NewManager(tok, st, 10, time.Hour, nil)
	now := time.Now()
	first, firstToken, ended, err := m.Start(t.Context(), "john.q.doe", now, time.Hour, 0, 1)
	if err != nil || len(ended) != 0 {
		t.Fatalf("first sign-in: %v %v", ended, err)
	}
	if _, ok, _ := m.Session(t.Context(), firstToken, now); !ok {
		t.Fatal("first session refused")
	}
	_, second, ended, err := m.Start(t.Context(), "john.q.doe", now, time.Hour, 0, 1)
	if err != nil || len(ended) != 1 || ended[0].ID != first.ID {
		t.Fatalf("second sign-in ended %v, %v; want the first", ended, err)
	}
	if _, ok, _ := m.Session(t.Context(), firstToken, now); ok {
		t.Error("the session beyond the limit was still accepted")
	}
	s, ok, _ := m.Session(t.Context(), second, now)
	if !ok {
		t.Fatal("second session refused")
	}
	if err := m.EndEverywhere(t.Context(), s, now); err != nil || len(st.endings) != 1 || st.endings[0] != s.ID {
		t.Fatalf("EndEverywhere: %v, store recorded %v", err, st.endings)
	}
	if _, ok, _ := m.Session(t.Context(), second, now); ok {
		t.Error("a signed-out session was accepted")
	}
	// Without a limit nothing is recorded at sign-in.
	if _, _, _, err := m.Start(t.Context(), "jane.r.roe", now, time.Hour, 0, 0); err != nil || len(st.live) != 1 {
		t.Errorf("unlimited sign-in recorded %d sessions, %v", len(st.live), err)
	}
}

// TestRenewOnlyWhenDue: a request renews the cookie only once its idle
// deadline is more than RenewAfter old.
func TestRenewOnlyWhenDue(t *testing.T) {
	tok, _ := newTokens(t)
	m := NewManager(tok, &fakeEnder{}, 10, time.Hour, nil)
	now := time.Now().Truncate(time.Second)
	const idle = 15 * time.Minute
	s, _, _, err := m.Start(t.Context(), "john.q.doe", now, 8*time.Hour, idle, 0)
	if err != nil {
		t.Fatal(err)
	}
	if token, err := m.Renew(s, now.Add(30*time.Second), idle); token != "" || err != nil {
		t.Errorf("renewed after 30s: %q %v", token, err)
	}
	token, err := m.Renew(s, now.Add(2*time.Minute), idle)
	if token == "" || err != nil {
		t.Fatalf("not renewed after 2m: %v", err)
	}
	if got, err := tok.Verify(token, now.Add(2*time.Minute)); err != nil || !got.IdleUntil.Equal(now.Add(2*time.Minute+idle)) {
		t.Errorf("renewed: %+v %v", got, err)
	}
}

// TestCacheLifetime: a verified token is remembered for the cache's
// lifetime, then checked against the store again, so a sign-out recorded
// where the change feed could not tell this node is honoured within it.
func TestCacheLifetime(t *testing.T) {
	tok, _ := newTokens(t)
	ended := false
	m := NewManager(tok, &fakeEnder{ended: func(string) (bool, error) { return ended, nil }}, 10, 10*time.Minute, nil)
	now := time.Now()
	s, err := tok.Issue("john.q.doe", now, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := m.Session(context.Background(), s, now); !ok {
		t.Fatal("fresh session refused")
	}
	ended = true // signed out on a node that could not tell this one
	if _, ok, _ := m.Session(context.Background(), s, now.Add(5*time.Minute)); !ok {
		t.Error("within the cache's lifetime the session should still be served from it")
	}
	if _, ok, _ := m.Session(context.Background(), s, now.Add(11*time.Minute)); ok {
		t.Error("past the cache's lifetime the sign-out recorded in the store was not seen")
	}
}

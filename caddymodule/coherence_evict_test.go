package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/store"
)

// TestRemoteChangeReachesEvictedEntries: a change announced by another
// node (the PostgreSQL feed) stops a card in active use even when its
// app-level cache entry has left the cache, evicted by other cards' first
// visits or replaced by a newer build, while a site still holds it.
func TestRemoteChangeReachesEvictedEntries(t *testing.T) {
	for _, how := range []string{"evicted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			p := newHotPath(t, "off")
			app := p.h.app
			serve := func() int {
				w := httptest.NewRecorder()
				if err := p.h.ServeHTTP(w, p.replay.next(), p.next); err != nil {
					t.Fatal(err)
				}
				return w.Code
			}
			fp := fingerprint(card(t, "doe.john.quincy"))
			switch how {
			case "evicted":
				for i := range app.CacheSize {
					app.cards.Add(fmt.Sprintf("%064x", i), &cardEntry{})
				}
				if _, ok := app.cards.Peek(fp); ok {
					t.Fatal("the card's entry was not evicted")
				}
			case "replaced":
				// Another site builds a newer entry for the same card.
				app.keep(fp, &cardEntry{epoch: app.epoch.Load()}, app.changeGen.Load())
			}
			if c := serve(); c != http.StatusOK {
				t.Fatalf("before the change: HTTP %d", c)
			}
			// Another node disables the account and announces it.
			acct, err := app.store.SetStatus(context.Background(), "john.q.doe", store.StatusDisabled)
			if err != nil {
				t.Fatal(err)
			}
			app.applyChange(store.Change{AccountID: acct.ID, Username: acct.Username, EDIPI: acct.EDIPI, Fingerprints: []string{fp}})
			if c := serve(); c != http.StatusForbidden {
				t.Fatalf("after the announced disable: HTTP %d, want 403", c)
			}
		})
	}
}

// stallingStore holds the first account lookup after it has read the
// database, until released: a lookup in flight while a change is made.
type stallingStore struct {
	cardStore
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (s *stallingStore) AccountByFingerprint(ctx context.Context, fp string) (*store.Account, error) {
	a, err := s.cardStore.AccountByFingerprint(ctx, fp)
	if s.calls.Add(1) == 1 {
		close(s.entered)
		<-s.release
	}
	return a, err
}

// TestJoinedLookupAfterChange: a request that arrives after an account was
// disabled, while a lookup begun before the change is still in flight,
// is not served that lookup's pre-change account.
func TestJoinedLookupAfterChange(t *testing.T) {
	p := newHotPath(t, "off")
	app := p.h.app
	se := p.h.siteEntry(p.req.TLS, time.Now())
	db := app.store
	stall := &stallingStore{cardStore: app.cardStore, entered: make(chan struct{}), release: make(chan struct{})}
	app.cardStore = stall
	app.invalidate()

	var wg sync.WaitGroup
	var before, after *cardEntry
	wg.Go(func() { before, _ = app.card(context.Background(), p.req, se.id, &se.cert) })
	select {
	case <-stall.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first lookup never reached the store")
	}
	// Disabled on this node while that lookup is in flight.
	if _, err := db.SetStatus(context.Background(), "john.q.doe", store.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	app.invalidate()
	wg.Go(func() { after, _ = app.card(context.Background(), p.req, se.id, &se.cert) })
	time.Sleep(100 * time.Millisecond) // the second request joins the flight
	close(stall.release)
	wg.Wait()
	if before == nil || after == nil {
		t.Fatal("a lookup failed")
	}
	if after.account == nil || after.account.Status != store.StatusDisabled {
		t.Fatalf("the request after the disable got account %+v", after.account)
	}
	if n := stall.calls.Load(); n != 2 {
		t.Errorf("%d account lookups, want 2 (the joined one, then a fresh one)", n)
	}
}

// TestRemoteAccountReachesUnregisteredCard: a card seen before any account
// held its DoD ID is cached as "no account"; an account created for that
// DoD ID on another node (announced with the EDIPI only) drops the entry,
// so link_by_edipi finds the account at the card's next request.
func TestRemoteAccountReachesUnregisteredCard(t *testing.T) {
	p := newHotPath(t, "off")
	app := p.h.app
	e := &cardEntry{epoch: app.epoch.Load(), expires: time.Now().Add(time.Hour), edipi: "1234567801"}
	app.cards.Add("ab12", e)
	app.applyChange(store.Change{AccountID: 99, Username: "new.person", EDIPI: "1234567801"})
	if _, ok := app.cards.Peek("ab12"); ok || !e.dropped.Load() {
		t.Fatal("the unregistered card's entry survived an account created for its DoD ID")
	}
	other := &cardEntry{epoch: app.epoch.Load(), expires: time.Now().Add(time.Hour), edipi: "1234567802"}
	app.cards.Add("cd34", other)
	app.applyChange(store.Change{AccountID: 99, Username: "new.person", EDIPI: "1234567801"})
	if _, ok := app.cards.Peek("cd34"); !ok || other.dropped.Load() {
		t.Fatal("a change for another DoD ID dropped an unrelated entry")
	}
}

package gateway

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/store"
)

// TestRemoteChangeReachesEvictedEntries: a change announced by another
// node (the PostgreSQL feed) stops a card in active use even when its
// core-level cache entry has left the cache, evicted by other cards' first
// visits or replaced by a newer build, while a site still holds it.
func TestRemoteChangeReachesEvictedEntries(t *testing.T) {
	for _, how := range []string{"evicted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
			acct := h.enrollDoe(t)
			doe := testCard(t, "doe.john.quincy")
			admit := func() Outcome { return h.site.Admit(h.request(t, doe, true), time.Now()).Outcome }
			if o := admit(); o != Admitted {
				t.Fatalf("first visit: outcome %d", o)
			}
			fp := cacid.Fingerprint(doe.Cert.Raw)
			switch how {
			case "evicted":
				for i := range h.core.cfg.CacheSize {
					h.core.cards.Add(fmt.Sprintf("%064x", i), &Entry{})
				}
				if _, ok := h.core.cards.Peek(fp); ok {
					t.Fatal("the card's entry was not evicted")
				}
			case "replaced":
				// Another site builds a newer entry for the same card.
				h.core.keep(fp, &Entry{epoch: h.core.epoch.Load()}, h.core.changeGen.Load())
			}
			if o := admit(); o != Admitted {
				t.Fatalf("before the change: outcome %d", o)
			}
			// Another node disables the account and announces it.
			if _, err := h.db.SetStatus(context.Background(), acct.Username, store.StatusDisabled); err != nil {
				t.Fatal(err)
			}
			h.core.ApplyChange(store.Change{AccountID: acct.ID, Username: acct.Username, EDIPI: acct.EDIPI, Fingerprints: []string{fp}})
			if o := admit(); o != AccountInactive {
				t.Fatalf("after the announced disable: outcome %d, want AccountInactive", o)
			}
		})
	}
}

// stallingStore holds the first account lookup after it has read the
// database, until released: a lookup in flight while a change is made.
type stallingStore struct {
	Store
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (s *stallingStore) AccountByFingerprint(ctx context.Context, fp string) (*store.Account, error) {
	a, err := s.Store.AccountByFingerprint(ctx, fp)
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
	h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
	acct := h.enrollDoe(t)
	doe := testCard(t, "doe.john.quincy")
	if o := h.site.Admit(h.request(t, doe, true), time.Now()).Outcome; o != Admitted {
		t.Fatalf("first visit: outcome %d", o)
	}
	se, _ := h.site.Certificate(verifiedState(t, doe), time.Now())
	stall := &stallingStore{Store: h.db, entered: make(chan struct{}), release: make(chan struct{})}
	h.core.cfg.Store = stall
	h.core.Invalidate()

	r := h.request(t, doe, true)
	var wg sync.WaitGroup
	var before, after *Entry
	wg.Go(func() { before, _ = h.core.Card(context.Background(), r, se.ID, se.cardChain(r.TLS)) })
	select {
	case <-stall.entered:
	case <-time.After(time.Minute):
		t.Fatal("the first lookup never reached the store")
	}
	// Disabled on this node while that lookup is in flight.
	if _, err := h.db.SetStatus(context.Background(), acct.Username, store.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	h.core.Invalidate()
	joining := make(chan struct{})
	var once sync.Once
	h.core.beforeLookup = func() { once.Do(func() { close(joining) }) }
	wg.Go(func() { after, _ = h.core.Card(context.Background(), r, se.ID, se.cardChain(r.TLS)) })
	<-joining
	// The second request is joining the flight (were it to start a fresh
	// one instead, it would see the disabled account all the same).
	close(stall.release)
	wg.Wait()
	if before == nil || after == nil {
		t.Fatal("a lookup failed")
	}
	if after.Account == nil || after.Account.Status != store.StatusDisabled {
		t.Fatalf("the request after the disable got account %+v", after.Account)
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
	h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
	e := &Entry{epoch: h.core.epoch.Load(), expires: time.Now().Add(time.Hour), edipi: "1234567801"}
	h.core.cards.Add("ab12", e)
	h.core.ApplyChange(store.Change{AccountID: 99, Username: "new.person", EDIPI: "1234567801"})
	if _, ok := h.core.cards.Peek("ab12"); ok || !e.dropped.Load() {
		t.Fatal("the unregistered card's entry survived an account created for its DoD ID")
	}
	other := &Entry{epoch: h.core.epoch.Load(), expires: time.Now().Add(time.Hour), edipi: "1234567802"}
	h.core.cards.Add("cd34", other)
	h.core.ApplyChange(store.Change{AccountID: 99, Username: "new.person", EDIPI: "1234567801"})
	if _, ok := h.core.cards.Peek("cd34"); !ok || other.dropped.Load() {
		t.Fatal("a change for another DoD ID dropped an unrelated entry")
	}
}

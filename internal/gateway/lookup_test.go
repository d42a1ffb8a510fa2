package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
)

// A card's look-up on a cache miss runs on the goroutine of the request
// that started it (singleflight Do), and every request for the card at
// the time waits for it: what happens to that request must not decide
// what the others are told.

// holdingStore holds the first account look-up until released, then
// answers as a store that honours its context does: a done context's
// error instead of the account.
type holdingStore struct {
	Store
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
	// panics makes the first look-up panic once released.
	panics bool
}

func (s *holdingStore) AccountByFingerprint(ctx context.Context, fp string) (*store.Account, error) {
	if s.calls.Add(1) == 1 {
		close(s.entered)
		<-s.release
		if s.panics {
			panic("look-up failed badly")
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return s.Store.AccountByFingerprint(ctx, fp)
}

// linkedThenMissed admits the card once (linking it to its account by its
// DoD ID), then puts s in front of the store and empties the card cache:
// the card's next request looks it up with one read of s.
func linkedThenMissed(t *testing.T, h *harness, doe *testpki.Card, s *holdingStore) {
	t.Helper()
	if d := h.site.Admit(h.request(t, doe, true), time.Now()); d.Outcome != Admitted {
		t.Fatalf("first visit: outcome %d (%v)", d.Outcome, d.Err)
	}
	h.core.cfg.Store = s
	h.core.Invalidate()
}

// TestLookupOutlivesItsRequest: the request whose goroutine runs a card's
// look-up goes away (its client disconnects) mid-look-up; the look-up
// runs on to its end, and the requests that joined it, and those after,
// are admitted: a canceled request's error is nobody else's refusal.
func TestLookupOutlivesItsRequest(t *testing.T) {
	h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
	h.enrollDoe(t)
	doe := testCard(t, "doe.john.quincy")
	hold := &holdingStore{Store: h.db, entered: make(chan struct{}), release: make(chan struct{})}
	linkedThenMissed(t, h, doe, hold)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var first, joined Decision
	wg.Go(func() { first = h.site.Admit(h.request(t, doe, true).WithContext(ctx), time.Now()) })
	select {
	case <-hold.entered:
	case <-time.After(time.Minute):
		t.Fatal("the look-up never reached the store")
	}
	joining := make(chan struct{})
	var once sync.Once
	h.core.beforeLookup = func() { once.Do(func() { close(joining) }) }
	wg.Go(func() { joined = h.site.Admit(h.request(t, doe, true), time.Now()) })
	<-joining
	cancel() // the first request's client goes away
	close(hold.release)
	wg.Wait()
	if joined.Outcome != Admitted {
		t.Fatalf("the request that joined the look-up: outcome %d (%v), want Admitted", joined.Outcome, joined.Err)
	}
	if first.Outcome != Admitted {
		t.Fatalf("the request that ran the look-up: outcome %d (%v), want Admitted (its look-up is everyone's)", first.Outcome, first.Err)
	}
	if d := h.site.Admit(h.request(t, doe, true), time.Now()); d.Outcome != Admitted {
		t.Fatalf("the next request: outcome %d (%v)", d.Outcome, d.Err)
	}
	if n := hold.calls.Load(); n != 1 {
		t.Errorf("%d look-ups, want 1 (joined, then cached)", n)
	}
}

// TestLookupPanicIsNotAVerdict: a look-up that panics answers its request
// with the panic (net/http recovers it per connection), leaves nothing
// cached and no flight behind: the card's next request looks it up afresh
// and is admitted.
func TestLookupPanicIsNotAVerdict(t *testing.T) {
	h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
	h.enrollDoe(t)
	doe := testCard(t, "doe.john.quincy")
	hold := &holdingStore{Store: h.db, entered: make(chan struct{}), release: make(chan struct{}), panics: true}
	close(hold.release)
	linkedThenMissed(t, h, doe, hold)

	panicked := func() (p any) {
		defer func() { p = recover() }()
		h.site.Admit(h.request(t, doe, true), time.Now())
		return nil
	}()
	if panicked == nil {
		t.Fatal("the look-up's panic did not reach its request")
	}
	if d := h.site.Admit(h.request(t, doe, true), time.Now()); d.Outcome != Admitted {
		t.Fatalf("the request after the panic: outcome %d (%v), want Admitted", d.Outcome, d.Err)
	}
	if n := hold.calls.Load(); n != 2 {
		t.Errorf("%d look-ups, want 2", n)
	}
}

package gateway

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/store"
)

// fakeFeed is a change feed the test drives: Watch hands it its callbacks
// and the test calls them, as the store's listener would.
type fakeFeed struct {
	ready   chan struct{}
	fn      func(store.Change)
	onError func(error)
}

func (f *fakeFeed) CanWatch() bool { return true }

func (f *fakeFeed) WatchWithErrors(ctx context.Context, fn func(store.Change), onError func(error)) error {
	f.fn, f.onError = fn, onError
	close(f.ready)
	<-ctx.Done()
	return nil
}

// follow starts h.core.Watch on a fake feed and returns the feed once
// Watch listens to it; it stops when the test ends.
func follow(t *testing.T, h *harness) *fakeFeed {
	t.Helper()
	f := &fakeFeed{ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.core.Watch(ctx, f); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-f.ready:
	case <-time.After(time.Minute):
		t.Fatal("Watch never followed the feed")
	}
	return f
}

// failingStore fails every account lookup while down is set: the
// database unreachable.
type failingStore struct {
	Store
	down    atomic.Bool
	lookups atomic.Int32
}

var errUnreachable = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (s *failingStore) AccountByFingerprint(ctx context.Context, fp string) (*store.Account, error) {
	s.lookups.Add(1)
	if s.down.Load() {
		return nil, errUnreachable
	}
	return s.Store.AccountByFingerprint(ctx, fp)
}

func (s *failingStore) AccountByEDIPI(ctx context.Context, edipi string) (*store.Account, error) {
	s.lookups.Add(1)
	if s.down.Load() {
		return nil, errUnreachable
	}
	return s.Store.AccountByEDIPI(ctx, edipi)
}

// TestFeedOutageRechecksCachedCards: while the change feed is down, a
// change another node makes (announced to nobody) still reaches cached
// cards, by re-checking them against the database; while the feed
// listens, the cache is trusted and the feed alone brings changes.
func TestFeedOutageRechecksCachedCards(t *testing.T) {
	h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
	h.core.recheckAfter = 0 // every use re-checks while the feed is down
	// However slow the machine, the re-check is waited for.
	h.core.recheckWait = time.Hour
	feed := follow(t, h)
	feed.fn(store.Change{Resync: true, Listening: true})
	acct := h.enrollDoe(t)
	doe := testCard(t, "doe.john.quincy")
	admit := func() Outcome { return h.site.Admit(h.request(t, doe, true), time.Now()).Outcome }
	if o := admit(); o != Admitted {
		t.Fatalf("first visit: outcome %d", o)
	}

	// Listening: an unannounced change is not seen (cache_ttl is an hour),
	// which is what makes the outage case below a real test.
	if _, err := h.db.SetStatus(context.Background(), acct.Username, store.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if o := admit(); o != Admitted {
		t.Fatalf("feed up, change unannounced: outcome %d, want the cached Admitted", o)
	}
	if _, err := h.db.SetStatus(context.Background(), acct.Username, store.StatusActive); err != nil {
		t.Fatal(err)
	}

	feed.onError(errors.New("connection reset by peer"))
	if got := value(t, h.core.cfg.Metrics.FeedConnected); got != 0 {
		t.Errorf("change_feed_connected = %v during the outage, want 0", got)
	}
	if o := admit(); o != Admitted {
		t.Fatalf("feed down, nothing changed: outcome %d", o)
	}
	if _, err := h.db.SetStatus(context.Background(), acct.Username, store.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if o := admit(); o != AccountInactive {
		t.Fatalf("feed down, account disabled elsewhere: outcome %d, want AccountInactive at once", o)
	}
}

// TestFeedAndStoreOutageKeepsCachedCards: when the re-check cannot reach
// the database either, a cached card is served until its entry expires
// (no node can change the account meanwhile), a card never seen fails
// closed, and the failed re-check holds off the next for recheckAfter.
func TestFeedAndStoreOutageKeepsCachedCards(t *testing.T) {
	h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
	feed := follow(t, h)
	feed.fn(store.Change{Resync: true, Listening: true})
	h.enrollDoe(t)
	doe := testCard(t, "doe.john.quincy")
	admit := func(c string) Outcome { return h.site.Admit(h.request(t, testCard(t, c), true), time.Now()).Outcome }
	if o := admit("doe.john.quincy"); o != Admitted {
		t.Fatalf("first visit: outcome %d", o)
	}
	entry, ok := h.core.cards.Peek(cacid.Fingerprint(doe.Cert.Raw))
	if !ok {
		t.Fatal("the card is not cached")
	}
	// Checked a minute ago: older than recheckAfter (a second), well
	// within cache_ttl (an hour).
	entry.checked -= int64(time.Minute)

	failing := &failingStore{Store: h.db}
	h.core.cfg.Store = failing
	failing.down.Store(true)
	feed.onError(errors.New("connection refused"))

	if o := admit("doe.john.quincy"); o != Admitted {
		t.Fatalf("feed and database down, card cached: outcome %d, want Admitted", o)
	}
	if n := failing.lookups.Load(); n != 1 {
		t.Errorf("%d lookups, want the one failed re-check", n)
	}
	if got := value(t, h.core.cfg.Metrics.CacheKept); got != 1 {
		t.Errorf("card_cache_lookups_total{result=kept} = %v, want 1", got)
	}
	// Within recheckAfter of that failure: no new attempt.
	if o := admit("doe.john.quincy"); o != Admitted {
		t.Fatalf("again: outcome %d", o)
	}
	if n := failing.lookups.Load(); n != 1 {
		t.Errorf("%d lookups after a second request, want no new attempt so soon", n)
	}
	if o := admit("smith.jane"); o != StoreUnavailable {
		t.Errorf("a card never seen during the outage: outcome %d, want StoreUnavailable", o)
	}
	// Expired, even the cached card fails closed.
	entry.expires = time.Now().Add(-time.Second)
	if o := admit("doe.john.quincy"); o != StoreUnavailable {
		t.Errorf("past cache_ttl: outcome %d, want StoreUnavailable", o)
	}
}

// hangingStore's lookups do not return until released (or their context
// ends): a database that stopped answering without closing connections.
type hangingStore struct {
	Store
	release chan struct{}
}

func (s *hangingStore) AccountByFingerprint(ctx context.Context, fp string) (*store.Account, error) {
	select {
	case <-s.release:
		return s.Store.AccountByFingerprint(ctx, fp)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestRecheckDoesNotHangOnSilentDatabase: a re-check the database does not
// answer gives up after recheckWait and the cached entry serves; the
// re-check goes on and its answer is kept for later requests.
func TestRecheckDoesNotHangOnSilentDatabase(t *testing.T) {
	h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
	h.core.recheckAfter, h.core.recheckWait = 0, 10*time.Millisecond
	feed := follow(t, h)
	feed.fn(store.Change{Resync: true, Listening: true})
	h.enrollDoe(t)
	doe := testCard(t, "doe.john.quincy")
	if o := h.site.Admit(h.request(t, doe, true), time.Now()).Outcome; o != Admitted {
		t.Fatalf("first visit: outcome %d", o)
	}
	hanging := &hangingStore{Store: h.db, release: make(chan struct{})}
	h.core.cfg.Store = hanging
	feed.onError(errors.New("no answer to the connection check"))
	if o := h.site.Admit(h.request(t, doe, true), time.Now()).Outcome; o != Admitted {
		t.Fatalf("re-check unanswered: outcome %d, want the cached Admitted", o)
	}
	if got := value(t, h.core.cfg.Metrics.CacheKept); got != 1 {
		t.Errorf("kept = %v, want 1", got)
	}
	close(hanging.release)
}

// TestFeedCounters: the resync counter counts reconnections, not the
// first listen; a node's own changes are not counted as another node's;
// the gauges follow the feed.
func TestFeedCounters(t *testing.T) {
	h := newHarness(t, SiteConfig{ConsentTTL: time.Hour})
	m := h.core.cfg.Metrics
	count := func(origin string) float64 { return value(t, m.Changes.WithLabelValues(origin)) }
	feed := follow(t, h)
	if got := value(t, m.FeedConnected); got != 0 {
		t.Errorf("connected = %v before the first listen", got)
	}
	if h.core.feedDownSince.Load() == 0 {
		t.Error("the cache is trusted before the feed first listens")
	}
	feed.fn(store.Change{Resync: true, Listening: true})
	if got := count("resync"); got != 0 {
		t.Errorf("resync = %v after the first listen, want 0", got)
	}
	if got := value(t, m.FeedConnected); got != 1 {
		t.Errorf("connected = %v while listening", got)
	}
	if got := value(t, m.FeedResync); got < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("last resync timestamp = %v", got)
	}
	if h.core.feedDownSince.Load() != 0 {
		t.Error("the cache is distrusted while the feed listens")
	}

	fp := cacid.Fingerprint(testCard(t, "doe.john.quincy").Cert.Raw)
	feed.fn(store.Change{AccountID: 7, Fingerprints: []string{fp}, Own: true})
	feed.fn(store.Change{Resync: true, Own: true})
	if got := count("remote"); got != 0 {
		t.Errorf("remote = %v after two of the node's own changes, want 0", got)
	}
	feed.fn(store.Change{AccountID: 8})
	feed.fn(store.Change{Resync: true}) // another node's change too large to list
	if got := count("remote"); got != 2 {
		t.Errorf("remote = %v after two other nodes' changes, want 2", got)
	}

	feed.onError(errors.New("connection reset"))
	feed.onError(errors.New("connection refused"))
	feed.fn(store.Change{Resync: true, Listening: true})
	if got := count("resync"); got != 1 {
		t.Errorf("resync = %v after one reconnection, want 1", got)
	}
	if got := value(t, m.FeedConnected); got != 1 {
		t.Errorf("connected = %v after reconnecting", got)
	}
}

// value reads a counter's or gauge's current value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", m.Desc())
	return 0
}

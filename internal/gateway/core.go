package gateway

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/cacgate/cacgate/assertion"
	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/metrics"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/revocation"
)

// Store is what the core needs of the account database.
type Store interface {
	AccountByFingerprint(ctx context.Context, fingerprint string) (*store.Account, error)
	AccountByEDIPI(ctx context.Context, edipi string) (*store.Account, error)
	AccountByKey(ctx context.Context, kind, key string) (*store.Account, error)
	AccountByUsername(ctx context.Context, username string) (*store.Account, error)
	AutoLinkCard(ctx context.Context, accountID int64, c store.Card) error
	TouchCard(ctx context.Context, fingerprint string, at time.Time) error
	// NPEAccount is the utility account a non-person certificate is
	// registered to (see npe.go), or store.ErrNotFound.
	NPEAccount(ctx context.Context, fingerprint, subject, issuer string) (*store.Account, error)
}

// Config is what a Core is made of. Every field is required except Logger.
type Config struct {
	Store      Store
	Revocation *revocation.Checker
	Signer     *assertion.Signer
	Consents   *consent.Cache
	Audit      *audit.Log
	Metrics    *metrics.Metrics
	Logger     *zap.Logger
	// Sessions hears of password sessions ended on other nodes; may be nil.
	Sessions SessionEvents
	// AnnouncementsChanged, if set, is called from the change feed when
	// another node (or this one) changed the announcements, and after a
	// resync, when such a change may have been missed.
	AnnouncementsChanged func()

	// CacheSize bounds the cached cards; CacheTTL is how long a card's
	// account mapping is trusted without asking the database again.
	CacheSize int
	CacheTTL  time.Duration
	// AssertionTTL is the lifetime of a signed assertion.
	AssertionTTL time.Duration
	// LinkByEDIPI links an unregistered card to the account holding its
	// DoD ID on first use (and a non-DoD credential to the account of its
	// kind and key: another certificate of the same PIV card, or an ECA
	// certificate renewed under the same name).
	LinkByEDIPI bool
	// Identity tunes how non-DoD certificates are read (the ECA key).
	// Every site of the config reads them alike: accounts are keyed by
	// what this says.
	Identity cacid.Options
	// CardLinked, if set, is told of a card linked by DoD ID (the
	// holder's e-mail notice).
	CardLinked func(ctx context.Context, acct *store.Account, id *cacid.Identity)
}

// Core is the state every site of a config shares: one per config load.
type Core struct {
	cfg     Config
	cards   *lru.Cache[string, *Entry]
	lookups singleflight.Group
	// epoch is bumped by every local change to accounts or cards; cached
	// entries from an older epoch are rebuilt, so a change made through
	// this node takes effect here at once.
	epoch atomic.Uint64
	// changeGen counts changes announced by other nodes; see keep.
	changeGen atomic.Uint64

	// feedDownSince is when the change feed stopped listening (Unix
	// nanoseconds), 0 while it listens or when there is no feed; see
	// distrusted. storeFailedAt is when a re-check it called for last
	// failed to reach the database.
	feedDownSince atomic.Int64
	storeFailedAt atomic.Int64
	// recheckAfter and recheckWait are feedDownRecheck, but for tests.
	recheckAfter, recheckWait time.Duration
	// feedListened is set once the change feed has listened: a later
	// resync follows a lost connection.
	feedListened atomic.Bool

	// beforeLookup, when set (by tests), runs as a request is about to
	// join or start a card's build.
	beforeLookup func()
}

// New returns a Core for cfg.
func New(cfg Config) (*Core, error) {
	switch {
	case cfg.Store == nil || cfg.Revocation == nil || cfg.Signer == nil || cfg.Consents == nil || cfg.Audit == nil || cfg.Metrics == nil:
		return nil, errors.New("gateway: incomplete configuration")
	case cfg.CacheSize < 1 || cfg.CacheTTL <= 0 || cfg.AssertionTTL <= 0:
		return nil, errors.New("gateway: cache size and lifetimes must be positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	c := &Core{cfg: cfg, recheckAfter: feedDownRecheck, recheckWait: feedDownRecheck}
	// An entry leaving the cache for any reason is marked dropped: the
	// sites' entries hold it past eviction, and a change announced by
	// another node can only reach the entries still in the cache. Entries
	// expire by their own clock (Entry.Stale), so the cache needs no
	// timer of its own (golang-lru's expirable LRU starts a goroutine that
	// outlives the config).
	cards, err := lru.NewWithEvict[string, *Entry](cfg.CacheSize, func(_ string, e *Entry) { e.dropped.Store(true) })
	if err != nil {
		return nil, err
	}
	c.cards = cards
	return c, nil
}

// Invalidate makes every cached card mapping stale, after a change made on
// this node (admin, enrollment, self-service).
func (c *Core) Invalidate() {
	c.cfg.Metrics.Changes.WithLabelValues("local").Inc()
	c.epoch.Add(1)
	c.cards.Purge()
}

// CacheStats returns how many cards the cache holds and how many it can.
func (c *Core) CacheStats() (entries, capacity int) { return c.cards.Len(), c.cfg.CacheSize }

// FeedState describes the change feed for people: listening, reconnecting
// since when, or none (a store that cannot announce changes).
func (c *Core) FeedState() string {
	if !c.feedListened.Load() {
		if c.feedDownSince.Load() != 0 {
			return "not listening yet: changes made on other nodes take effect within cache_ttl"
		}
		return "none: changes made on other nodes take effect within cache_ttl"
	}
	if since := c.feedDownSince.Load(); since != 0 {
		return "reconnecting since " + time.Unix(0, since).UTC().Format(time.RFC3339)
	}
	return "listening: changes made on other nodes take effect at once"
}

// Consents is the consent token cache the core checks banners with.
func (c *Core) Consents() *consent.Cache { return c.cfg.Consents }

// Signer signs the sites' assertions.
func (c *Core) Signer() *assertion.Signer { return c.cfg.Signer }

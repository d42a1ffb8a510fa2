package gateway

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/store"
)

// Cross-node cache coherence.
//
// Every node caches card → account mappings for cache_ttl. A change made
// on this node (admin API, enrollment) bumps the epoch and so takes effect
// here at once. A change made on another node takes effect here within
// cache_ttl at worst, and at once when the store can announce changes:
// PostgreSQL delivers each committed change (store.Change) by NOTIFY, and
// the entries it names are dropped.
//
// When the feed's connection is lost, changes go unheard until it listens
// again (it retries every second) and the cache is dropped (a resync).
// Meanwhile an entry is trusted for a second after it was last checked
// against the database, then checked again (distrusted), so a change still
// reaches this node within about a second if the database is up. If the
// database cannot answer the re-check either, nobody can change accounts
// through it, and the entry is used until it expires.

// SessionEvents is told of password-session changes announced by other
// nodes (the session cache's side of the change feed).
type SessionEvents interface {
	// Ended: the session was signed out on another node.
	Ended(id string, expires, now time.Time)
	// Resync: announcements may have been missed; check every session again.
	Resync()
}

// ChangeFeed is implemented by stores that announce committed changes to
// every process using the database.
type ChangeFeed interface {
	CanWatch() bool
	WatchWithErrors(ctx context.Context, fn func(store.Change), onError func(error)) error
}

// Watch follows the store's change feed until ctx is done (the
// config unloads). The store reconnects on its own and reports a Resync
// with Listening after any gap, so this loop needs no retry of its own.
// Until the feed first listens, and whenever it is lost, the cache is
// distrusted (see distrusted).
func (c *Core) Watch(ctx context.Context, w ChangeFeed) {
	c.cfg.Logger.Info("following account changes announced by other nodes")
	c.cfg.Metrics.ChangeFeed()
	c.feedDownSince.Store(time.Now().UnixNano())
	var failures int
	onError := func(err error) {
		failures++
		c.feedLost(err, failures)
	}
	apply := func(ch store.Change) {
		if ch.Listening && failures > 0 {
			c.cfg.Logger.Info("account change feed listening again; cached cards dropped",
				zap.Int("failed_attempts", failures),
				zap.Duration("down_for", time.Duration(time.Now().UnixNano()-c.feedDownSince.Load())))
			failures = 0
		}
		c.ApplyChange(ch)
	}
	if err := w.WatchWithErrors(ctx, apply, onError); err != nil && ctx.Err() == nil {
		// Never for a store that CanWatch; should it happen, re-checking
		// every second for good would be a load nobody asked for.
		c.feedDownSince.Store(0)
		c.cfg.Logger.Error("account change feed stopped; changes made on other nodes now take effect within cache_ttl",
			zap.Error(err))
	}
}

// feedLost marks the feed down (the failures-th failed attempt in a row).
// The first failure of an outage is a warning; the retries, one a second,
// are not worth one each.
func (c *Core) feedLost(err error, failures int) {
	if failures == 1 {
		if c.feedDownSince.Load() == 0 {
			c.feedDownSince.Store(time.Now().UnixNano())
		}
		c.cfg.Metrics.FeedConnected.Set(0)
		c.cfg.Logger.Warn("account change feed interrupted; reconnecting every second, and re-checking cached cards against the database meanwhile",
			zap.Error(err))
		return
	}
	c.cfg.Logger.Debug("account change feed still reconnecting", zap.Int("failed_attempts", failures), zap.Error(err))
}

// ApplyChange drops what the cache holds about a changed account or card.
// It cannot know which cached entries a change affects by key alone (an
// unregistered card's entry may point at the account by DoD ID, a password
// session's entry is keyed by username), so it looks at each entry; that is
// cheap next to the database reads the dropped entries will cost.
//
// A change this node made itself (Own) was applied when it was made; it is
// applied again (harmless, and a write that skipped the local invalidation
// is covered) but not counted as another node's.
func (c *Core) ApplyChange(ch store.Change) {
	// Entries being built right now may have read the old state: the
	// generation tells card() and userEntry() not to keep them.
	if ch.Announcements {
		// Not about accounts: nothing cached here depends on them.
		if c.cfg.AnnouncementsChanged != nil {
			c.cfg.AnnouncementsChanged()
		}
		return
	}
	c.changeGen.Add(1)
	if ch.Resync {
		if c.cfg.AnnouncementsChanged != nil {
			// Announcements may have been missed too.
			c.cfg.AnnouncementsChanged()
		}
		switch {
		case ch.Listening && c.feedListened.Swap(true):
			c.cfg.Metrics.Changes.WithLabelValues("resync").Inc()
		case ch.Listening:
			// The first listen: nothing was missed, nothing to count.
		case !ch.Own:
			c.cfg.Metrics.Changes.WithLabelValues("remote").Inc()
		}
		c.epoch.Add(1)
		c.cards.Purge()
		if c.cfg.Sessions != nil {
			// Sign-outs may have been missed: check every session again.
			c.cfg.Sessions.Resync()
		}
		if ch.Listening {
			// Only now: entries built from here on hear of every change.
			c.feedDownSince.Store(0)
			c.cfg.Metrics.FeedConnected.Set(1)
			c.cfg.Metrics.FeedResync.SetToCurrentTime()
		}
		return
	}
	if !ch.Own {
		c.cfg.Metrics.Changes.WithLabelValues("remote").Inc()
	}
	if ch.EndedSession != "" {
		if c.cfg.Sessions != nil {
			c.cfg.Sessions.Ended(ch.EndedSession, time.Unix(ch.EndedSessionExpires, 0), time.Now())
		}
		return
	}
	c.drop(ch)
}

// drop removes the cached entries a change concerns, marking them dropped
// for the sites that still hold them.
func (c *Core) drop(ch store.Change) {
	userKey := consent.UserPrincipal(ch.Username)
	for _, key := range c.cards.Keys() {
		e, ok := c.cards.Peek(key)
		if !ok {
			continue
		}
		if (ch.Username != "" && key == userKey) || slices.Contains(ch.Fingerprints, key) || e.concerns(ch) {
			e.dropped.Store(true)
			c.cards.Remove(key)
		}
	}
}

// concerns reports whether the entry was built from the account c names,
// or is for a card with the DoD ID (or non-DoD credential kind and key) c
// names (an account created or given that ID elsewhere: the card may now
// be linked by it).
func (e *Entry) concerns(c store.Change) bool {
	if c.EDIPI != "" && e.edipi == c.EDIPI {
		return true
	}
	if c.Key != "" && e.key == c.Key && e.kind == c.Kind {
		return true
	}
	for _, acct := range [...]*store.Account{e.Account, e.ByEDIPI} {
		if acct == nil {
			continue
		}
		if (c.AccountID != 0 && acct.ID == c.AccountID) || (c.EDIPI != "" && acct.EDIPI == c.EDIPI) {
			return true
		}
	}
	return false
}

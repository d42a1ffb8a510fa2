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
// after any gap, so this loop needs no retry of its own.
func (c *Core) Watch(ctx context.Context, w ChangeFeed) {
	c.cfg.Logger.Info("following account changes announced by other nodes")
	onError := func(err error) {
		c.cfg.Logger.Warn("account change feed interrupted; reconnecting (the cache is dropped once it is back)", zap.Error(err))
	}
	if err := w.WatchWithErrors(ctx, c.ApplyChange, onError); err != nil && ctx.Err() == nil {
		c.cfg.Logger.Error("account change feed stopped; changes made on other nodes now take effect within cache_ttl",
			zap.Error(err))
	}
}

// ApplyChange drops what the cache holds about a changed account or card.
// It cannot know which cached entries a change affects by key alone (an
// unregistered card's entry may point at the account by DoD ID, a password
// session's entry is keyed by username), so it looks at each entry; that is
// cheap next to the database reads the dropped entries will cost.
func (c *Core) ApplyChange(ch store.Change) {
	// Entries being built right now may have read the old state: the
	// generation tells card() and userEntry() not to keep them.
	c.changeGen.Add(1)
	if ch.Resync {
		c.cfg.Metrics.Changes.WithLabelValues("resync").Inc()
		c.epoch.Add(1)
		c.cards.Purge()
		if c.cfg.Sessions != nil {
			// Sign-outs may have been missed: check every session again.
			c.cfg.Sessions.Resync()
		}
		return
	}
	if ch.EndedSession != "" {
		c.cfg.Metrics.Changes.WithLabelValues("remote").Inc()
		if c.cfg.Sessions != nil {
			c.cfg.Sessions.Ended(ch.EndedSession, time.Unix(ch.EndedSessionExpires, 0), time.Now())
		}
		return
	}
	c.cfg.Metrics.Changes.WithLabelValues("remote").Inc()
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
// or is for a card with the DoD ID c names (an account created or given
// that ID elsewhere: the card may now be linked by it).
func (e *Entry) concerns(c store.Change) bool {
	if c.EDIPI != "" && e.edipi == c.EDIPI {
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

package caddymodule

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

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

// changeWatcher is implemented by stores that announce committed changes
// to every process using the database.
type changeWatcher interface {
	CanWatch() bool
	WatchWithErrors(ctx context.Context, fn func(store.Change), onError func(error)) error
}

// watchChanges follows the store's change feed until ctx is done (the
// config unloads). The store reconnects on its own and reports a Resync
// after any gap, so this loop needs no retry of its own.
func (a *App) watchChanges(ctx context.Context, w changeWatcher) {
	a.logger.Info("following account changes announced by other nodes")
	onError := func(err error) {
		a.logger.Warn("account change feed interrupted; reconnecting (the cache is dropped once it is back)", zap.Error(err))
	}
	if err := w.WatchWithErrors(ctx, a.applyChange, onError); err != nil && ctx.Err() == nil {
		a.logger.Error("account change feed stopped; changes made on other nodes now take effect within cache_ttl",
			zap.Error(err))
	}
}

// applyChange drops what the cache holds about a changed account or card.
// It cannot know which cached entries a change affects by key alone (an
// unregistered card's entry may point at the account by DoD ID, a password
// session's entry is keyed by username), so it looks at each entry; that is
// cheap next to the database reads the dropped entries will cost.
func (a *App) applyChange(c store.Change) {
	// Entries being built right now may have read the old state: the
	// generation tells card() and userEntry() not to keep them.
	a.changeGen.Add(1)
	if c.Resync {
		a.metrics.Changes.WithLabelValues("resync").Inc()
		a.epoch.Add(1)
		if a.cards != nil {
			a.cards.Purge()
		}
		if a.sessions != nil {
			// Sign-outs may have been missed: check every session again.
			a.sessions.Purge()
		}
		return
	}
	if c.EndedSession != "" {
		a.metrics.Changes.WithLabelValues("remote").Inc()
		if a.sessions != nil {
			a.sessions.End(c.EndedSession, time.Unix(c.EndedSessionExpires, 0), time.Now())
		}
		return
	}
	a.metrics.Changes.WithLabelValues("remote").Inc()
	if a.cards == nil {
		return
	}
	userKey := "user:" + c.Username
	for _, key := range a.cards.Keys() {
		e, ok := a.cards.Peek(key)
		if !ok {
			continue
		}
		if (c.Username != "" && key == userKey) || slices.Contains(c.Fingerprints, key) || e.concerns(c) {
			e.dropped.Store(true)
			a.cards.Remove(key)
		}
	}
}

// concerns reports whether the entry was built from the account c names,
// or is for a card with the DoD ID c names (an account created or given
// that ID elsewhere: the card may now be linked by it).
func (e *cardEntry) concerns(c store.Change) bool {
	if c.EDIPI != "" && e.edipi == c.EDIPI {
		return true
	}
	for _, acct := range [...]*store.Account{e.account, e.byEDIPI} {
		if acct == nil {
			continue
		}
		if (c.AccountID != 0 && acct.ID == c.AccountID) || (c.EDIPI != "" && acct.EDIPI == c.EDIPI) {
			return true
		}
	}
	return false
}

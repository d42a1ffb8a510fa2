package caddymodule

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// The self-enrollment flow's per-card attempt limits are counted in the
// account database when the store can (store.Throttler), so that every
// node behind a load balancer sees the same counts: otherwise each node
// would grant a card, or a stolen card, its own allowance.

// enrollAttemptPrefix namespaces the flow's counters in the store's shared
// table of attempts.
const enrollAttemptPrefix = "enroll:"

// Expired counters are pruned every attemptPruneInterval. A counter is
// kept for attemptRetention after its window began: twice the flow's
// longest window, so that a node whose clock runs behind the pruning
// node's never finds a live count gone.
const (
	attemptPruneInterval = 10 * time.Minute
	attemptRetention     = 2 * selfservice.ThrottleWindow
	attemptPruneTimeout  = 30 * time.Second
)

// storeThrottle is the flow's Throttle on the account database.
type storeThrottle struct{ t store.Throttler }

var _ selfservice.Throttle = storeThrottle{}

func (s storeThrottle) Take(ctx context.Context, key string, now time.Time, window time.Duration, max int) (bool, error) {
	return s.t.TakeAttempt(ctx, enrollAttemptPrefix+key, now, window, max)
}

func (s storeThrottle) Refund(ctx context.Context, key string) error {
	return s.t.RefundAttempt(ctx, enrollAttemptPrefix+key)
}

func (s storeThrottle) Failures(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	return s.t.Attempts(ctx, enrollAttemptPrefix+key, now, window)
}

// throttler returns the app's store as a store.Throttler, or nil before
// it has one.
func (a *App) throttler() store.Throttler {
	if a.store == nil {
		return nil
	}
	return a.store
}

// enrollThrottle is the Throttle for the app's enrollment flows: the
// account database's when it has one, else nil, which leaves each flow
// counting in this node's memory.
func (a *App) enrollThrottle() selfservice.Throttle {
	if t := a.throttler(); t != nil {
		return storeThrottle{t}
	}
	return nil
}

// startAttemptPruning deletes expired attempt counters in the background
// until ctx is done (the app's config is unloaded). Every node prunes; the
// deletes are idempotent.
func (a *App) startAttemptPruning(ctx context.Context) {
	t := a.throttler()
	if t == nil {
		a.logger.Warn("the account store cannot share attempt counts: self-enrollment attempt limits hold per node")
		return
	}
	go pruneAttempts(ctx, t, a.logger, attemptPruneInterval, time.Now)
}

func pruneAttempts(ctx context.Context, t store.Throttler, logger *zap.Logger, every time.Duration, now func() time.Time) {
	pruneEvery(ctx, logger, every, "expired attempt counts", func(ctx context.Context) (int64, error) {
		return t.PruneAttempts(ctx, now().Add(-attemptRetention))
	})
}

// pruneEvery runs prune every interval until ctx is done, each run bounded
// by attemptPruneTimeout. Nothing depends on pruning but a table's size, so
// a failed run is logged and the next tick tries again.
func pruneEvery(ctx context.Context, logger *zap.Logger, every time.Duration, what string, prune func(context.Context) (int64, error)) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		pctx, cancel := context.WithTimeout(ctx, attemptPruneTimeout)
		n, err := prune(pctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("pruning "+what, zap.Error(err))
		case n > 0:
			logger.Debug("pruned "+what, zap.Int64("deleted", n))
		}
	}
}

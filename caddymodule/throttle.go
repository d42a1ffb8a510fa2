package caddymodule

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/selfservice"
)

// startAttemptPruning deletes the self-service attempt guard's expired
// counters in the account database in the background until ctx is done
// (the app's config is unloaded).
func (a *App) startAttemptPruning(ctx context.Context) {
	go selfservice.PruneAttempts(ctx, a.store, selfservice.PruneInterval, time.Now,
		func(err error) { a.logger.Warn("pruning expired attempt counts", zap.Error(err)) },
		func(n int64) { a.logger.Debug("pruned expired attempt counts", zap.Int64("deleted", n)) })
}

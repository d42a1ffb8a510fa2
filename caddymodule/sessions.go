package caddymodule

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/session"
)

// provisionSessions builds the password-session manager on the account
// store (which records sign-outs and session_limit for every node) and
// starts pruning the records of sessions over, until the config unloads.
func (a *App) provisionSessions(ctx context.Context, master []byte) error {
	tokens, err := session.NewTokens(master)
	if err != nil {
		return err
	}
	// A verified token is remembered for at most ten minutes: nodes that
	// the change feed cannot tell of a sign-out find out within that.
	a.sessions = session.NewManager(tokens, a.store, a.CacheSize, 10*time.Minute, a.logger.Named("sessions"))
	go a.sessions.Run(ctx, session.PruneInterval, time.Now)
	return nil
}

// endSession signs session s out on every node. It reports whether the
// database recorded it; either way this node refuses the session at once.
func (a *App) endSession(ctx context.Context, s session.Session, now time.Time) bool {
	if err := a.sessions.EndEverywhere(ctx, s, now); err != nil {
		a.logger.Error("recording a sign-out: other nodes may accept the session's tokens until they expire",
			zap.String("username", s.Username), zap.Error(err))
		return false
	}
	return true
}

package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/cacgate/cacgate/internal/session"
)

// provisionSessions builds the password-session manager on the account
// store (which records sign-outs and session_limit for every node) and
// starts pruning the records of sessions over, until the config unloads.
func (a *App) provisionSessions(ctx caddy.Context, master []byte) error {
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

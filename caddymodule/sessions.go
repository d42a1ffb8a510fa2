package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/store"
)

// Signing out ends a password session on the server too. The session token
// is a signed cookie that any node verifies on its own, so deleting the
// browser's cookie would leave a copy taken earlier valid until the token
// expired. A sign-out therefore records the session's ID in the account
// database (store.SessionEnder) and tells the other nodes through the
// change feed; every node refuses the session's tokens, renewed ones
// included, from then on. Nodes that cannot be told (SQLite shared by
// several processes) find out when they next verify the token, within the
// session cache's ten minutes.

// Ended-session records are pruned every endedSessionPruneInterval, once
// the session they name has expired.
const endedSessionPruneInterval = 10 * time.Minute

// sessionEnder returns the app's store as a store.SessionEnder, or nil.
func (a *App) sessionEnder() store.SessionEnder {
	if a.store == nil {
		return nil
	}
	return a.store
}

// provisionSessionEnding connects the session cache to the database's
// record of ended sessions and starts pruning it.
func (a *App) provisionSessionEnding(ctx context.Context) {
	e := a.sessionEnder()
	if e == nil {
		a.logger.Warn("the account store cannot record sign-outs: a copied password-session token stays valid until it expires")
		return
	}
	a.sessions.Ended = e.SessionEnded
	go pruneEndedSessions(ctx, e, a.logger, endedSessionPruneInterval, time.Now)
}

// endSession signs session s out on every node. It reports whether the
// database recorded it; either way this node refuses the session at once.
func (a *App) endSession(ctx context.Context, s consent.Session, now time.Time) bool {
	a.sessions.End(s.ID, s.Expires, now)
	e := a.sessionEnder()
	if e == nil {
		return false
	}
	if err := e.EndSession(ctx, s.ID, s.Expires); err != nil {
		a.logger.Error("recording a sign-out: other nodes may accept the session's tokens until they expire",
			zap.String("username", s.Username), zap.Error(err))
		return false
	}
	return true
}

func pruneEndedSessions(ctx context.Context, e store.SessionEnder, logger *zap.Logger, every time.Duration, now func() time.Time) {
	pruneEvery(ctx, logger, every, "ended sessions", func(ctx context.Context) (int64, error) {
		return e.PruneEndedSessions(ctx, now())
	})
}

// startLimitedSession records session s and ends the person's oldest
// sessions beyond limit, on this node at once and on the others through
// the change feed; each is audited as session.ended.
func (a *App) startLimitedSession(r *http.Request, s consent.Session, limit int, now time.Time) error {
	e := a.sessionEnder()
	if e == nil {
		return errors.New("the account store cannot record sessions")
	}
	ended, err := e.StartSession(r.Context(), store.LiveSession{ID: s.ID, Username: s.Username, Created: now, Expires: s.Expires}, limit, now)
	if err != nil {
		return err
	}
	for _, old := range ended {
		a.sessions.End(old.ID, old.Expires, now)
		a.audit.Request(r, "session.ended", audit.Success, zap.String("username", old.Username),
			zap.String("reason", "session_limit"), zap.Int("session_limit", limit))
	}
	return nil
}

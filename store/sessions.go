package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SessionEnder records password sessions that ended before their time (a
// sign-out), in the database every node reads, so that a copy of a
// signed-out session token is refused everywhere and not only by the
// browser that deleted its cookie.
type SessionEnder interface {
	// EndSession records that session id ended; expires is the session's
	// own end, until which the record is kept. Ending a session twice is
	// not an error. Other processes are told through the change feed
	// (Change.EndedSession) where the store can notify.
	EndSession(ctx context.Context, id string, expires time.Time) error

	// SessionEnded reports whether session id was ended.
	SessionEnded(ctx context.Context, id string) (bool, error)

	// PruneEndedSessions deletes the records of sessions that expired
	// before before, and returns how many it deleted.
	PruneEndedSessions(ctx context.Context, before time.Time) (int64, error)
}

var _ SessionEnder = (*SQLStore)(nil)

// MaxSessionIDLen is the longest session ID the store records.
const MaxSessionIDLen = 64

const (
	endSessionSQL = `
INSERT INTO ended_sessions (id, expires_at) VALUES (?, ?)
ON CONFLICT (id) DO NOTHING`
	sessionEndedSQL       = `SELECT 1 FROM ended_sessions WHERE id = ?`
	pruneEndedSessionsSQL = `DELETE FROM ended_sessions WHERE expires_at < ?`
)

func checkSessionID(id string) error {
	if id == "" || len(id) > MaxSessionIDLen || !storableKey(id) {
		return fmt.Errorf("session ID must be 1 to %d bytes of text", MaxSessionIDLen)
	}
	return nil
}

// EndSession implements SessionEnder.
func (s *SQLStore) EndSession(ctx context.Context, id string, expires time.Time) error {
	if err := checkSessionID(id); err != nil {
		return fmt.Errorf("store: end session: %w", err)
	}
	err := s.inWriteTx(ctx, func(ex executor) error {
		if _, err := ex.exec(ctx, endSessionSQL, id, expires.Unix()); err != nil {
			return err
		}
		return s.announce(ctx, ex, Change{EndedSession: id, EndedSessionExpires: expires.Unix()})
	})
	if err != nil {
		return fmt.Errorf("store: end session: %w", s.dialect.translate(err))
	}
	return nil
}

// SessionEnded implements SessionEnder.
func (s *SQLStore) SessionEnded(ctx context.Context, id string) (bool, error) {
	if err := checkSessionID(id); err != nil {
		return false, fmt.Errorf("store: session ended: %w", err)
	}
	var one int
	err := s.reads().queryRow(ctx, sessionEndedSQL, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store: session ended: %w", s.dialect.translate(err))
	}
	return true, nil
}

// PruneEndedSessions implements SessionEnder.
func (s *SQLStore) PruneEndedSessions(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.writes().exec(ctx, pruneEndedSessionsSQL, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("store: prune ended sessions: %w", s.dialect.translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune ended sessions: %w", err)
	}
	return n, nil
}

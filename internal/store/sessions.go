package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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

	// PruneEndedSessions deletes the records of sessions (ended or live)
	// that expired before before, and returns how many it deleted.
	PruneEndedSessions(ctx context.Context, before time.Time) (int64, error)

	// StartSession records a new live session of its username and, when
	// limit is positive, ends that person's oldest live sessions beyond
	// limit (the new one counts), as EndSession would; it returns those it
	// ended. Sign-ins of one person on any number of nodes take turns, so
	// the limit holds under races. The account must exist (ErrNotFound).
	StartSession(ctx context.Context, s LiveSession, limit int, now time.Time) ([]LiveSession, error)
}

// LiveSession is a password session as StartSession records it.
type LiveSession struct {
	ID, Username     string
	Created, Expires time.Time
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
	pruneLiveSessionsSQL  = `DELETE FROM live_sessions WHERE expires_at < ?`
	endLiveSessionSQL     = `DELETE FROM live_sessions WHERE id = ?`

	dropExpiredLiveSQL = `DELETE FROM live_sessions WHERE username = ? AND expires_at <= ?`
	startSessionSQL    = `INSERT INTO live_sessions (id, username, created_at, expires_at) VALUES (?, ?, ?, ?)`
	liveSessionsSQL    = `
SELECT id, created_at, expires_at FROM live_sessions
WHERE username = ?
ORDER BY created_at DESC, id DESC`
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
	err := s.inWriteTx(ctx, func(ex executor) error { return s.endSession(ctx, ex, id, expires) })
	if err != nil {
		return fmt.Errorf("store: end session: %w", s.dialect.translate(err))
	}
	return nil
}

// endSession ends session id inside a write transaction and announces it.
func (s *SQLStore) endSession(ctx context.Context, ex executor, id string, expires time.Time) error {
	if _, err := ex.exec(ctx, endSessionSQL, id, expires.Unix()); err != nil {
		return err
	}
	if _, err := ex.exec(ctx, endLiveSessionSQL, id); err != nil {
		return err
	}
	return s.announce(ctx, ex, Change{EndedSession: id, EndedSessionExpires: expires.Unix()})
}

// StartSession implements SessionEnder.
func (s *SQLStore) StartSession(ctx context.Context, ls LiveSession, limit int, now time.Time) ([]LiveSession, error) {
	if err := checkSessionID(ls.ID); err != nil {
		return nil, fmt.Errorf("store: start session: %w", err)
	}
	if limit < 0 {
		return nil, fmt.Errorf("store: start session: negative limit %d", limit)
	}
	var ended []LiveSession
	err := s.inWriteTx(ctx, func(ex executor) error {
		ended = nil // a retried transaction starts over
		// The account row's lock makes one person's sign-ins take turns.
		if err := ex.execOne(ctx, lockAccountSQL, ls.Username); err != nil {
			return err
		}
		if _, err := ex.exec(ctx, dropExpiredLiveSQL, ls.Username, now.Unix()); err != nil {
			return err
		}
		if _, err := ex.exec(ctx, startSessionSQL, ls.ID, ls.Username, ls.Created.Unix(), ls.Expires.Unix()); err != nil {
			return err
		}
		if limit == 0 {
			return nil
		}
		live, err := liveSessions(ctx, ex, ls.Username)
		if err != nil {
			return err
		}
		// The new session is kept whatever the order says: times are
		// whole seconds, so a sign-in in the same second as an earlier
		// one would otherwise be ended in its place half the time.
		others := slices.DeleteFunc(live, func(l LiveSession) bool { return l.ID == ls.ID })
		for _, old := range others[min(limit-1, len(others)):] {
			if err := s.endSession(ctx, ex, old.ID, old.Expires); err != nil {
				return err
			}
			ended = append(ended, old)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: start session: %w", s.dialect.translate(err))
	}
	return ended, nil
}

// liveSessions returns username's live sessions, newest first.
func liveSessions(ctx context.Context, ex executor, username string) ([]LiveSession, error) {
	rows, err := ex.query(ctx, liveSessionsSQL, username)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LiveSession
	for rows.Next() {
		ls := LiveSession{Username: username}
		var created, expires int64
		if err := rows.Scan(&ls.ID, &created, &expires); err != nil {
			return nil, err
		}
		ls.Created, ls.Expires = fromUnix(created), fromUnix(expires)
		out = append(out, ls)
	}
	return out, rows.Err()
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
	var total int64
	for _, q := range []string{pruneEndedSessionsSQL, pruneLiveSessionsSQL} {
		res, err := s.writes().exec(ctx, q, before.Unix())
		if err != nil {
			return total, fmt.Errorf("store: prune sessions: %w", s.dialect.translate(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("store: prune sessions: %w", err)
		}
		total += n
	}
	return total, nil
}

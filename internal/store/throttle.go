package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Throttler counts attempts per name in the database, so that a limit holds
// across every gateway node sharing it: the self-enrollment flow's
// per-card limits. *SQLStore implements it. Names are the caller's, and up
// to MaxAttemptNameLen printable ASCII characters.
//
// Each name has one counter with the time its window began. A counter
// whose window has passed counts as zero, and the next attempt starts a
// new window. Times are kept in whole seconds, like the rest of the schema.
type Throttler interface {
	// TakeAttempt counts an attempt for name at now, unless max attempts
	// were already counted in the window: it reports whether the attempt
	// was allowed, and counts nothing when it was not. It is one atomic
	// statement, so however many nodes take attempts for the same name
	// at once, at most max are allowed per window.
	TakeAttempt(ctx context.Context, name string, now time.Time, window time.Duration, max int) (allowed bool, err error)

	// RefundAttempt takes back one attempt counted for name, as when an
	// attempt counted in advance turns out not to have failed. The count
	// never goes below zero; refunding a name with none changes nothing.
	RefundAttempt(ctx context.Context, name string) error

	// Attempts returns how many attempts are counted for name in the
	// window at now and when that window began; 0 and the zero time if
	// none are.
	Attempts(ctx context.Context, name string, now time.Time, window time.Duration) (n int, since time.Time, err error)

	// PruneAttempts deletes the counters whose window began before
	// before, and returns how many it deleted. Callers pass now less the
	// longest window any of them uses, so that only expired counters go.
	PruneAttempts(ctx context.Context, before time.Time) (int64, error)
}

var _ Throttler = (*SQLStore)(nil)

// MaxAttemptNameLen is the longest name a Throttler counts under; the
// table's CHECK constraint enforces the same bound.
const MaxAttemptNameLen = 200

// The counter rules as one upsert, so that concurrent takes on any number
// of nodes are serialised by the database on the row:
//
//   - no row: insert one attempt, its window starting now;
//   - a row whose window has passed (started_at at or before now-window)
//     or that refunds brought down to zero: restart at one attempt, now;
//   - a row with fewer than max attempts: one more;
//   - otherwise the DO UPDATE's WHERE is false, the row is left as it is,
//     and RETURNING yields no row: the attempt is refused.
//
// Restarting a zeroed row gives the next failure a whole window, as if the
// row were absent. Parameters are positional and repeated rather than bound
// once through a subquery: SQLite cannot parse INSERT ... SELECT followed
// by ON CONFLICT without a dummy WHERE. The CASTs type them for databases
// that infer parameter types.
const (
	attemptRestarts = `(attempts.started_at <= CAST(? AS BIGINT) OR attempts.n = 0)`

	takeAttemptSQL = `
INSERT INTO attempts (name, n, started_at) VALUES (?, 1, CAST(? AS BIGINT))
ON CONFLICT (name) DO UPDATE SET
    n          = CASE WHEN ` + attemptRestarts + ` THEN 1 ELSE attempts.n + 1 END,
    started_at = CASE WHEN ` + attemptRestarts + ` THEN CAST(? AS BIGINT) ELSE attempts.started_at END
WHERE attempts.started_at <= CAST(? AS BIGINT) OR attempts.n < CAST(? AS INTEGER)
RETURNING n`

	refundAttemptSQL = `UPDATE attempts SET n = n - 1 WHERE name = ? AND n > 0`
	attemptsSQL      = `SELECT n, started_at FROM attempts WHERE name = ?`
	pruneAttemptsSQL = `DELETE FROM attempts WHERE started_at < ?`
)

// checkAttemptName refuses a name the table would refuse, or that could
// not be stored as the same text everywhere: empty, too long, or with
// anything but printable ASCII (PostgreSQL's TEXT cannot hold NUL, and
// non-ASCII text could be normalised or compared differently).
func checkAttemptName(name string) error {
	if name == "" || len(name) > MaxAttemptNameLen {
		return fmt.Errorf("attempt name of %d bytes: must be 1 to %d", len(name), MaxAttemptNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x21 || c > 0x7e {
			return errors.New("attempt name must be printable ASCII without spaces")
		}
	}
	return nil
}

func checkAttemptWindow(window time.Duration) error {
	if window < time.Second {
		return fmt.Errorf("attempt window %v: must be at least a second", window)
	}
	return nil
}

// TakeAttempt implements Throttler.
func (s *SQLStore) TakeAttempt(ctx context.Context, name string, now time.Time, window time.Duration, max int) (bool, error) {
	err := errors.Join(checkAttemptName(name), checkAttemptWindow(window))
	if err == nil && max < 1 {
		err = fmt.Errorf("at most %d attempts: must be at least 1", max)
	}
	if err != nil {
		return false, fmt.Errorf("store: take attempt: %w", err)
	}
	nowSec, windowStart := now.Unix(), now.Add(-window).Unix()
	var n int
	err = s.writes().queryRow(ctx, takeAttemptSQL,
		name, nowSec, // VALUES
		windowStart, windowStart, nowSec, // SET n, SET started_at
		windowStart, max, // WHERE
	).Scan(&n)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store: take attempt: %w", s.dialect.translate(err))
	}
	return true, nil
}

// RefundAttempt implements Throttler.
func (s *SQLStore) RefundAttempt(ctx context.Context, name string) error {
	if err := checkAttemptName(name); err != nil {
		return fmt.Errorf("store: refund attempt: %w", err)
	}
	if _, err := s.writes().exec(ctx, refundAttemptSQL, name); err != nil {
		return fmt.Errorf("store: refund attempt: %w", s.dialect.translate(err))
	}
	return nil
}

// Attempts implements Throttler.
func (s *SQLStore) Attempts(ctx context.Context, name string, now time.Time, window time.Duration) (int, time.Time, error) {
	if err := errors.Join(checkAttemptName(name), checkAttemptWindow(window)); err != nil {
		return 0, time.Time{}, fmt.Errorf("store: attempts: %w", err)
	}
	var n int
	var started int64
	err := s.reads().queryRow(ctx, attemptsSQL, name).Scan(&n, &started)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, time.Time{}, nil
	case err != nil:
		return 0, time.Time{}, fmt.Errorf("store: attempts: %w", s.dialect.translate(err))
	}
	// The same test as takeAttemptSQL's, so that what is read here is
	// what the next take builds on.
	if n == 0 || started <= now.Add(-window).Unix() {
		return 0, time.Time{}, nil
	}
	return n, fromUnix(started), nil
}

// PruneAttempts implements Throttler.
func (s *SQLStore) PruneAttempts(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.writes().exec(ctx, pruneAttemptsSQL, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("store: prune attempts: %w", s.dialect.translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune attempts: %w", err)
	}
	return n, nil
}

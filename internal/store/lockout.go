package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LoginState is where an account stands with failed password sign-ins.
type LoginState struct {
	// Failures is the number of failed sign-ins counted: those since the
	// first one within the window or, while the account is locked, since
	// the count began.
	Failures int
	// Remaining is how many more failures lock the account; 0 while it
	// is locked.
	Remaining int
	// LockedUntil is when the lock ends; zero if the account is not
	// locked.
	LockedUntil time.Time
}

// Locked reports whether the account was locked at the time the state was
// read for.
func (l LoginState) Locked() bool {
	return !l.LockedUntil.IsZero()
}

// The lockout rules, as one UPDATE so that every node's failures are
// counted and exactly one of them locks the account:
//
//   - while locked (locked_until after now), a failure is counted and the
//     lock stays as it is;
//   - otherwise the count restarts at 1 when there is none, when its first
//     failure is window or more before now, or when the lock it led to has
//     expired; else it goes up by one;
//   - a count that reaches the maximum locks the account until now+lockFor.
//
// In every SQL database the expressions of a SET all see the row as it was
// before the UPDATE. The parameters are bound once, by name, through the
// one-row FROM subquery; the CASTs give them their type on databases that
// infer parameter types.
const (
	countRestarts = `(locked_until <= p.now
    OR (locked_until IS NULL AND (first_failed_at IS NULL OR first_failed_at <= p.window_start)))`

	newFailureCount = `CASE WHEN ` + countRestarts + ` THEN 1 ELSE failed_logins + 1 END`

	countFailure = `
UPDATE accounts SET
    failed_logins   = ` + newFailureCount + `,
    first_failed_at = CASE WHEN ` + countRestarts + ` THEN p.now ELSE first_failed_at END,
    locked_until    = CASE WHEN locked_until > p.now THEN locked_until
                           WHEN ` + newFailureCount + ` >= p.max_failures THEN p.lock_until
                      END,
    -- attempts since the last logon, for the last sign-in notice
    failed_since    = failed_since + 1
FROM (SELECT CAST(? AS BIGINT) AS now, CAST(? AS BIGINT) AS window_start,
             CAST(? AS BIGINT) AS max_failures, CAST(? AS BIGINT) AS lock_until) AS p
WHERE accounts.id = ?`

	returningLoginState = `
RETURNING accounts.failed_logins, accounts.first_failed_at, accounts.locked_until`

	recordLoginFailureSQL = countFailure + returningLoginState

	// takeLoginAttemptSQL is recordLoginFailureSQL for an account that
	// is not locked: a locked one is left as it is, and no row returned.
	takeLoginAttemptSQL = countFailure + `
  AND (accounts.locked_until IS NULL OR accounts.locked_until <= p.now)` + returningLoginState

	// releaseLoginAttemptSQL clears the count and the lock whose end is
	// its first parameter (NULL: none), and returns the lock left.
	releaseLoginAttemptSQL = `
UPDATE accounts SET
    failed_logins   = 0,
    first_failed_at = NULL,
    locked_until    = CASE WHEN locked_until = CAST(? AS BIGINT) THEN NULL ELSE locked_until END,
    failed_since    = CASE WHEN failed_since > 0 THEN failed_since - 1 ELSE 0 END
WHERE id = ?
RETURNING locked_until`

	// returnLoginAttemptSQL takes back one failure and the lock whose end
	// is its first parameter (NULL: none), leaving the other failures.
	returnLoginAttemptSQL = `
UPDATE accounts SET
    failed_logins   = CASE WHEN failed_logins > 0 THEN failed_logins - 1 ELSE 0 END,
    first_failed_at = CASE WHEN failed_logins > 1 THEN first_failed_at END,
    locked_until    = CASE WHEN locked_until = CAST(? AS BIGINT) THEN NULL ELSE locked_until END,
    failed_since    = CASE WHEN failed_since > 0 THEN failed_since - 1 ELSE 0 END
WHERE id = ?`

	loginStateSQL = `SELECT failed_logins, first_failed_at, locked_until FROM accounts WHERE id = ?`

	// Neither moves updated_at: sign-in bookkeeping is not an edit of the
	// account, as with last_login_at.
	resetLoginFailuresSQL = `UPDATE accounts SET failed_logins = 0, first_failed_at = NULL WHERE id = ?`
	unlockSQL             = `UPDATE accounts SET failed_logins = 0, first_failed_at = NULL, locked_until = NULL WHERE id = ?`
)

// lockoutPolicy is a lockout's parameters in the schema's whole seconds.
type lockoutPolicy struct {
	now, windowStart int64
	maxFailures      int
}

func newLockoutPolicy(now time.Time, window time.Duration, maxFailures int) (lockoutPolicy, error) {
	if window <= 0 {
		return lockoutPolicy{}, fmt.Errorf("lockout window %v is not positive", window)
	}
	if maxFailures < 1 {
		return lockoutPolicy{}, fmt.Errorf("lockout after %d failures: must be at least 1", maxFailures)
	}
	return lockoutPolicy{
		now:         now.Unix(),
		windowStart: now.Add(-window).Unix(),
		maxFailures: maxFailures,
	}, nil
}

// state applies the lockout rules to a row as stored. Right after
// recordLoginFailureSQL it gives that statement's outcome; at any other
// time, what the next failure would build on.
func (p lockoutPolicy) state(failures int, firstFailed, lockedUntil sql.NullInt64) LoginState {
	switch {
	case lockedUntil.Valid && lockedUntil.Int64 > p.now:
		return LoginState{Failures: failures, LockedUntil: fromUnix(lockedUntil.Int64)}
	case lockedUntil.Valid, !firstFailed.Valid, firstFailed.Int64 <= p.windowStart:
		// The lock expired, or the count ran out of its window: the
		// next failure starts afresh.
		return LoginState{Remaining: p.maxFailures}
	default:
		return LoginState{Failures: failures, Remaining: max(0, p.maxFailures-failures)}
	}
}

// recordLoginFailure does RecordLoginFailure (see observe.go).
func (s *SQLStore) recordLoginFailure(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (LoginState, error) {
	p, err := newLockoutPolicy(now, window, maxFailures)
	if err == nil && lockFor <= 0 {
		err = fmt.Errorf("lockout period %v is not positive", lockFor)
	}
	if err != nil {
		return LoginState{}, fmt.Errorf("store: record login failure: %w", err)
	}
	var (
		failures                 int
		firstFailed, lockedUntil sql.NullInt64
	)
	err = s.writes().queryRow(ctx, recordLoginFailureSQL,
		p.now, p.windowStart, p.maxFailures, unixCeil(now.Add(lockFor)), accountID,
	).Scan(&failures, &firstFailed, &lockedUntil)
	if err != nil {
		return LoginState{}, fmt.Errorf("store: record login failure: %w", s.dialect.translate(err))
	}
	return p.state(failures, firstFailed, lockedUntil), nil
}

// takeLoginAttemptTries bounds how often TakeLoginAttempt retries when the
// lock that refused an attempt is gone by the time it is read (lifted by
// ReleaseLoginAttempt or Unlock in between).
const takeLoginAttemptTries = 5

// takeLoginAttempt does TakeLoginAttempt (see observe.go).
func (s *SQLStore) takeLoginAttempt(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (LoginState, bool, error) {
	p, err := newLockoutPolicy(now, window, maxFailures)
	if err == nil && lockFor <= 0 {
		err = fmt.Errorf("lockout period %v is not positive", lockFor)
	}
	if err != nil {
		return LoginState{}, false, fmt.Errorf("store: take login attempt: %w", err)
	}
	for range takeLoginAttemptTries {
		var (
			failures                 int
			firstFailed, lockedUntil sql.NullInt64
		)
		err := s.writes().queryRow(ctx, takeLoginAttemptSQL,
			p.now, p.windowStart, p.maxFailures, unixCeil(now.Add(lockFor)), accountID,
		).Scan(&failures, &firstFailed, &lockedUntil)
		if err == nil {
			return p.state(failures, firstFailed, lockedUntil), true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return LoginState{}, false, fmt.Errorf("store: take login attempt: %w", s.dialect.translate(err))
		}
		// No such account, or a locked one.
		err = s.writes().queryRow(ctx, loginStateSQL, accountID).Scan(&failures, &firstFailed, &lockedUntil)
		if err != nil {
			return LoginState{}, false, fmt.Errorf("store: take login attempt: %w", s.dialect.translate(err))
		}
		if st := p.state(failures, firstFailed, lockedUntil); st.Locked() {
			return st, false, nil
		}
	}
	return LoginState{}, false, errors.New("store: take login attempt: the account's lock kept changing")
}

// releaseLoginAttempt does ReleaseLoginAttempt (see observe.go).
func (s *SQLStore) releaseLoginAttempt(ctx context.Context, accountID int64, now, ownLock time.Time) (time.Time, error) {
	var lockedUntil sql.NullInt64
	err := s.writes().queryRow(ctx, releaseLoginAttemptSQL, unixOrNull(ownLock), accountID).Scan(&lockedUntil)
	if err != nil {
		return time.Time{}, fmt.Errorf("store: release login attempt: %w", s.dialect.translate(err))
	}
	if lockedUntil.Valid && lockedUntil.Int64 > now.Unix() {
		return fromUnix(lockedUntil.Int64), nil
	}
	return time.Time{}, nil
}

// loginState does LoginState (see observe.go).
func (s *SQLStore) loginState(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int) (LoginState, error) {
	p, err := newLockoutPolicy(now, window, maxFailures)
	if err != nil {
		return LoginState{}, fmt.Errorf("store: login state: %w", err)
	}
	var (
		failures                 int
		firstFailed, lockedUntil sql.NullInt64
	)
	err = s.reads().queryRow(ctx, loginStateSQL, accountID).Scan(&failures, &firstFailed, &lockedUntil)
	if err != nil {
		return LoginState{}, fmt.Errorf("store: login state: %w", s.dialect.translate(err))
	}
	return p.state(failures, firstFailed, lockedUntil), nil
}

// returnLoginAttempt does ReturnLoginAttempt (see observe.go).
func (s *SQLStore) returnLoginAttempt(ctx context.Context, accountID int64, ownLock time.Time) error {
	if err := s.writes().execOne(ctx, returnLoginAttemptSQL, unixOrNull(ownLock), accountID); err != nil {
		return fmt.Errorf("store: return login attempt: %w", s.dialect.translate(err))
	}
	return nil
}

// ResetLoginFailures implements Store.
func (s *SQLStore) ResetLoginFailures(ctx context.Context, accountID int64) error {
	if err := s.writes().execOne(ctx, resetLoginFailuresSQL, accountID); err != nil {
		return fmt.Errorf("store: reset login failures: %w", err)
	}
	return nil
}

// Unlock implements Store.
func (s *SQLStore) Unlock(ctx context.Context, accountID int64) error {
	if err := s.writes().execOne(ctx, unlockSQL, accountID); err != nil {
		return fmt.Errorf("store: unlock: %w", err)
	}
	return nil
}

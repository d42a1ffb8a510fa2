package store

import (
	"context"
	"sync/atomic"
	"time"
)

// Observer is told of each account database operation on the request path
// (card look-ups and links, enrollment, sign-in): its name, how long it
// took and its error, for a latency metric. Other operations (admin, CLI)
// are not reported.
type Observer func(op string, took time.Duration, err error)

// observerBox holds the store's Observer; a store shared across config
// reloads reports to the newest config's.
type observerBox struct{ fn atomic.Pointer[Observer] }

// SetObserver makes fn the store's Observer (nil: none).
func (s *SQLStore) SetObserver(fn Observer) {
	if fn == nil {
		s.observer.fn.Store(nil)
		return
	}
	s.observer.fn.Store(&fn)
}

func (s *SQLStore) observed(op string, start time.Time, err error) {
	if fn := s.observer.fn.Load(); fn != nil {
		(*fn)(op, time.Since(start), err)
	}
}

// Credentials implements Store, reported to the Observer.
func (s *SQLStore) Credentials(ctx context.Context, accountID int64) (*Credentials, error) {
	start := time.Now()
	v, err := s.credentials(ctx, accountID)
	s.observed("credentials", start, err)
	return v, err
}

// AutoLinkCard implements Store, reported to the Observer.
func (s *SQLStore) AutoLinkCard(ctx context.Context, accountID int64, c Card) error {
	start := time.Now()
	err := s.autoLinkCard(ctx, accountID, c)
	s.observed("auto_link_card", start, err)
	return err
}

// TouchCard implements Store, reported to the Observer.
func (s *SQLStore) TouchCard(ctx context.Context, fingerprint string, at time.Time) error {
	start := time.Now()
	err := s.touchCard(ctx, fingerprint, at)
	s.observed("touch_card", start, err)
	return err
}

// Enroll implements Store, reported to the Observer.
func (s *SQLStore) Enroll(ctx context.Context, e *Enrollment) (*Account, error) {
	start := time.Now()
	v, err := s.enroll(ctx, e, takenUsernameSuffixes)
	s.observed("enroll", start, err)
	return v, err
}

// AccountByFingerprint implements Store, reported to the Observer.
func (s *SQLStore) AccountByFingerprint(ctx context.Context, fingerprint string) (*Account, error) {
	start := time.Now()
	v, err := s.accountByFingerprint(ctx, fingerprint)
	s.observed("account_by_fingerprint", start, err)
	return v, err
}

// AccountByEDIPI implements Store, reported to the Observer.
func (s *SQLStore) AccountByEDIPI(ctx context.Context, edipi string) (*Account, error) {
	start := time.Now()
	v, err := s.accountByEDIPI(ctx, edipi)
	s.observed("account_by_edipi", start, err)
	return v, err
}

// AccountByKey implements Store, reported to the Observer.
func (s *SQLStore) AccountByKey(ctx context.Context, kind, key string) (*Account, error) {
	start := time.Now()
	v, err := s.accountByKey(ctx, kind, key)
	s.observed("account_by_key", start, err)
	return v, err
}

// AccountByUsername implements Store, reported to the Observer.
func (s *SQLStore) AccountByUsername(ctx context.Context, username string) (*Account, error) {
	start := time.Now()
	v, err := s.accountByUsername(ctx, username)
	s.observed("account_by_username", start, err)
	return v, err
}

// RecordLoginFailure implements Store, reported to the Observer.
func (s *SQLStore) RecordLoginFailure(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (LoginState, error) {
	start := time.Now()
	v, err := s.recordLoginFailure(ctx, accountID, now, window, maxFailures, lockFor)
	s.observed("record_login_failure", start, err)
	return v, err
}

// TakeLoginAttempt implements Store, reported to the Observer.
func (s *SQLStore) TakeLoginAttempt(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (LoginState, bool, error) {
	start := time.Now()
	v, w, err := s.takeLoginAttempt(ctx, accountID, now, window, maxFailures, lockFor)
	s.observed("take_login_attempt", start, err)
	return v, w, err
}

// ReleaseLoginAttempt implements Store, reported to the Observer.
func (s *SQLStore) ReleaseLoginAttempt(ctx context.Context, accountID int64, now, ownLock time.Time) (time.Time, error) {
	start := time.Now()
	v, err := s.releaseLoginAttempt(ctx, accountID, now, ownLock)
	s.observed("release_login_attempt", start, err)
	return v, err
}

// ReturnLoginAttempt implements Store, reported to the Observer.
func (s *SQLStore) ReturnLoginAttempt(ctx context.Context, accountID int64, ownLock time.Time) error {
	start := time.Now()
	err := s.returnLoginAttempt(ctx, accountID, ownLock)
	s.observed("return_login_attempt", start, err)
	return err
}

// LoginState implements Store, reported to the Observer.
func (s *SQLStore) LoginState(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int) (LoginState, error) {
	start := time.Now()
	v, err := s.loginState(ctx, accountID, now, window, maxFailures)
	s.observed("login_state", start, err)
	return v, err
}

package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/cacgate/cacgate/internal/store"
)

// timedStore records the latency of the store operations on the request
// path (card lookups, links, enrollment, sign-in) in the
// cacgate_store_operation_duration_seconds histogram. Other operations
// (admin API, CLI) pass through untimed.
type timedStore struct {
	store.Store
	m *metrics
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func (s timedStore) AccountByFingerprint(ctx context.Context, fingerprint string) (a *store.Account, err error) {
	done := s.m.storeTimer("account_by_fingerprint")
	defer func() { done(err) }()
	return s.Store.AccountByFingerprint(ctx, fingerprint)
}

func (s timedStore) AccountByEDIPI(ctx context.Context, edipi string) (a *store.Account, err error) {
	done := s.m.storeTimer("account_by_edipi")
	defer func() { done(err) }()
	return s.Store.AccountByEDIPI(ctx, edipi)
}

func (s timedStore) AccountByUsername(ctx context.Context, username string) (a *store.Account, err error) {
	done := s.m.storeTimer("account_by_username")
	defer func() { done(err) }()
	return s.Store.AccountByUsername(ctx, username)
}

func (s timedStore) AutoLinkCard(ctx context.Context, accountID int64, c store.Card) (err error) {
	done := s.m.storeTimer("auto_link_card")
	defer func() { done(err) }()
	return s.Store.AutoLinkCard(ctx, accountID, c)
}

func (s timedStore) TouchCard(ctx context.Context, fingerprint string, at time.Time) (err error) {
	done := s.m.storeTimer("touch_card")
	defer func() { done(err) }()
	return s.Store.TouchCard(ctx, fingerprint, at)
}

func (s timedStore) Enroll(ctx context.Context, e *store.Enrollment) (a *store.Account, err error) {
	done := s.m.storeTimer("enroll")
	defer func() { done(err) }()
	return s.Store.Enroll(ctx, e)
}

func (s timedStore) Credentials(ctx context.Context, accountID int64) (c *store.Credentials, err error) {
	done := s.m.storeTimer("credentials")
	defer func() { done(err) }()
	return s.Store.Credentials(ctx, accountID)
}

func (s timedStore) RecordLoginFailure(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (st store.LoginState, err error) {
	done := s.m.storeTimer("record_login_failure")
	defer func() { done(err) }()
	return s.Store.RecordLoginFailure(ctx, accountID, now, window, maxFailures, lockFor)
}

func (s timedStore) TakeLoginAttempt(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (st store.LoginState, allowed bool, err error) {
	done := s.m.storeTimer("take_login_attempt")
	defer func() { done(err) }()
	return s.Store.TakeLoginAttempt(ctx, accountID, now, window, maxFailures, lockFor)
}

func (s timedStore) ReleaseLoginAttempt(ctx context.Context, accountID int64, now, ownLock time.Time) (lockedUntil time.Time, err error) {
	done := s.m.storeTimer("release_login_attempt")
	defer func() { done(err) }()
	return s.Store.ReleaseLoginAttempt(ctx, accountID, now, ownLock)
}

func (s timedStore) LoginState(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int) (st store.LoginState, err error) {
	done := s.m.storeTimer("login_state")
	defer func() { done(err) }()
	return s.Store.LoginState(ctx, accountID, now, window, maxFailures)
}

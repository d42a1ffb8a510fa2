package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The life-cycle sweep: inactivity warnings and disabling, utility
// accounts past their expiry or without an active sponsor, password expiry
// warnings. Each step is one UPDATE ... RETURNING in its own transaction
// together with the e-mails it causes: the rows an UPDATE returns are
// exactly those it changed, and a concurrent sweep on another node waits
// for the row and then finds it no longer matching (PostgreSQL re-checks
// the WHERE on the row it waited for; SQLite has one writer). So however
// many nodes sweep at once, each account is warned or disabled, and its
// mail queued, exactly once.

// SweepPolicy is what the sweep enforces; zero durations turn a step off.
type SweepPolicy struct {
	Now time.Time
	// InactiveAfter disables an active person's account with no sign-in
	// (nor creation, nor re-enabling) for this long; WarnBefore warns
	// this long before.
	InactiveAfter, WarnBefore time.Duration
	// PasswordMaxAge and PasswordWarnBefore: warn once per password that
	// it expires within PasswordWarnBefore.
	PasswordMaxAge, PasswordWarnBefore time.Duration
	// Batch bounds the accounts one step changes per sweep (default 500).
	Batch int
}

// Sweep event kinds.
const (
	SweepInactiveWarning = "inactive_warning"
	SweepInactive        = DisabledInactive
	SweepExpired         = DisabledExpired
	SweepSponsor         = DisabledSponsor
	SweepPasswordExpiry  = "password_expiring"
)

// SweepEvent is one account a sweep step changed.
type SweepEvent struct {
	Kind      string
	AccountID int64
	Username  string
	Email     string
	GivenName string
	// MailOptOut are the optional notices the person turned off.
	MailOptOut []string
	// Deadline is when the account will be (or was) disabled for
	// inactivity, or when the password expires.
	Deadline time.Time
}

// activityBefore is true of an account whose every sign of activity is
// older than the parameter (bound twice... four times).
const activityBefore = `(COALESCE(last_login_at, 0) < ? AND COALESCE(enabled_at, 0) < ?
     AND created_at < ? AND COALESCE(logon_at, 0) < ?)`

// warnedSinceActivity: the warning on record was sent after the latest
// activity.
const warnedSinceActivity = `(inactivity_warned_for IS NOT NULL AND inactivity_warned_for >= COALESCE(last_login_at, 0)
     AND inactivity_warned_for >= COALESCE(enabled_at, 0) AND inactivity_warned_for >= created_at
     AND inactivity_warned_for >= COALESCE(logon_at, 0))`

const (
	sweepInactiveWhere = `status = 'active' AND account_type = 'person' AND ` + activityBefore

	sweepInactiveSQL = `
UPDATE accounts SET status = 'disabled', disabled_reason = 'inactive', updated_at = ?
WHERE id IN (SELECT id FROM accounts WHERE ` + sweepInactiveWhere + ` ORDER BY id LIMIT ?)
  AND ` + sweepInactiveWhere + `
RETURNING id, username, email, given_name, mail_optout`

	sweepWarnWhere = `status = 'active' AND account_type = 'person' AND ` + activityBefore + ` AND NOT ` + warnedSinceActivity

	sweepWarnSQL = `
UPDATE accounts SET inactivity_warned_for = ?
WHERE id IN (SELECT id FROM accounts WHERE ` + sweepWarnWhere + ` ORDER BY id LIMIT ?)
  AND ` + sweepWarnWhere + `
RETURNING id, username, email, given_name, mail_optout,
    CASE WHEN COALESCE(last_login_at, 0) >= COALESCE(logon_at, 0) THEN COALESCE(last_login_at, 0) ELSE logon_at END,
    COALESCE(enabled_at, 0), created_at`

	sweepExpiredWhere = `status = 'active' AND account_type = 'utility' AND expires_at IS NOT NULL AND expires_at <= ?`

	sweepExpiredSQL = `
UPDATE accounts SET status = 'disabled', disabled_reason = 'expired', updated_at = ?
WHERE id IN (SELECT id FROM accounts WHERE ` + sweepExpiredWhere + ` ORDER BY id LIMIT ?)
  AND ` + sweepExpiredWhere + `
RETURNING id, username, email, given_name, mail_optout`

	sweepSponsorWhere = `status = 'active' AND account_type = 'utility'
  AND NOT EXISTS (SELECT 1 FROM accounts s WHERE s.id = accounts.sponsor_id AND s.status = 'active')`

	sweepSponsorSQL = `
UPDATE accounts SET status = 'disabled', disabled_reason = 'sponsor', updated_at = ?
WHERE id IN (SELECT id FROM accounts WHERE ` + sweepSponsorWhere + ` ORDER BY id LIMIT ?)
  AND ` + sweepSponsorWhere + `
RETURNING id, username, email, given_name, mail_optout`

	sweepPasswordWhere = `status = 'active' AND password_hash <> '' AND password_changed_at IS NOT NULL
  AND password_changed_at <= ? AND (expiry_warned_for IS NULL OR expiry_warned_for <> password_changed_at)`

	sweepPasswordSQL = `
UPDATE accounts SET expiry_warned_for = password_changed_at
WHERE id IN (SELECT id FROM accounts WHERE ` + sweepPasswordWhere + ` ORDER BY id LIMIT ?)
  AND ` + sweepPasswordWhere + `
RETURNING id, username, email, given_name, mail_optout, password_changed_at`
)

// Sweep runs the policy's steps. For each account changed, render gives
// the e-mails to queue with the change (nil: none); they are queued in the
// same transaction, unless the outbox is full (outboxLimit), in which case
// the change still commits and the event's MailDropped is reported. It
// returns the events, for the audit trail, even after an error in a later
// step.
func (s *SQLStore) Sweep(ctx context.Context, p SweepPolicy, outboxLimit int, render func(SweepEvent) []Mail) (events []SweepEvent, dropped int, err error) {
	batch := p.Batch
	if batch <= 0 {
		batch = 500
	}
	now := p.Now.Unix()
	type step struct {
		kind string
		sql  string
		args []any
	}
	var steps []step
	if p.InactiveAfter > 0 {
		cut := p.Now.Add(-p.InactiveAfter).Unix()
		a := []any{cut, cut, cut, cut}
		steps = append(steps, step{SweepInactive, sweepInactiveSQL, append(append(append([]any{now}, a...), batch), a...)})
		if p.WarnBefore > 0 && p.WarnBefore < p.InactiveAfter {
			wcut := p.Now.Add(-(p.InactiveAfter - p.WarnBefore)).Unix()
			w := []any{wcut, wcut, wcut, wcut}
			steps = append(steps, step{SweepInactiveWarning, sweepWarnSQL, append(append(append([]any{now}, w...), batch), w...)})
		}
	}
	steps = append(steps,
		step{SweepExpired, sweepExpiredSQL, []any{now, now, batch, now}},
		step{SweepSponsor, sweepSponsorSQL, []any{now, batch}})
	if p.PasswordMaxAge > 0 && p.PasswordWarnBefore > 0 {
		pcut := p.Now.Add(-(p.PasswordMaxAge - p.PasswordWarnBefore)).Unix()
		steps = append(steps, step{SweepPasswordExpiry, sweepPasswordSQL, []any{pcut, batch, pcut}})
	}
	for _, st := range steps {
		var got []SweepEvent
		var lost int
		err := s.inWriteTx(ctx, func(ex executor) error {
			got, lost = got[:0], 0
			rows, err := ex.query(ctx, st.sql, st.args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				e := SweepEvent{Kind: st.kind}
				var optout string
				dest := []any{&e.AccountID, &e.Username, &e.Email, &e.GivenName, &optout}
				var t1, t2, t3 int64
				switch st.kind {
				case SweepInactiveWarning:
					dest = append(dest, &t1, &t2, &t3)
				case SweepPasswordExpiry:
					dest = append(dest, &t1)
				}
				if err := rows.Scan(dest...); err != nil {
					rows.Close()
					return err
				}
				if e.MailOptOut, err = decodeStrings("mail_optout", optout); err != nil {
					rows.Close()
					return err
				}
				switch st.kind {
				case SweepInactiveWarning:
					e.Deadline = fromUnix(max(t1, t2, t3)).Add(p.InactiveAfter)
				case SweepPasswordExpiry:
					e.Deadline = fromUnix(t1).Add(p.PasswordMaxAge)
				case SweepInactive, SweepExpired, SweepSponsor:
					e.Deadline = p.Now.UTC().Truncate(time.Second)
				}
				got = append(got, e)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			for _, e := range got {
				if e.Kind != SweepInactiveWarning && e.Kind != SweepPasswordExpiry {
					if err := s.announce(ctx, ex, Change{AccountID: e.AccountID, Username: e.Username}); err != nil {
						return err
					}
					cascaded, err := s.disableSponsoredList(ctx, ex, &Account{ID: e.AccountID, Status: StatusDisabled})
					if err != nil {
						return err
					}
					for _, c := range cascaded {
						// (Their e-mail address is not read here: the
						// sponsor's notice tells the person.)
						got = append(got, SweepEvent{Kind: SweepSponsor, AccountID: c.AccountID, Username: c.Username, Deadline: e.Deadline})
					}
				}
				if render == nil {
					continue
				}
				mails := render(e)
				err := enqueueMail(ctx, ex, outboxLimit, mails)
				if errors.Is(err, ErrOutboxFull) {
					lost += len(mails)
					continue
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return events, dropped, fmt.Errorf("store: sweep %s: %w", st.kind, s.dialect.translate(err))
		}
		events = append(events, got...)
		dropped += lost
	}
	return events, dropped, nil
}

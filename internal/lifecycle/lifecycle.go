// Package lifecycle keeps accounts tidy on a schedule: it disables accounts
// nobody signed in with for inactive_after (warning first), utility
// accounts past their expiry or whose sponsor is no longer active, and
// warns of passwords about to expire, e-mailing the people concerned.
//
// It is database-driven: every node runs the sweep, and each step is one
// UPDATE ... RETURNING in the account database (store.Sweep), so however
// many nodes sweep at once each account is disabled, audited and e-mailed
// exactly once. Nothing here runs on the request path: card sign-ins are
// recorded by the gateway's cache refills (at most one write per card per
// five minutes), password sign-ins and banner acceptances once each.
package lifecycle

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/mail"
	"github.com/cacgate/cacgate/internal/store"
)

// Store is the sweep's database (*store.SQLStore).
type Store interface {
	Sweep(ctx context.Context, p store.SweepPolicy, outboxLimit int, render func(store.SweepEvent) []store.Mail) ([]store.SweepEvent, int, error)
}

// Sweeper runs the sweep every Interval.
type Sweeper struct {
	Store Store
	// InactiveAfter (0: off) and WarnBefore: see store.SweepPolicy.
	InactiveAfter, WarnBefore time.Duration
	// PasswordMaxAge and PasswordWarnBefore (0: no warning).
	PasswordMaxAge, PasswordWarnBefore time.Duration
	// Notifier renders the e-mails; nil sends none.
	Notifier *mail.Notifier
	Audit    *audit.Log
	Logger   *zap.Logger
	// Interval between sweeps (default 1h). The first runs a minute (or
	// Interval, if shorter) after Run starts, with up to as much again of
	// random delay: a config reload starts a new sweeper on every node, and
	// the nodes of a cluster need not all sweep at the same moment.
	Interval time.Duration
	// Changed is called after a sweep disabled accounts (the gateway drops
	// its cached mappings). May be nil.
	Changed func()
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Run sweeps until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	interval := s.Interval
	if interval <= 0 {
		interval = time.Hour
	}
	first := min(interval, time.Minute)
	t := time.NewTimer(first + rand.N(first))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Once(ctx); err != nil && ctx.Err() == nil && s.Logger != nil {
			s.Logger.Warn("account life-cycle sweep", zap.Error(err))
		}
		t.Reset(interval)
	}
}

// Once runs one sweep and returns what it did.
func (s *Sweeper) Once(ctx context.Context) ([]store.SweepEvent, error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	limit := mail.DefaultOutboxLimit
	if s.Notifier != nil && s.Notifier.Limit > 0 {
		limit = s.Notifier.Limit
	}
	events, dropped, err := s.Store.Sweep(ctx, store.SweepPolicy{
		Now: now, InactiveAfter: s.InactiveAfter, WarnBefore: s.WarnBefore,
		PasswordMaxAge: s.PasswordMaxAge, PasswordWarnBefore: s.PasswordWarnBefore,
	}, limit, s.render)
	disabled := false
	for _, e := range events {
		s.record(e)
		if e.Kind != store.SweepInactiveWarning && e.Kind != store.SweepPasswordExpiry {
			disabled = true
		}
	}
	if dropped > 0 && s.Audit != nil {
		s.Audit.Write("mail.dropped", audit.Failure, zap.Int("count", dropped), zap.String("reason", "outbox_full"))
	}
	if disabled && s.Changed != nil {
		s.Changed()
	}
	return events, err
}

// record audits one sweep event.
func (s *Sweeper) record(e store.SweepEvent) {
	if s.Audit == nil {
		return
	}
	fields := []zap.Field{zap.String("username", e.Username), zap.Int64("account_id", e.AccountID)}
	switch e.Kind {
	case store.SweepInactiveWarning:
		s.Audit.Write("account.inactivity_warning", audit.Success, append(fields, zap.Time("disable_at", e.Deadline))...)
	case store.SweepPasswordExpiry:
		s.Audit.Write("password.expiry_warning", audit.Success, append(fields, zap.Time("expires_at", e.Deadline))...)
	default:
		s.Audit.Write("account.disabled", audit.Success, append(fields, zap.String("reason", e.Kind), zap.String("by", "lifecycle"))...)
	}
}

// render gives the e-mails of one event (inside the sweep's transaction).
func (s *Sweeper) render(e store.SweepEvent) []store.Mail {
	if s.Notifier == nil {
		return nil
	}
	acct := &store.Account{ID: e.AccountID, Username: e.Username, Email: e.Email, GivenName: e.GivenName, MailOptOut: e.MailOptOut}
	d := mail.Data{Deadline: mail.FormatTime(e.Deadline), Period: Days(s.InactiveAfter)}
	var kind string
	switch e.Kind {
	case store.SweepInactiveWarning:
		kind = mail.KindInactiveWarning
	case store.SweepInactive:
		kind = mail.KindAccountInactive
	case store.SweepPasswordExpiry:
		kind = mail.KindPasswordExpiring
	case store.SweepExpired:
		kind, d.Detail = mail.KindUtilityDisabled, "it reached its expiry date."
	case store.SweepSponsor:
		kind, d.Detail = mail.KindUtilityDisabled, "its sponsor's account is no longer active."
	default:
		return nil
	}
	msgs, err := s.Notifier.Messages(kind, acct, d)
	if err != nil && s.Logger != nil {
		s.Logger.Error("rendering life-cycle notice", zap.String("kind", kind), zap.Error(err))
	}
	for i := range msgs {
		msgs[i].DedupeKey = fmt.Sprintf("%s:%d:%s:%s", kind, e.AccountID, strconv.FormatInt(e.Deadline.Unix(), 10), msgs[i].Recipient)
	}
	return msgs
}

// Days writes a duration in whole days ("35 days") or, under a day, as Go
// does.
func Days(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		n := int(d / (24 * time.Hour))
		if n == 1 {
			return "1 day"
		}
		return strconv.Itoa(n) + " days"
	}
	return d.String()
}

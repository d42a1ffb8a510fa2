package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The mail outbox (table mail_outbox, migration 0010): e-mail notices are
// queued in the account database, in the transaction of the change they
// report where there is one, and sent by whichever node claims them. A
// relay outage or a restart loses nothing: a message leaves the table only
// once the relay accepted it.

// ErrOutboxFull: the outbox holds its limit of messages; the notice is
// not queued.
var ErrOutboxFull = errors.New("mail outbox is full")

// Mail is one queued e-mail notice.
type Mail struct {
	ID        int64
	Kind      string // the notice's kind, e.g. "password_changed"
	Recipient string
	Subject   string
	Text      string // plain-text body
	HTML      string // HTML body; "" for none
	// DedupeKey, when set, queues the notice once however many times it
	// is offered (the same event seen by several nodes).
	DedupeKey string
	CreatedAt time.Time
	Attempts  int
	LastError string
}

const (
	outboxCountSQL = `SELECT COUNT(*) FROM mail_outbox`

	enqueueMailSQL = `
INSERT INTO mail_outbox (kind, recipient, subject, body_text, body_html, dedupe_key,
                         created_at, next_attempt_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (dedupe_key) DO NOTHING`

	// Claiming is one UPDATE whose WHERE repeats the conditions of the
	// subquery's pick: when two nodes pick the same rows at once, the
	// second finds them leased once the first commits (PostgreSQL
	// re-checks the WHERE on the row it waited for; SQLite runs one
	// writer at a time) and skips them. So a row is held by one sender.
	claimMailSQL = `
UPDATE mail_outbox SET lease_until = ?, lease_owner = ?
WHERE id IN (SELECT id FROM mail_outbox
             WHERE next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)
             ORDER BY next_attempt_at, id LIMIT ?)
  AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)
RETURNING id, kind, recipient, subject, body_text, body_html, created_at, attempts, last_error`

	// Only the sender holding the lease settles a message: one whose
	// lease ran out and was claimed again is the new holder's.
	mailSentSQL  = `DELETE FROM mail_outbox WHERE id = ? AND lease_owner = ?`
	mailRetrySQL = `
UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ?, lease_until = NULL,
    lease_owner = '', last_error = ?
WHERE id = ? AND lease_owner = ?`
	outboxStatsSQL = `SELECT COUNT(*), MIN(created_at), COALESCE(MAX(attempts), 0) FROM mail_outbox`
)

// EnqueueMail queues messages, unless the outbox already holds limit or
// more (ErrOutboxFull, nothing queued). A message whose DedupeKey is
// queued already is skipped.
func (s *SQLStore) EnqueueMail(ctx context.Context, limit int, msgs ...Mail) error {
	err := s.inWriteTx(ctx, func(ex executor) error { return enqueueMail(ctx, ex, limit, msgs) })
	if err != nil {
		return fmt.Errorf("store: queue mail: %w", s.dialect.translate(err))
	}
	return nil
}

func enqueueMail(ctx context.Context, ex executor, limit int, msgs []Mail) error {
	if len(msgs) == 0 {
		return nil
	}
	var n int
	if err := ex.queryRow(ctx, outboxCountSQL).Scan(&n); err != nil {
		return err
	}
	if n+len(msgs) > limit {
		return ErrOutboxFull
	}
	at := now().Unix()
	for _, m := range msgs {
		var key any
		if m.DedupeKey != "" {
			key = m.DedupeKey
		}
		if _, err := ex.exec(ctx, enqueueMailSQL, m.Kind, m.Recipient, m.Subject, m.Text, m.HTML, key, at, at); err != nil {
			return err
		}
	}
	return nil
}

// ClaimMail leases up to n messages due at now to owner for lease: no
// other sender gets them until the lease runs out.
func (s *SQLStore) ClaimMail(ctx context.Context, owner string, now time.Time, lease time.Duration, n int) ([]Mail, error) {
	sec := now.Unix()
	until := unixCeil(now.Add(lease))
	var out []Mail
	err := s.inWriteTx(ctx, func(ex executor) error {
		out = out[:0]
		rows, err := ex.query(ctx, claimMailSQL, until, owner, sec, sec, n, sec, sec)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m Mail
			var created int64
			if err := rows.Scan(&m.ID, &m.Kind, &m.Recipient, &m.Subject, &m.Text, &m.HTML, &created, &m.Attempts, &m.LastError); err != nil {
				return err
			}
			m.CreatedAt = fromUnix(created)
			out = append(out, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim mail: %w", s.dialect.translate(err))
	}
	return out, nil
}

// MailSent removes a message the relay accepted. False if owner no longer
// held it (its lease ran out and another sender has it).
func (s *SQLStore) MailSent(ctx context.Context, id int64, owner string) (bool, error) {
	err := s.writes().execOne(ctx, mailSentSQL, id, owner)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: mail sent: %w", s.dialect.translate(err))
	}
	return true, nil
}

// MailFailed puts a message back, to be tried again at next, recording why
// it failed (cut to 500 bytes).
func (s *SQLStore) MailFailed(ctx context.Context, id int64, owner string, next time.Time, reason string) error {
	if len(reason) > 500 {
		reason = reason[:500]
	}
	if !storableKey(reason) {
		reason = "unprintable error"
	}
	err := s.writes().execOne(ctx, mailRetrySQL, unixCeil(next), reason, id, owner)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: mail failed: %w", s.dialect.translate(err))
	}
	return nil
}

// OutboxStats says how many messages wait, since when, and the most
// attempts any of them has had.
type OutboxStats struct {
	Queued      int
	Oldest      time.Time // zero when empty
	MaxAttempts int
}

// MailOutboxStats reads the outbox's state.
func (s *SQLStore) MailOutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	var oldest sql.NullInt64
	if err := s.reads().queryRow(ctx, outboxStatsSQL).Scan(&st.Queued, &oldest, &st.MaxAttempts); err != nil {
		return st, fmt.Errorf("store: outbox stats: %w", err)
	}
	st.Oldest = fromUnixOrNull(oldest)
	return st, nil
}

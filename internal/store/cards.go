package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const (
	insertCardSQL = `
INSERT INTO cards (fingerprint, account_id, subject, issuer, serial, not_after,
                   created_at, last_used_at, id_kind, id_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	unlinkCardSQL = `
DELETE FROM cards
WHERE fingerprint = ? AND account_id = (SELECT id FROM accounts WHERE username = ?)
RETURNING account_id`

	clearCardSQL = `
INSERT INTO cleared_cards (fingerprint, account_id, cleared_at) VALUES (?, ?, ?)
ON CONFLICT (fingerprint) DO UPDATE SET account_id = excluded.account_id, cleared_at = excluded.cleared_at`

	unclearCardSQL = `DELETE FROM cleared_cards WHERE fingerprint = ?`

	// One statement, so a clearing that commits concurrently is either
	// seen (no link) or ordered after the link (and removes it).
	autoLinkCardSQL = `
INSERT INTO cards (fingerprint, account_id, subject, issuer, serial, not_after,
                   created_at, last_used_at, id_kind, id_key)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
WHERE NOT EXISTS (SELECT 1 FROM cleared_cards WHERE fingerprint = ?)`

	// The CASE keeps a sign-in time from moving backwards when nodes
	// report out of order; it is portable where MAX(a, b) and GREATEST are
	// not.
	touchCardSQL = `
UPDATE cards
SET last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END
WHERE fingerprint = ?
RETURNING account_id`

	touchAccountSQL = `
UPDATE accounts
SET last_login_at = CASE WHEN last_login_at IS NULL OR last_login_at < ? THEN ? ELSE last_login_at END
WHERE id = ?`
)

func insertCard(ctx context.Context, ex executor, accountID int64, c Card, at time.Time) error {
	_, err := ex.exec(ctx, insertCardSQL,
		c.Fingerprint, accountID, c.Subject, c.Issuer, c.Serial, c.NotAfter.Unix(),
		at.Unix(), unixOrNull(c.LastUsedAt), cardKind(c), c.Key,
	)
	return err
}

// LinkCard implements Store. An explicit link also lifts an earlier
// clearing of the card.
func (s *SQLStore) LinkCard(ctx context.Context, accountID int64, c Card) error {
	err := s.inWriteTx(ctx, func(ex executor) error {
		if err := insertCard(ctx, ex, accountID, c, now()); err != nil {
			return err
		}
		if _, err := ex.exec(ctx, unclearCardSQL, c.Fingerprint); err != nil {
			return err
		}
		return s.announce(ctx, ex, Change{AccountID: accountID, Fingerprints: []string{c.Fingerprint}})
	})
	return s.linkError("link card", err)
}

// autoLinkCard does AutoLinkCard (see observe.go).
func (s *SQLStore) autoLinkCard(ctx context.Context, accountID int64, c Card) error {
	err := s.inWriteTx(ctx, func(ex executor) error {
		if err := ex.execOne(ctx, autoLinkCardSQL,
			c.Fingerprint, accountID, c.Subject, c.Issuer, c.Serial, c.NotAfter.Unix(),
			now().Unix(), unixOrNull(c.LastUsedAt), cardKind(c), c.Key, c.Fingerprint); err != nil {
			return err
		}
		return s.announce(ctx, ex, Change{AccountID: accountID, Fingerprints: []string{c.Fingerprint}})
	})
	if errors.Is(err, ErrNotFound) {
		// no row inserted: the WHERE NOT EXISTS found a clearing
		err = ErrCardCleared
	}
	return s.linkError("auto-link card", err)
}

func (s *SQLStore) linkError(op string, err error) error {
	// The foreign key, not a lookup beforehand, decides whether the account
	// exists, so an account deleted meanwhile cannot end up with a card.
	if s.dialect.foreignKeyViolation(err) {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, s.dialect.translate(err))
	}
	return nil
}

// UnlinkCard implements Store. The card is remembered as cleared so that
// AutoLinkCard will not register it again.
func (s *SQLStore) UnlinkCard(ctx context.Context, username, fingerprint string) error {
	err := s.inWriteTx(ctx, func(ex executor) error {
		var accountID int64
		if err := ex.queryRow(ctx, unlinkCardSQL, fingerprint, username).Scan(&accountID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if _, err := ex.exec(ctx, clearCardSQL, fingerprint, accountID, now().Unix()); err != nil {
			return err
		}
		return s.announce(ctx, ex, Change{AccountID: accountID, Username: username, Fingerprints: []string{fingerprint}})
	})
	if err != nil {
		return fmt.Errorf("store: unlink card: %w", err)
	}
	return nil
}

// touchCard does TouchCard (see observe.go).
func (s *SQLStore) touchCard(ctx context.Context, fingerprint string, at time.Time) error {
	sec := at.Unix()
	err := s.inWriteTx(ctx, func(ex executor) error {
		var accountID int64
		if err := ex.queryRow(ctx, touchCardSQL, sec, sec, fingerprint).Scan(&accountID); err != nil {
			return err
		}
		_, err := ex.exec(ctx, touchAccountSQL, sec, sec, accountID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: touch card: %w", s.dialect.translate(err))
	}
	return nil
}

// cardKind is the kind a card is stored as: a card whose caller named none
// is a DoD card.
func cardKind(c Card) string {
	if c.Kind == "" {
		return KindCAC
	}
	return c.Kind
}

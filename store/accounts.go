package store

import (
	"context"
	"fmt"
	"time"
)

// Every account read is one statement joining accounts to their cards, so it
// sees a single consistent snapshot and costs one round trip.
const selectAccountsWithCards = `
SELECT a.id, a.username, a.edipi, a.given_name, a.middle_name, a.family_name,
       a.suffix, a.email, a.affiliation, a.status, a.created_at, a.updated_at,
       a.last_login_at,
       c.fingerprint, c.subject, c.issuer, c.serial, c.not_after, c.created_at,
       c.last_used_at
FROM `

const (
	cardsOldestFirst = ` ORDER BY c.created_at, c.fingerprint`

	accountByUsernameSQL = selectAccountsWithCards +
		`accounts a LEFT JOIN cards c ON c.account_id = a.id WHERE a.username = ?` + cardsOldestFirst

	accountByEDIPISQL = selectAccountsWithCards +
		`accounts a LEFT JOIN cards c ON c.account_id = a.id WHERE a.edipi = ?` + cardsOldestFirst

	accountByFingerprintSQL = selectAccountsWithCards +
		`accounts a LEFT JOIN cards c ON c.account_id = a.id
WHERE a.id = (SELECT account_id FROM cards WHERE fingerprint = ?)` + cardsOldestFirst

	// The page is cut from accounts alone, so a limit counts accounts,
	// not account-card rows.
	listAccountsSQL = selectAccountsWithCards +
		`(SELECT * FROM accounts ORDER BY username LIMIT ? OFFSET ?) a
LEFT JOIN cards c ON c.account_id = a.id
ORDER BY a.username, c.created_at, c.fingerprint`

	insertAccountSQL = `
INSERT INTO accounts (username, edipi, given_name, middle_name, family_name,
                      suffix, email, affiliation, status, created_at,
                      updated_at, last_login_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING id`

	setStatusSQL = `UPDATE accounts SET status = ?, updated_at = ? WHERE username = ?`
)

// CreateAccount implements Store.
func (s *SQLStore) CreateAccount(ctx context.Context, a *Account) error {
	at := now()
	var id int64
	err := s.inWriteTx(ctx, func(ex executor) error {
		var err error
		if id, err = insertAccount(ctx, ex, a, at); err != nil {
			return err
		}
		for _, c := range a.Cards {
			if err := insertCard(ctx, ex, id, c, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create account: %w", s.dialect.translate(err))
	}
	// Only now that the rows are committed does a describe them.
	a.ID, a.CreatedAt, a.UpdatedAt = id, at, at
	for i := range a.Cards {
		a.Cards[i].AccountID, a.Cards[i].CreatedAt = id, at
	}
	return nil
}

func insertAccount(ctx context.Context, ex executor, a *Account, at time.Time) (id int64, err error) {
	err = ex.queryRow(ctx, insertAccountSQL,
		a.Username, a.EDIPI, a.GivenName, a.MiddleName, a.FamilyName,
		a.Suffix, a.Email, a.Affiliation, string(a.Status), at.Unix(),
		at.Unix(), unixOrNull(a.LastLoginAt),
	).Scan(&id)
	return id, err
}

// AccountByUsername implements Store.
func (s *SQLStore) AccountByUsername(ctx context.Context, username string) (*Account, error) {
	return s.oneAccount(ctx, "by username", accountByUsernameSQL, username)
}

// AccountByEDIPI implements Store.
func (s *SQLStore) AccountByEDIPI(ctx context.Context, edipi string) (*Account, error) {
	return s.oneAccount(ctx, "by DoD ID", accountByEDIPISQL, edipi)
}

// AccountByFingerprint implements Store.
func (s *SQLStore) AccountByFingerprint(ctx context.Context, fingerprint string) (*Account, error) {
	return s.oneAccount(ctx, "by card", accountByFingerprintSQL, fingerprint)
}

func (s *SQLStore) oneAccount(ctx context.Context, how, query, key string) (*Account, error) {
	a, err := oneAccount(ctx, s.reads(), query, key)
	if err != nil {
		return nil, fmt.Errorf("store: account %s: %w", how, s.dialect.translate(err))
	}
	return a, nil
}

func oneAccount(ctx context.Context, ex executor, query, key string) (*Account, error) {
	rows, err := ex.query(ctx, query, key)
	if err != nil {
		return nil, err
	}
	accounts, err := scanAccounts(rows)
	if err != nil {
		return nil, err
	}
	if len(accounts) == 0 {
		return nil, ErrNotFound
	}
	return accounts[0], nil
}

// ListAccounts implements Store.
func (s *SQLStore) ListAccounts(ctx context.Context, offset, limit int) ([]*Account, error) {
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	// A negative OFFSET is an error in some databases and meaningless in
	// all of them.
	offset = max(offset, 0)
	rows, err := s.reads().query(ctx, listAccountsSQL, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	accounts, err := scanAccounts(rows)
	if err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	return accounts, nil
}

// SetStatus implements Store.
func (s *SQLStore) SetStatus(ctx context.Context, username string, status Status) (*Account, error) {
	var a *Account
	err := s.inWriteTx(ctx, func(ex executor) error {
		if err := ex.execOne(ctx, setStatusSQL, string(status), now().Unix(), username); err != nil {
			return err
		}
		var err error
		a, err = oneAccount(ctx, ex, accountByUsernameSQL, username)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: set status: %w", s.dialect.translate(err))
	}
	return a, nil
}

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Every account read is one statement joining accounts to their cards, so it
// sees a single consistent snapshot and costs one round trip. It reads
// whether there is a password, never the hash.
const selectAccountsWithCards = `
SELECT a.id, a.username, COALESCE(a.edipi, ''), a.id_kind, a.id_key, a.given_name, a.middle_name, a.family_name,
       a.suffix, a.email, a.affiliation, a.status, a.created_at, a.updated_at,
       a.last_login_at,
       a.categories, a.group_names, a.organization, a.location, a.work_address, a.phone,
       a.password_hash <> '', a.password_changed_at, a.locked_until, a.password_reset_required_at,
       a.account_type, a.sponsor_id, a.expires_at, a.disabled_reason, a.mail_optout,
       a.logon_at, a.logon_from, a.prev_logon_at, a.prev_logon_from, a.prev_failed,
       c.fingerprint, c.subject, c.issuer, c.serial, c.not_after, c.created_at,
       c.last_used_at, c.id_kind, c.id_key
FROM `

const (
	cardsOldestFirst = ` ORDER BY c.created_at, c.fingerprint`

	accountByUsernameSQL = selectAccountsWithCards +
		`accounts a LEFT JOIN cards c ON c.account_id = a.id WHERE a.username = ?` + cardsOldestFirst

	accountByEDIPISQL = selectAccountsWithCards +
		`accounts a LEFT JOIN cards c ON c.account_id = a.id WHERE a.edipi = ?` + cardsOldestFirst

	accountByKeySQL = selectAccountsWithCards +
		`accounts a LEFT JOIN cards c ON c.account_id = a.id WHERE a.id_kind = ? AND a.id_key = ?` + cardsOldestFirst

	accountByFingerprintSQL = selectAccountsWithCards +
		`accounts a LEFT JOIN cards c ON c.account_id = a.id
WHERE a.id = (SELECT account_id FROM cards WHERE fingerprint = ?)` + cardsOldestFirst

	// The page is cut from accounts alone, so a limit counts accounts,
	// not account-card rows.
	listAccountsSQL = selectAccountsWithCards +
		`(SELECT * FROM accounts ORDER BY username LIMIT ? OFFSET ?) a
LEFT JOIN cards c ON c.account_id = a.id
ORDER BY a.username, c.created_at, c.fingerprint`

	// The index on (status, username) hands over the page in order.
	listAccountsByStatusSQL = selectAccountsWithCards +
		`(SELECT * FROM accounts WHERE status = ? ORDER BY username LIMIT ? OFFSET ?) a
LEFT JOIN cards c ON c.account_id = a.id
ORDER BY a.username, c.created_at, c.fingerprint`

	insertAccountSQL = `
INSERT INTO accounts (username, edipi, given_name, middle_name, family_name,
                      suffix, email, affiliation, status, created_at,
                      updated_at, last_login_at, categories, group_names,
                      organization, location, work_address, phone,
                      password_hash, password_changed_at, id_kind, id_key)
VALUES (?, NULLIF(?, ''), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING id`

	// A status set by hand clears the gateway's own reason for a
	// disabling; becoming active records when (inactivity counts from it).
	setStatusSQL = `UPDATE accounts SET status = ?, updated_at = ?, disabled_reason = '',
    enabled_at = CASE WHEN status <> 'active' AND ? = 'active' THEN ? ELSE enabled_at END
WHERE username = ?`

	// The WHERE on the current status makes the transition atomic: a
	// concurrent change to the status makes this one affect no row.
	transitionStatusSQL = `UPDATE accounts SET status = ?, updated_at = ?, disabled_reason = '',
    enabled_at = CASE WHEN status <> 'active' AND ? = 'active' THEN ? ELSE enabled_at END
WHERE username = ? AND status = ?`
)

// CreateAccount implements Store.
func (s *SQLStore) CreateAccount(ctx context.Context, a *Account) error {
	// The callers check usernames against ValidUsername; a reserved one
	// is refused here too, as every way of creating an account does.
	if ReservedUsername(a.Username) {
		return fmt.Errorf("store: create account: %w", errReservedUsername)
	}
	at := now()
	var id int64
	err := s.inWriteTx(ctx, func(ex executor) error {
		var err error
		if id, err = insertAccount(ctx, ex, a, "", at); err != nil {
			return err
		}
		for _, c := range a.Cards {
			if c.Kind == "" {
				c.Kind, c.Key = a.Kind, a.Key
			}
			if err := insertCard(ctx, ex, id, c, at); err != nil {
				return err
			}
		}
		stored := *a
		stored.ID = id
		return s.announce(ctx, ex, changeOf(&stored))
	})
	if err != nil {
		return fmt.Errorf("store: create account: %w", s.dialect.translate(err))
	}
	// Only now that the rows are committed does a describe them.
	a.ID, a.CreatedAt, a.UpdatedAt = id, at, at
	for i := range a.Cards {
		a.Cards[i].AccountID, a.Cards[i].CreatedAt = id, at
		if a.Cards[i].Kind == "" {
			a.Cards[i].Kind, a.Cards[i].Key = a.Kind, a.Key
		}
	}
	return nil
}

// insertAccount inserts a's row, without its cards, with the given password
// hash ("" for none) set at the time at.
func insertAccount(ctx context.Context, ex executor, a *Account, passwordHash string, at time.Time) (id int64, err error) {
	if a.Kind == "" {
		a.Kind, a.Key = KindCAC, a.EDIPI
	}
	categories, err := encodeCategories(a.Categories)
	if err != nil {
		return 0, err
	}
	groups, err := encodeGroups(a.Groups)
	if err != nil {
		return 0, err
	}
	var passwordChanged time.Time
	if passwordHash != "" {
		passwordChanged = at
	}
	err = ex.queryRow(ctx, insertAccountSQL,
		a.Username, a.EDIPI, a.GivenName, a.MiddleName, a.FamilyName,
		a.Suffix, a.Email, a.Affiliation, string(a.Status), at.Unix(),
		at.Unix(), unixOrNull(a.LastLoginAt), categories, groups, a.Organization,
		a.Location, a.WorkAddress, a.Phone, passwordHash,
		unixOrNull(passwordChanged), a.Kind, a.Key,
	).Scan(&id)
	return id, err
}

// noCategories is how the schema stores an empty list of categories.
const noCategories = "[]"

// encodeCategories renders categories as the JSON array the categories
// column holds. JSON would silently replace invalid UTF-8 with U+FFFD, so
// such a category is refused rather than stored altered.
func encodeCategories(categories []string) (string, error) {
	if len(categories) == 0 {
		return noCategories, nil
	}
	for i, c := range categories {
		if !utf8.ValidString(c) {
			return "", fmt.Errorf("category %d is not valid UTF-8", i)
		}
	}
	b, err := json.Marshal(categories)
	return string(b), err
}

// decodeCategories reverses encodeCategories; an empty array is nil.
func decodeCategories(text string) ([]string, error) {
	return decodeStrings("categories", text)
}

// decodeStrings reads a JSON array of strings, the categories or groups
// column; an empty array is nil.
func decodeStrings(column, text string) ([]string, error) {
	if text == noCategories {
		return nil, nil // most accounts: skip the decoder on the hot path
	}
	var list []string
	if err := json.Unmarshal([]byte(text), &list); err != nil {
		return nil, fmt.Errorf("account %s %q: %w", column, text, err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}

// storableKey reports whether a lookup key is text every backend can hold:
// valid UTF-8 without NUL bytes.
func storableKey(key string) bool {
	return utf8.ValidString(key) && !strings.ContainsRune(key, 0)
}

// accountByUsername does AccountByUsername (see observe.go).
func (s *SQLStore) accountByUsername(ctx context.Context, username string) (*Account, error) {
	return s.oneAccount(ctx, "by username", accountByUsernameSQL, username)
}

// accountByKey does AccountByKey (see observe.go).
func (s *SQLStore) accountByKey(ctx context.Context, kind, key string) (*Account, error) {
	return s.oneAccount(ctx, "by credential key", accountByKeySQL, kind, key)
}

// accountByEDIPI does AccountByEDIPI (see observe.go).
func (s *SQLStore) accountByEDIPI(ctx context.Context, edipi string) (*Account, error) {
	return s.oneAccount(ctx, "by DoD ID", accountByEDIPISQL, edipi)
}

// accountByFingerprint does AccountByFingerprint (see observe.go).
func (s *SQLStore) accountByFingerprint(ctx context.Context, fingerprint string) (*Account, error) {
	return s.oneAccount(ctx, "by card", accountByFingerprintSQL, fingerprint)
}

func (s *SQLStore) oneAccount(ctx context.Context, how, query string, keys ...string) (*Account, error) {
	if slices.ContainsFunc(keys, func(k string) bool { return !storableKey(k) }) {
		// No account can have it: PostgreSQL cannot even compare such
		// text and would answer with an error, SQLite with no row. Both
		// backends say "not found", so a typed "%00" is an unknown
		// username, not a failed request.
		return nil, fmt.Errorf("store: account %s: %w", how, ErrNotFound)
	}
	// The read keeps ctx, cancellation and deadline both: a request waiting
	// for one of the reader pool's connections (all held by reads stuck on
	// a stalled disk, say) must give up at its deadline, and with it every
	// request for the card waiting on this one's look-up. Running without
	// the cancellation spares database/sql's and the driver's watcher
	// goroutines, but a context cannot keep its deadline without them.
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	a, err := oneAccount(ctx, s.reads(), query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: account %s: %w", how, s.dialect.translate(err))
	}
	return a, nil
}

func oneAccount(ctx context.Context, ex executor, query string, args ...any) (*Account, error) {
	rows, err := ex.query(ctx, query, args...)
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
	offset, limit = pageBounds(offset, limit)
	return s.listAccounts(ctx, "list accounts", listAccountsSQL, limit, offset)
}

// ListAccountsByStatus implements Store.
func (s *SQLStore) ListAccountsByStatus(ctx context.Context, status Status, offset, limit int) ([]*Account, error) {
	offset, limit = pageBounds(offset, limit)
	return s.listAccounts(ctx, "list accounts by status", listAccountsByStatusSQL, string(status), limit, offset)
}

// pageBounds applies the List* methods' rules for offset and limit.
func pageBounds(offset, limit int) (int, int) {
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	// A negative OFFSET is an error in some databases and meaningless in
	// all of them.
	return max(offset, 0), limit
}

func (s *SQLStore) listAccounts(ctx context.Context, op, query string, args ...any) ([]*Account, error) {
	rows, err := s.reads().query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	accounts, err := scanAccounts(rows)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return accounts, nil
}

// TransitionStatus implements Store.
func (s *SQLStore) TransitionStatus(ctx context.Context, username string, from, to Status) (*Account, error) {
	var a *Account
	err := s.inWriteTx(ctx, func(ex executor) error {
		res, err := ex.exec(ctx, transitionStatusSQL, string(to), now().Unix(), string(to), now().Unix(), username, string(from))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if a, err = oneAccount(ctx, ex, accountByUsernameSQL, username); err != nil {
			return err // ErrNotFound for an unknown username
		}
		if n == 0 {
			return ErrStatusConflict
		}
		if err := s.disableSponsored(ctx, ex, a); err != nil {
			return err
		}
		return s.announce(ctx, ex, changeOf(a))
	})
	if err != nil {
		return nil, fmt.Errorf("store: transition status: %w", s.dialect.translate(err))
	}
	return a, nil
}

// SetStatus implements Store.
func (s *SQLStore) SetStatus(ctx context.Context, username string, status Status) (*Account, error) {
	var a *Account
	err := s.inWriteTx(ctx, func(ex executor) error {
		if err := ex.execOne(ctx, setStatusSQL, string(status), now().Unix(), string(status), now().Unix(), username); err != nil {
			return err
		}
		var err error
		if a, err = oneAccount(ctx, ex, accountByUsernameSQL, username); err != nil {
			return err
		}
		if err := s.disableSponsored(ctx, ex, a); err != nil {
			return err
		}
		return s.announce(ctx, ex, changeOf(a))
	})
	if err != nil {
		return nil, fmt.Errorf("store: set status: %w", s.dialect.translate(err))
	}
	return a, nil
}

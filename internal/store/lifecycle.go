package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Account life cycle: utility (non-person) accounts and the non-person
// certificates registered to them, the last sign-in notice, inactivity and
// expiry, and e-mail notice preferences. See migration 0010.

// ErrNotUtility: the account is not a utility account (or the sponsor not a
// person's account), where one is required.
var ErrNotUtility = errors.New("not a utility account")

// ErrSponsorInactive: a utility account's sponsor is not an active
// person's account.
var ErrSponsorInactive = errors.New("the sponsor is not an active person's account")

// NPECert is a non-person-entity certificate registered to a utility
// account: by fingerprint (Fingerprint set) or by subject and issuer
// together (Fingerprint empty).
type NPECert struct {
	AccountID   int64
	Fingerprint string // lowercase hex SHA-256; "" for a subject match
	Subject     string // RFC 2253, as cacid.DistinguishedName writes it
	Issuer      string
	CreatedAt   time.Time
}

// MatchKey is the certificate's key in npe_certificates.
func (c NPECert) MatchKey() string {
	if c.Fingerprint != "" {
		return FingerprintMatchKey(c.Fingerprint)
	}
	return SubjectMatchKey(c.Subject, c.Issuer)
}

// FingerprintMatchKey and SubjectMatchKey are the two keys a presented
// certificate is looked up under.
func FingerprintMatchKey(fingerprint string) string { return "sha256:" + fingerprint }

// SubjectMatchKey: see FingerprintMatchKey. The issuer comes first and a
// newline separates the two, which no RFC 2253 name contains unescaped.
func SubjectMatchKey(subject, issuer string) string { return "dn:" + issuer + "\n" + subject }

// Utility accounts' text bounds.
const (
	maxNPENameLen = 1024
)

const (
	// One statement: the account of whichever registration matches, the
	// fingerprint's before the subject's.
	npeAccountSQL = selectAccountsWithCards +
		`accounts a LEFT JOIN cards c ON c.account_id = a.id
WHERE a.account_type = 'utility' AND a.id = (
    SELECT account_id FROM npe_certificates WHERE match_key IN (?, ?)
    ORDER BY CASE kind WHEN 'fingerprint' THEN 0 ELSE 1 END LIMIT 1)` + cardsOldestFirst

	insertNPESQL = `
INSERT INTO npe_certificates (match_key, account_id, kind, subject, issuer, created_at)
SELECT ?, id, ?, ?, ?, ? FROM accounts WHERE username = ? AND account_type = 'utility'`

	deleteNPESQL = `
DELETE FROM npe_certificates
WHERE match_key = ? AND account_id = (SELECT id FROM accounts WHERE username = ?)`

	listNPESQL = `
SELECT n.kind, n.match_key, n.subject, n.issuer, n.created_at, n.account_id
FROM npe_certificates n JOIN accounts a ON a.id = n.account_id
WHERE a.username = ? ORDER BY n.created_at, n.match_key`

	// A disabled (or pending) sponsor disables its active utility accounts.
	disableSponsoredSQL = `
UPDATE accounts SET status = 'disabled', disabled_reason = 'sponsor', updated_at = ?
WHERE sponsor_id = ? AND account_type = 'utility' AND status = 'active'
RETURNING id, username`

	// The SET expressions see the row as it was: the previous logon moves
	// to prev_*, and RETURNING reads the new row, i.e. that previous one.
	recordLogonSQL = `
UPDATE accounts SET
    prev_logon_at   = logon_at,
    prev_logon_from = logon_from,
    prev_failed     = failed_since,
    logon_at        = ?,
    logon_from      = ?,
    failed_since    = 0,
    last_login_at   = CASE WHEN last_login_at IS NULL OR last_login_at < ? THEN ? ELSE last_login_at END
WHERE id = ?
RETURNING prev_logon_at, prev_logon_from, prev_failed`

	recordSignInSQL = `
UPDATE accounts
SET last_login_at = CASE WHEN last_login_at IS NULL OR last_login_at < ? THEN ? ELSE last_login_at END
WHERE id = ?`

	insertUtilitySQL = `
INSERT INTO accounts (username, edipi, given_name, middle_name, family_name, suffix, email,
                      affiliation, status, created_at, updated_at, account_type, sponsor_id,
                      expires_at, enabled_at, id_kind, id_key)
VALUES (?, NULL, ?, '', '', '', ?, ?, 'active', ?, ?, 'utility', ?, ?, ?, 'utility', ?)`

	setMailOptOutSQL = `UPDATE accounts SET mail_optout = ? WHERE id = ?`
)

// UtilityAccount is what an administrator gives to create a utility
// account.
type UtilityAccount struct {
	Username    string
	Name        string // what the system is, e.g. "Logistics batch interface"
	Email       string // where its notices go (a team mailbox); may be empty
	Affiliation string
	Sponsor     string    // username of an active person's account
	ExpiresAt   time.Time // required: a utility account always ends
}

// CreateUtilityAccount creates an active utility account sponsored by an
// active person's account, in one transaction that checks the sponsor. A
// taken username fails with ErrUsernameTaken; an unknown sponsor with
// ErrNotFound; a sponsor that is not an active person's account with
// ErrSponsorInactive.
func (s *SQLStore) CreateUtilityAccount(ctx context.Context, u UtilityAccount) (*Account, error) {
	if err := checkNewUsername(u.Username); err != nil {
		return nil, fmt.Errorf("store: create utility account: %w", err)
	}
	if u.Name == "" || len(u.Name) > 200 || u.ExpiresAt.IsZero() {
		return nil, fmt.Errorf("store: create utility account: %w", invalid("a utility account needs a name (at most 200 characters) and an expiry"))
	}
	var a *Account
	err := s.inWriteTx(ctx, func(ex executor) error {
		sponsor, err := oneAccount(ctx, ex, accountByUsernameSQL, u.Sponsor)
		if err != nil {
			return err
		}
		if sponsor.Type == TypeUtility || sponsor.Status != StatusActive {
			return ErrSponsorInactive
		}
		at := now().Unix()
		if _, err := ex.exec(ctx, insertUtilitySQL, u.Username, u.Name, u.Email,
			u.Affiliation, at, at, sponsor.ID, u.ExpiresAt.Unix(), at, u.Username); err != nil {
			return err
		}
		if a, err = oneAccount(ctx, ex, accountByUsernameSQL, u.Username); err != nil {
			return err
		}
		return s.announce(ctx, ex, changeOf(a))
	})
	if err != nil {
		return nil, fmt.Errorf("store: create utility account: %w", s.dialect.translate(err))
	}
	return a, nil
}

// disableSponsored disables the active utility accounts a sponsors when a
// is no longer active, inside the transaction that changed a's status.
func (s *SQLStore) disableSponsored(ctx context.Context, ex executor, a *Account) error {
	_, err := s.disableSponsoredList(ctx, ex, a)
	return err
}

// disableSponsoredList is disableSponsored, returning the accounts it
// disabled.
func (s *SQLStore) disableSponsoredList(ctx context.Context, ex executor, a *Account) ([]Change, error) {
	if a.Status == StatusActive {
		return nil, nil
	}
	rows, err := ex.query(ctx, disableSponsoredSQL, now().Unix(), a.ID)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.AccountID, &c.Username); err != nil {
			rows.Close()
			return nil, err
		}
		changes = append(changes, c)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	for _, c := range changes {
		if err := s.announce(ctx, ex, c); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

// RegisterNPE registers a non-person certificate to the named utility
// account. One certificate (or subject and issuer) maps to at most one
// account: a second registration fails with ErrCardTaken; a username that
// is not a utility account with ErrNotUtility.
func (s *SQLStore) RegisterNPE(ctx context.Context, username string, c NPECert) error {
	kind := "subject"
	if c.Fingerprint != "" {
		if !ValidFingerprint(c.Fingerprint) {
			return fmt.Errorf("store: register certificate: %w", invalid("fingerprint must be 64 lowercase hex digits"))
		}
		kind = "fingerprint"
	} else if c.Subject == "" || c.Issuer == "" {
		return fmt.Errorf("store: register certificate: %w", invalid("a subject match needs both the subject and the issuer"))
	}
	if len(c.Subject) > maxNPENameLen || len(c.Issuer) > maxNPENameLen || !storableKey(c.Subject) || !storableKey(c.Issuer) {
		return fmt.Errorf("store: register certificate: %w", invalid("subject and issuer must be valid text of at most 1024 bytes"))
	}
	err := s.inWriteTx(ctx, func(ex executor) error {
		err := ex.execOne(ctx, insertNPESQL, c.MatchKey(), kind, c.Subject, c.Issuer, now().Unix(), username)
		if errors.Is(err, ErrNotFound) {
			if _, lerr := oneAccount(ctx, ex, accountByUsernameSQL, username); lerr != nil {
				return lerr
			}
			return ErrNotUtility
		}
		if err != nil {
			return err
		}
		return s.announce(ctx, ex, Change{Username: username, Resync: true})
	})
	if _, ok := s.dialect.uniqueViolation(err); ok {
		err = ErrCardTaken
	}
	if err != nil {
		return fmt.Errorf("store: register certificate: %w", s.dialect.translate(err))
	}
	return nil
}

// UnregisterNPE removes a registration (by its MatchKey) from the named
// account, or fails with ErrNotFound.
func (s *SQLStore) UnregisterNPE(ctx context.Context, username, matchKey string) error {
	err := s.inWriteTx(ctx, func(ex executor) error {
		if err := ex.execOne(ctx, deleteNPESQL, matchKey, username); err != nil {
			return err
		}
		return s.announce(ctx, ex, Change{Username: username, Resync: true})
	})
	if err != nil {
		return fmt.Errorf("store: unregister certificate: %w", s.dialect.translate(err))
	}
	return nil
}

// NPECerts lists the certificates registered to the named account.
func (s *SQLStore) NPECerts(ctx context.Context, username string) ([]NPECert, error) {
	rows, err := s.reads().query(ctx, listNPESQL, username)
	if err != nil {
		return nil, fmt.Errorf("store: list certificates: %w", err)
	}
	defer rows.Close()
	var out []NPECert
	for rows.Next() {
		var c NPECert
		var kind, key string
		var created int64
		if err := rows.Scan(&kind, &key, &c.Subject, &c.Issuer, &created, &c.AccountID); err != nil {
			return nil, fmt.Errorf("store: list certificates: %w", err)
		}
		if kind == "fingerprint" {
			c.Fingerprint = strings.TrimPrefix(key, "sha256:")
		}
		c.CreatedAt = fromUnix(created)
		out = append(out, c)
	}
	return out, rows.Err()
}

// NPEAccount returns the utility account a non-person certificate is
// registered to, by its fingerprint or else its subject and issuer, or
// ErrNotFound.
func (s *SQLStore) NPEAccount(ctx context.Context, fingerprint, subject, issuer string) (*Account, error) {
	if !storableKey(subject) || !storableKey(issuer) {
		return nil, fmt.Errorf("store: account by certificate: %w", ErrNotFound)
	}
	rows, err := s.reads().query(ctx, npeAccountSQL, FingerprintMatchKey(fingerprint), SubjectMatchKey(subject, issuer))
	if err != nil {
		return nil, fmt.Errorf("store: account by certificate: %w", s.dialect.translate(err))
	}
	accounts, err := scanAccounts(rows)
	if err != nil {
		return nil, fmt.Errorf("store: account by certificate: %w", err)
	}
	if len(accounts) == 0 {
		return nil, fmt.Errorf("store: account by certificate: %w", ErrNotFound)
	}
	return accounts[0], nil
}

// Logon is a successful logon as the last sign-in notice shows it.
type Logon struct {
	At   time.Time // zero: none recorded before
	From string    // the client address
	// Failed is the failed password attempts between this logon and the
	// next.
	Failed int
}

// RecordLogon records a logon (the banner accepted) at at from the client
// address from, and returns the logon before it with the failed attempts
// since: what the person is to be shown. The logon also counts as the
// account's last sign-in. ErrNotFound if there is no such account.
func (s *SQLStore) RecordLogon(ctx context.Context, accountID int64, at time.Time, from string) (Logon, error) {
	if len(from) > 64 || !storableKey(from) {
		from = ""
	}
	var prev Logon
	var prevAt sql.NullInt64
	sec := at.Unix()
	err := s.writes().queryRow(ctx, recordLogonSQL, sec, from, sec, sec, accountID).Scan(&prevAt, &prev.From, &prev.Failed)
	if err != nil {
		return Logon{}, fmt.Errorf("store: record logon: %w", s.dialect.translate(err))
	}
	prev.At = fromUnixOrNull(prevAt)
	return prev, nil
}

// RecordSignIn records a successful password sign-in as the account's
// last sign-in (cards are recorded by TouchCard): one write per sign-in,
// never per request.
func (s *SQLStore) RecordSignIn(ctx context.Context, accountID int64, at time.Time) error {
	sec := at.Unix()
	if err := s.writes().execOne(ctx, recordSignInSQL, sec, sec, accountID); err != nil {
		return fmt.Errorf("store: record sign-in: %w", s.dialect.translate(err))
	}
	return nil
}

// SetMailOptOut replaces the optional notices the account turned off.
// kinds are checked by the caller against the known optional kinds.
func (s *SQLStore) SetMailOptOut(ctx context.Context, accountID int64, kinds []string) error {
	kinds = slices.Clone(kinds)
	slices.Sort(kinds)
	kinds = slices.Compact(kinds)
	if len(kinds) > 32 {
		return fmt.Errorf("store: set mail preferences: %w", invalid("too many notice kinds"))
	}
	for _, k := range kinds {
		if !ValidGroupName(k) {
			return fmt.Errorf("store: set mail preferences: %w", invalid("notice kinds are lowercase names"))
		}
	}
	text := noCategories
	if len(kinds) > 0 {
		b, err := json.Marshal(kinds)
		if err != nil {
			return err
		}
		text = string(b)
	}
	if err := s.writes().execOne(ctx, setMailOptOutSQL, text, accountID); err != nil {
		return fmt.Errorf("store: set mail preferences: %w", s.dialect.translate(err))
	}
	return nil
}

// RenewUtilityAccount gives a utility account a new sponsor (an active
// person's account; "" keeps the current one) and a new expiry, in one
// transaction that checks the sponsor. It does not enable the account.
// ErrNotFound for an unknown account or sponsor, ErrNotUtility for a
// person's account, ErrSponsorInactive for a sponsor that is not an
// active person's account.
func (s *SQLStore) RenewUtilityAccount(ctx context.Context, username, sponsor string, expiresAt time.Time) (*Account, error) {
	if expiresAt.IsZero() {
		return nil, fmt.Errorf("store: renew utility account: %w", invalid("a utility account needs an expiry"))
	}
	var a *Account
	err := s.inWriteTx(ctx, func(ex executor) error {
		cur, err := oneAccount(ctx, ex, accountByUsernameSQL, username)
		if err != nil {
			return err
		}
		if cur.Type != TypeUtility {
			return ErrNotUtility
		}
		sponsorID := cur.SponsorID
		if sponsor != "" {
			sp, err := oneAccount(ctx, ex, accountByUsernameSQL, sponsor)
			if err != nil {
				return err
			}
			if sp.Type == TypeUtility || sp.Status != StatusActive {
				return ErrSponsorInactive
			}
			sponsorID = sp.ID
		}
		if err := ex.execOne(ctx, `UPDATE accounts SET sponsor_id = ?, expires_at = ?, updated_at = ? WHERE id = ?`,
			sponsorID, expiresAt.Unix(), now().Unix(), cur.ID); err != nil {
			return err
		}
		if a, err = oneAccount(ctx, ex, accountByUsernameSQL, username); err != nil {
			return err
		}
		return s.announce(ctx, ex, changeOf(a))
	})
	if err != nil {
		return nil, fmt.Errorf("store: renew utility account: %w", s.dialect.translate(err))
	}
	return a, nil
}

// RestoreInactive enables a person's account the gateway disabled for
// inactivity (and only such an account, atomically: one an administrator
// disabled stays disabled), after its holder re-validated against the
// roster. ErrStatusConflict when the account is not in that state.
func (s *SQLStore) RestoreInactive(ctx context.Context, accountID int64) (*Account, error) {
	var a *Account
	err := s.inWriteTx(ctx, func(ex executor) error {
		at := now().Unix()
		err := ex.execOne(ctx, `UPDATE accounts SET status = 'active', disabled_reason = '', enabled_at = ?, updated_at = ?
WHERE id = ? AND status = 'disabled' AND disabled_reason = 'inactive' AND account_type = 'person'`, at, at, accountID)
		if errors.Is(err, ErrNotFound) {
			return ErrStatusConflict
		}
		if err != nil {
			return err
		}
		rows, err := ex.query(ctx, selectAccountsWithCards+`accounts a LEFT JOIN cards c ON c.account_id = a.id WHERE a.id = ?`+cardsOldestFirst, accountID)
		if err != nil {
			return err
		}
		accounts, err := scanAccounts(rows)
		if err != nil {
			return err
		}
		if len(accounts) == 0 {
			return ErrNotFound
		}
		a = accounts[0]
		return s.announce(ctx, ex, changeOf(a))
	})
	if err != nil {
		return nil, fmt.Errorf("store: restore account: %w", s.dialect.translate(err))
	}
	return a, nil
}

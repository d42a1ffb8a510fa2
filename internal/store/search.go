package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidQuery: an AccountQuery field is too long, not valid UTF-8, or
// names an unknown status.
var ErrInvalidQuery = errors.New("invalid account query")

// MaxQueryText bounds each text field of an AccountQuery, in bytes: no
// username, DoD ID, name or email the store holds is longer.
const MaxQueryText = 256

// AccountQuery selects accounts for SearchAccounts. Every field left empty
// selects all accounts; the fields set must all match.
type AccountQuery struct {
	// Text matches a username or DoD ID that starts with it, or a given
	// name, family name or email that contains it, ignoring case (ASCII
	// case on SQLite, whose LOWER folds only ASCII). Leading and trailing
	// spaces are ignored. '%' and '_' match themselves.
	Text string
	// Username and EDIPI match exactly.
	Username, EDIPI string
	Status          Status
	// Group selects the accounts in that group; it must be a
	// ValidGroupName.
	Group string

	// Offset and Limit cut the page as for ListAccounts: Limit is capped at
	// MaxListLimit, and zero or less means MaxListLimit.
	Offset, Limit int
}

// AccountPage is one page of a search.
type AccountPage struct {
	// Accounts are the page's accounts, ordered by username, with their
	// cards and groups.
	Accounts []*Account
	// Total counts every account the query matches, on all pages.
	Total int
}

// likeEscape makes s match itself in a LIKE pattern written with
// ESCAPE '\'.
var likeEscape = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// where builds the query's WHERE clause over the accounts table aliased s,
// from constant fragments only: values travel as arguments. There are at
// most 2^5 distinct clauses, so the prepared-statement cache stays small.
func (q AccountQuery) where() (clause string, args []any, err error) {
	text := strings.TrimSpace(q.Text)
	for _, f := range []struct{ name, value string }{
		{"text", text}, {"username", q.Username}, {"edipi", q.EDIPI}, {"status", string(q.Status)}, {"group", q.Group},
	} {
		if len(f.value) > MaxQueryText || !utf8.ValidString(f.value) {
			return "", nil, fmt.Errorf("%w: %s must be valid text of at most %d bytes", ErrInvalidQuery, f.name, MaxQueryText)
		}
	}
	var conds []string
	if text != "" {
		lower := strings.ToLower(text)
		prefix := likeEscape.Replace(lower) + "%"
		contains := "%" + likeEscape.Replace(lower) + "%"
		conds = append(conds, `(LOWER(s.username) LIKE ? ESCAPE '\' OR s.edipi LIKE ? ESCAPE '\'
 OR LOWER(s.given_name) LIKE ? ESCAPE '\' OR LOWER(s.family_name) LIKE ? ESCAPE '\'
 OR LOWER(s.email) LIKE ? ESCAPE '\')`)
		args = append(args, prefix, prefix, contains, contains, contains)
	}
	if q.Username != "" {
		conds = append(conds, `s.username = ?`)
		args = append(args, q.Username)
	}
	if q.EDIPI != "" {
		conds = append(conds, `s.edipi = ?`)
		args = append(args, q.EDIPI)
	}
	switch q.Status {
	case "":
	case StatusActive, StatusDisabled, StatusPending:
		conds = append(conds, `s.status = ?`)
		args = append(args, string(q.Status))
	default:
		return "", nil, fmt.Errorf("%w: status must be %q, %q or %q", ErrInvalidQuery, StatusActive, StatusDisabled, StatusPending)
	}
	if q.Group != "" {
		if !ValidGroupName(q.Group) {
			return "", nil, fmt.Errorf("%w: %w", ErrInvalidQuery, ErrInvalidGroup)
		}
		// The store writes group_names as compact JSON of names that need
		// no escaping, so '"name"' occurs in the text exactly when the
		// account is in the group.
		conds = append(conds, `s.group_names LIKE ? ESCAPE '\'`)
		args = append(args, `%"`+likeEscape.Replace(q.Group)+`"%`)
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

// SearchAccounts implements Store.
func (s *SQLStore) SearchAccounts(ctx context.Context, q AccountQuery) (AccountPage, error) {
	where, args, err := q.where()
	if err != nil {
		return AccountPage{}, fmt.Errorf("store: search accounts: %w", err)
	}
	var page AccountPage
	ex := s.reads()
	// The count and the page are two reads, which a concurrent write can
	// fall between; for an administrator's listing that is harmless, and
	// it spares holding a snapshot open.
	if err := ex.queryRow(ctx, `SELECT COUNT(*) FROM accounts s`+where, args...).Scan(&page.Total); err != nil {
		return AccountPage{}, fmt.Errorf("store: search accounts: %w", err)
	}
	offset, limit := pageBounds(q.Offset, q.Limit)
	if page.Total == 0 || offset >= page.Total {
		return page, nil
	}
	// As in listAccountsSQL, the page is cut from accounts alone.
	query := selectAccountsWithCards + `(SELECT * FROM accounts s` + where + ` ORDER BY s.username LIMIT ? OFFSET ?) a
LEFT JOIN cards c ON c.account_id = a.id
ORDER BY a.username, c.created_at, c.fingerprint`
	rows, err := ex.query(ctx, query, append(args, limit, offset)...)
	if err != nil {
		return AccountPage{}, fmt.Errorf("store: search accounts: %w", err)
	}
	if page.Accounts, err = scanAccounts(rows); err != nil {
		return AccountPage{}, fmt.Errorf("store: search accounts: %w", err)
	}
	return page, nil
}

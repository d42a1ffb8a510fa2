package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidGroup: a group name is not a ValidGroupName, or an account
// would be in more than MaxGroupsPerAccount groups.
var ErrInvalidGroup = errors.New("invalid group name")

// MaxGroupsPerAccount bounds an account's groups. Every sign-in's cache
// fill decodes them, and access policies scan them, so the bound keeps both
// small; real accounts are in a handful.
const MaxGroupsPerAccount = 64

// GroupCount is one group and how many accounts are in it.
type GroupCount struct {
	Name     string
	Accounts int
}

// ValidGroupName reports whether name can name a group: 1 to 64 characters,
// lowercase ASCII letters, digits, '.', '_' or '-', starting with a letter
// or digit. The narrow alphabet keeps names unambiguous in policies, logs,
// headers and CSV, and means their JSON form never needs escaping, which
// the filter by group relies on.
func ValidGroupName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// normalizeGroups checks every name and returns them sorted without
// repeats; nil if there are none.
func normalizeGroups(groups []string) ([]string, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	for i, g := range groups {
		if !ValidGroupName(g) {
			// The name itself is not echoed: it is caller input.
			return nil, fmt.Errorf("%w: group %d must be 1-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalidGroup, i+1)
		}
	}
	return sortGroups(slices.Clone(groups))
}

// sortGroups sorts groups in place, drops repeats and applies the bound on
// their number.
func sortGroups(groups []string) ([]string, error) {
	slices.Sort(groups)
	out := slices.Compact(groups)
	if len(out) == 0 {
		return nil, nil
	}
	if len(out) > MaxGroupsPerAccount {
		return nil, fmt.Errorf("%w: an account can be in at most %d groups", ErrInvalidGroup, MaxGroupsPerAccount)
	}
	return out, nil
}

// encodeGroups renders groups as the JSON array the group_names column
// holds, after checking them and putting them in order.
func encodeGroups(groups []string) (string, error) {
	groups, err := normalizeGroups(groups)
	if err != nil || len(groups) == 0 {
		return noCategories, err
	}
	b, err := json.Marshal(groups)
	return string(b), err
}

const (
	// A no-op UPDATE takes the row's write lock: on PostgreSQL it waits for
	// any other transaction editing the row to commit, and the SELECT that
	// follows (a new snapshot under READ COMMITTED) then sees that
	// transaction's groups. So two nodes adding different groups at once
	// serialize and both additions stick. SQLite's IMMEDIATE write
	// transactions already exclude one another; the UPDATE costs it
	// nothing and answers "no such account" for both. It is portable where
	// SELECT ... FOR UPDATE is not.
	lockAccountSQL = `UPDATE accounts SET updated_at = updated_at WHERE username = ?`

	accountGroupsSQL = `SELECT group_names FROM accounts WHERE username = ?`

	setGroupsSQL = `UPDATE accounts SET group_names = ?, updated_at = ? WHERE username = ?`

	// Only accounts in some group; counted in Go, since splitting a JSON
	// array in SQL differs between databases.
	allGroupsSQL = `SELECT group_names FROM accounts WHERE group_names <> '[]'`
)

// AddGroups implements Store.
func (s *SQLStore) AddGroups(ctx context.Context, username string, groups ...string) (*Account, error) {
	return s.editGroups(ctx, "add groups", username, groups, func(have, edit []string) []string {
		return append(have, edit...)
	})
}

// RemoveGroups implements Store.
func (s *SQLStore) RemoveGroups(ctx context.Context, username string, groups ...string) (*Account, error) {
	return s.editGroups(ctx, "remove groups", username, groups, func(have, edit []string) []string {
		return slices.DeleteFunc(have, func(g string) bool { return slices.Contains(edit, g) })
	})
}

// editGroups reads the account's groups, applies edit and writes the result
// back, all under the row's lock, and announces the change if there is one.
func (s *SQLStore) editGroups(ctx context.Context, op, username string, groups []string, edit func(have, edit []string) []string) (*Account, error) {
	groups, err := normalizeGroups(groups)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	var a *Account
	err = s.inWriteTx(ctx, func(ex executor) error {
		if err := ex.execOne(ctx, lockAccountSQL, username); err != nil {
			return err
		}
		var text string
		if err := ex.queryRow(ctx, accountGroupsSQL, username).Scan(&text); err != nil {
			return err
		}
		have, err := decodeStrings("groups", text)
		if err != nil {
			return err
		}
		// The names held are not checked again: one the rules came to
		// refuse later is not this edit's business. The bound on their
		// number applies to the result.
		want, err := sortGroups(edit(slices.Clone(have), groups))
		if err != nil {
			return err
		}
		changed := !slices.Equal(have, want)
		if changed {
			encoded := noCategories
			if len(want) > 0 {
				b, err := json.Marshal(want)
				if err != nil {
					return err
				}
				encoded = string(b)
			}
			if err := ex.execOne(ctx, setGroupsSQL, encoded, now().Unix(), username); err != nil {
				return err
			}
		}
		if a, err = oneAccount(ctx, ex, accountByUsernameSQL, username); err != nil {
			return err
		}
		if !changed {
			return nil
		}
		return s.announce(ctx, ex, changeOf(a))
	})
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, s.dialect.translate(err))
	}
	return a, nil
}

// ListGroups implements Store.
func (s *SQLStore) ListGroups(ctx context.Context) ([]GroupCount, error) {
	rows, err := s.reads().query(ctx, allGroupsSQL)
	if err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var text string
		if err := rows.Scan(&text); err != nil {
			return nil, fmt.Errorf("store: list groups: %w", err)
		}
		groups, err := decodeStrings("groups", text)
		if err != nil {
			return nil, fmt.Errorf("store: list groups: %w", err)
		}
		for _, g := range groups {
			counts[g]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	list := make([]GroupCount, 0, len(counts))
	for name, n := range counts {
		list = append(list, GroupCount{Name: name, Accounts: n})
	}
	slices.SortFunc(list, func(x, y GroupCount) int { return strings.Compare(x.Name, y.Name) })
	return list, nil
}

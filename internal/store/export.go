package store

import (
	"context"
	"fmt"
)

// exportPageSize is how many accounts ExportAccounts reads per query: big
// enough that the per-query cost vanishes, small enough that a page's
// accounts and cards are a few hundred kilobytes.
const exportPageSize = 500

const (
	// Keyset pagination: each page starts after the last username of the
	// one before, so the unique index on username hands over every page
	// at the same cost, where OFFSET would walk past all earlier rows.
	//
	// Utility accounts are not exported: the CSV format has no column for
	// their type, sponsor and expiry, and has them without a DoD ID, which
	// an import refuses; they are recreated with create-utility.
	exportPageSQL = selectAccountsWithCards +
		`(SELECT * FROM accounts WHERE username > ? AND account_type = 'person' ORDER BY username LIMIT ?) a
LEFT JOIN cards c ON c.account_id = a.id
ORDER BY a.username, c.created_at, c.fingerprint`

	// The first page uses >= so that even an empty username, which the
	// schema does not forbid, is exported.
	exportFirstPageSQL = selectAccountsWithCards +
		`(SELECT * FROM accounts WHERE username >= ? AND account_type = 'person' ORDER BY username LIMIT ?) a
LEFT JOIN cards c ON c.account_id = a.id
ORDER BY a.username, c.created_at, c.fingerprint`
)

// ExportAccounts implements Store.
func (s *SQLStore) ExportAccounts(ctx context.Context, fn func(*Account) error) error {
	query, after := exportFirstPageSQL, ""
	for {
		rows, err := s.reads().query(ctx, query, after, exportPageSize)
		if err != nil {
			return fmt.Errorf("store: export accounts: %w", err)
		}
		// The page is read in full and its rows closed before fn runs, so a
		// slow consumer holds no connection or snapshot.
		page, err := scanAccounts(rows)
		if err != nil {
			return fmt.Errorf("store: export accounts: %w", err)
		}
		for _, a := range page {
			if err := fn(a); err != nil {
				return err
			}
		}
		if len(page) < exportPageSize {
			return nil
		}
		query, after = exportPageSQL, page[len(page)-1].Username
	}
}

package store

import "database/sql"

// scanAccounts reads the rows of selectAccountsWithCards, one per
// account-card pair (card columns NULL for an account without cards), and
// folds them into accounts. Rows of one account must be adjacent. It closes
// rows.
func scanAccounts(rows *sql.Rows) ([]*Account, error) {
	defer rows.Close()
	var accounts []*Account
	for rows.Next() {
		var (
			a                              Account
			status, categories, groups     string
			created, updated               int64
			lastLogin                      sql.NullInt64
			passwordChanged, lockedUntil   sql.NullInt64
			resetRequired                  sql.NullInt64
			fingerprint, subject, issuer   sql.NullString
			serial                         sql.NullString
			notAfter, cardCreated, lastUse sql.NullInt64
		)
		err := rows.Scan(
			&a.ID, &a.Username, &a.EDIPI, &a.GivenName, &a.MiddleName, &a.FamilyName,
			&a.Suffix, &a.Email, &a.Affiliation, &status, &created, &updated,
			&lastLogin,
			&categories, &groups, &a.Organization, &a.Location, &a.WorkAddress, &a.Phone,
			&a.HasPassword, &passwordChanged, &lockedUntil, &resetRequired,
			&fingerprint, &subject, &issuer, &serial, &notAfter, &cardCreated,
			&lastUse,
		)
		if err != nil {
			return nil, err
		}
		if n := len(accounts); n == 0 || accounts[n-1].ID != a.ID {
			if a.Categories, err = decodeCategories(categories); err != nil {
				return nil, err
			}
			if a.Groups, err = decodeStrings("groups", groups); err != nil {
				return nil, err
			}
			a.Status = Status(status)
			a.CreatedAt, a.UpdatedAt = fromUnix(created), fromUnix(updated)
			a.LastLoginAt = fromUnixOrNull(lastLogin)
			a.PasswordChangedAt = fromUnixOrNull(passwordChanged)
			a.LockedUntil = fromUnixOrNull(lockedUntil)
			a.PasswordResetRequiredAt = fromUnixOrNull(resetRequired)
			accounts = append(accounts, &a)
		}
		if !fingerprint.Valid {
			continue
		}
		owner := accounts[len(accounts)-1]
		owner.Cards = append(owner.Cards, Card{
			Fingerprint: fingerprint.String,
			AccountID:   owner.ID,
			Subject:     subject.String,
			Issuer:      issuer.String,
			Serial:      serial.String,
			NotAfter:    fromUnix(notAfter.Int64),
			CreatedAt:   fromUnix(cardCreated.Int64),
			LastUsedAt:  fromUnixOrNull(lastUse),
		})
	}
	return accounts, rows.Err()
}

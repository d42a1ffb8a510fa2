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
			cardKind, cardKey              sql.NullString
			accountType, optout            string
			sponsor, expires               sql.NullInt64
			logonAt, prevLogonAt           sql.NullInt64
		)
		err := rows.Scan(
			&a.ID, &a.Username, &a.EDIPI, &a.Kind, &a.Key, &a.GivenName, &a.MiddleName, &a.FamilyName,
			&a.Suffix, &a.Email, &a.Affiliation, &status, &created, &updated,
			&lastLogin,
			&categories, &groups, &a.Organization, &a.Location, &a.WorkAddress, &a.Phone,
			&a.HasPassword, &passwordChanged, &lockedUntil, &resetRequired,
			&accountType, &sponsor, &expires, &a.DisabledReason, &optout,
			&logonAt, &a.LogonFrom, &prevLogonAt, &a.PrevLogonFrom, &a.PrevFailed,
			&fingerprint, &subject, &issuer, &serial, &notAfter, &cardCreated,
			&lastUse, &cardKind, &cardKey,
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
			if a.MailOptOut, err = decodeStrings("mail_optout", optout); err != nil {
				return nil, err
			}
			if AccountType(accountType) == TypeUtility {
				// (A person's Type stays empty, as callers build it.)
				a.Type = TypeUtility
			}
			a.SponsorID = sponsor.Int64
			a.ExpiresAt = fromUnixOrNull(expires)
			a.LogonAt, a.PrevLogonAt = fromUnixOrNull(logonAt), fromUnixOrNull(prevLogonAt)
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
			Kind:        cardKind.String,
			Key:         cardKey.String,
			NotAfter:    fromUnix(notAfter.Int64),
			CreatedAt:   fromUnix(cardCreated.Int64),
			LastUsedAt:  fromUnixOrNull(lastUse),
		})
	}
	return accounts, rows.Err()
}

// rowScanner is *sql.Row or *sql.Rows, for scanners of one row.
type rowScanner interface{ Scan(dest ...any) error }

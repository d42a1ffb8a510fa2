package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// importCardChunk is how many cards one INSERT stores: 8 columns each, so
// 8000 parameters.
const importCardChunk = 1000

const (
	importAccountsInto = ` INTO accounts (username, edipi, given_name, middle_name, family_name,
suffix, email, affiliation, status, created_at, updated_at, last_login_at, categories,
group_names, organization, location, work_address, phone) VALUES `
	importAccountRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	importCardsInto = ` INTO cards (fingerprint, account_id, subject, issuer, serial,
not_after, created_at, last_used_at) VALUES `
	importCardRow = `(?, ?, ?, ?, ?, ?, ?, ?)`

	// Both databases spell savepoints this way.
	importSavepoint         = `SAVEPOINT import_batch`
	importRollbackSavepoint = `ROLLBACK TO SAVEPOINT import_batch`
	importReleaseSavepoint  = `RELEASE SAVEPOINT import_batch`

	lastAccountIDSQL = `SELECT COALESCE(MAX(id), 0) FROM accounts`
	// Cards, and anything else of the accounts, go with them (ON DELETE
	// CASCADE).
	deleteAccountsAfterSQL = `DELETE FROM accounts WHERE id > ?`
)

// flush stores a batch. Under ImportFail it inserts at once and only if a
// key turns out to be taken works out which record clashed, to name it.
// Under ImportSkip, where clashes are expected, it looks the batch's keys
// up first and inserts the records that are free. Either way a failed
// INSERT is undone before the lookups, which then see the database as it
// was before the batch, earlier batches of this import included.
func (im *importer) flush(ctx context.Context, batch []importRecord) error {
	if len(batch) == 0 {
		return nil
	}
	if im.opts.OnConflict == ImportSkip {
		kept, err := im.resolveClashes(ctx, batch)
		if err != nil || len(kept) == 0 {
			return err
		}
		batch = kept
	}
	// A second round is needed only when another writer takes a key
	// between the lookup and the INSERT, which cannot happen on SQLite;
	// after that the import fails rather than chase it.
	for range 2 {
		mark, err := im.beginBatch(ctx)
		if err != nil {
			return err
		}
		insertErr := im.insert(ctx, batch)
		if insertErr == nil {
			return im.endBatch(ctx)
		}
		if _, ok := im.s.dialect.uniqueViolation(insertErr); !ok {
			return insertErr
		}
		if err := im.undoBatch(ctx, mark); err != nil {
			return errors.Join(insertErr, err)
		}
		kept, err := im.resolveClashes(ctx, batch) // an *ImportError under ImportFail
		if err != nil {
			return err
		}
		if len(kept) == len(batch) {
			return fmt.Errorf("a key was taken by another writer during the import: %w", im.s.dialect.translate(insertErr))
		}
		if batch = kept; len(batch) == 0 {
			return nil
		}
	}
	return errors.New("keys kept being taken by another writer during the import")
}

// beginBatch marks where a batch starts, so that undoBatch can take it
// back: a savepoint, or for dialects whose failed statements leave the
// transaction usable and whose imports exclude other writers (SQLite), the
// last account id, which spares the journal a savepoint keeps.
func (im *importer) beginBatch(ctx context.Context) (mark int64, err error) {
	if im.bulk.undoByID {
		err = im.ex.queryRow(ctx, lastAccountIDSQL).Scan(&mark)
		return mark, err
	}
	_, err = im.ex.exec(ctx, importSavepoint)
	return 0, err
}

func (im *importer) endBatch(ctx context.Context) error {
	if im.bulk.undoByID {
		return nil
	}
	_, err := im.ex.exec(ctx, importReleaseSavepoint)
	return err
}

func (im *importer) undoBatch(ctx context.Context, mark int64) error {
	if im.bulk.undoByID {
		_, err := im.ex.exec(ctx, deleteAccountsAfterSQL, mark)
		return err
	}
	_, err := im.ex.exec(ctx, importRollbackSavepoint)
	return err
}

// insert writes the batch's accounts and then their cards, and lifts any
// clearing of those cards.
func (im *importer) insert(ctx context.Context, batch []importRecord) error {
	args := im.args[:0]
	for _, r := range batch {
		a := r.a
		args = append(args, a.Username, a.EDIPI, a.GivenName, a.MiddleName, a.FamilyName,
			a.Suffix, a.Email, a.Affiliation, string(a.Status), im.at.Unix(), im.at.Unix(),
			unixOrNull(a.LastLoginAt), r.categories, r.groups, a.Organization, a.Location,
			a.WorkAddress, a.Phone)
	}
	rows, err := im.queryValues(ctx, &im.accountsStmt, importBatch, importAccountsInto, importAccountRow, ` RETURNING id, username`, len(batch), args)
	if err != nil {
		return err
	}
	// RETURNING promises no order, so ids are matched by username.
	ids := make(map[string]int64, len(batch))
	for rows.Next() {
		var (
			id       int64
			username string
		)
		if err := rows.Scan(&id, &username); err != nil {
			rows.Close()
			return err
		}
		ids[username] = id
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	if len(ids) != len(batch) {
		return fmt.Errorf("inserted %d accounts, the database returned %d", len(batch), len(ids))
	}

	args = args[:0]
	n, cards := 0, 0
	for _, r := range batch {
		id := ids[r.a.Username]
		for _, c := range r.a.Cards {
			args = append(args, c.Fingerprint, id, c.Subject, c.Issuer, c.Serial, c.NotAfter.Unix(),
				im.at.Unix(), unixOrNull(c.LastUsedAt))
			if n++; n == importCardChunk {
				if err := im.execValues(ctx, &im.cardsStmt, importCardChunk, importCardsInto, importCardRow, n, args); err != nil {
					return err
				}
				cards, n, args = cards+n, 0, args[:0]
			}
		}
	}
	if n > 0 {
		if err := im.execValues(ctx, &im.cardsStmt, importCardChunk, importCardsInto, importCardRow, n, args); err != nil {
			return err
		}
		cards += n
	}
	im.args = args
	if err := im.liftClearings(ctx, batch); err != nil {
		return err
	}
	im.report.Imported += len(batch)
	im.report.Cards += cards
	return nil
}

// liftClearings: an import registers cards as explicitly as LinkCard, and
// lifts an earlier clearing of them the same way.
func (im *importer) liftClearings(ctx context.Context, batch []importRecord) error {
	if !im.anyCleared {
		return nil
	}
	var fingerprints []string
	for _, r := range batch {
		for _, c := range r.a.Cards {
			fingerprints = append(fingerprints, c.Fingerprint)
		}
	}
	for start := 0; start < len(fingerprints); start += clashChunk {
		chunk := fingerprints[start:min(start+clashChunk, len(fingerprints))]
		if _, err := im.ex.exec(ctx, `DELETE FROM cleared_cards WHERE fingerprint IN (`+placeholders(len(chunk))+`)`, stringArgs(chunk)...); err != nil {
			return err
		}
	}
	return nil
}

// preparer is what a *sql.Tx can do beyond a querier.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// queryValues runs "INSERT" + into + n rows + tail, with the dialect's
// INSERT verb. A full batch's statement is prepared once and kept in
// *cached: parsing a thousand-row INSERT costs about as much as running it.
func (im *importer) queryValues(ctx context.Context, cached **sql.Stmt, full int, into, row, tail string, n int, args []any) (*sql.Rows, error) {
	if n == full {
		st, err := im.statement(ctx, cached, into, row, tail, n)
		if err != nil {
			return nil, err
		}
		if st != nil {
			return st.QueryContext(ctx, args...)
		}
	}
	return im.ex.query(ctx, im.valuesSQL(into, row, tail, n), args...)
}

// execValues is queryValues for an INSERT returning nothing.
func (im *importer) execValues(ctx context.Context, cached **sql.Stmt, full int, into, row string, n int, args []any) error {
	if n == full {
		st, err := im.statement(ctx, cached, into, row, "", n)
		if err != nil {
			return err
		}
		if st != nil {
			_, err = st.ExecContext(ctx, args...)
			return err
		}
	}
	_, err := im.ex.exec(ctx, im.valuesSQL(into, row, "", n), args...)
	return err
}

// statement returns *cached, first preparing it, or nil if the executor
// cannot prepare.
func (im *importer) statement(ctx context.Context, cached **sql.Stmt, into, row, tail string, n int) (*sql.Stmt, error) {
	if *cached != nil {
		return *cached, nil
	}
	p, ok := im.ex.q.(preparer)
	if !ok {
		return nil, nil
	}
	st, err := p.PrepareContext(ctx, im.ex.rebind(im.valuesSQL(into, row, tail, n)))
	*cached = st
	return st, err
}

func (im *importer) closeStatements() {
	for _, st := range []*sql.Stmt{im.accountsStmt, im.cardsStmt} {
		if st != nil {
			st.Close()
		}
	}
}

// valuesSQL is the dialect's INSERT verb, into, n copies of row separated
// by commas, and tail.
func (im *importer) valuesSQL(into, row, tail string, n int) string {
	var b strings.Builder
	b.Grow(len(im.bulk.insert) + len(into) + n*(len(row)+1) + len(tail))
	b.WriteString(im.bulk.insert)
	b.WriteString(into)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(tail)
	return b.String()
}

// placeholders is "?, ?, ..." n times.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func stringArgs(ss []string) []any {
	args := make([]any, len(ss))
	for i, s := range ss {
		args[i] = s
	}
	return args
}

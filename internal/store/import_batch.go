package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// importCardChunk is how many cards one INSERT stages: 8 columns each, so
// 8000 parameters.
const importCardChunk = 1000

const (
	importAccountsInto = ` INTO accounts (username, edipi, given_name, middle_name, family_name,
suffix, email, affiliation, status, created_at, updated_at, last_login_at, categories,
group_names, organization, location, work_address, phone, id_kind, id_key) VALUES `
	// A DoD account is keyed by its EDIPI; any other has none (NULL).
	importAccountRow = `(?, NULLIF(?, ''), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	// Both databases spell savepoints this way.
	importSavepoint         = `SAVEPOINT import_batch`
	importRollbackSavepoint = `ROLLBACK TO SAVEPOINT import_batch`
	importReleaseSavepoint  = `RELEASE SAVEPOINT import_batch`
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
		// The savepoint lets the lookups run after a failed INSERT:
		// PostgreSQL refuses every statement in a transaction after an
		// error until it rolls back to a savepoint.
		if _, err := im.ex.exec(ctx, importSavepoint); err != nil {
			return err
		}
		insertErr := im.insert(ctx, batch)
		if insertErr == nil {
			_, err := im.ex.exec(ctx, importReleaseSavepoint)
			return err
		}
		if _, ok := im.s.dialect.uniqueViolation(insertErr); !ok {
			return insertErr
		}
		if _, err := im.ex.exec(ctx, importRollbackSavepoint); err != nil {
			return errors.Join(insertErr, err)
		}
		kept, err := im.resolveClashes(ctx, batch) // an *ImportError under ImportFail
		if err != nil {
			return im.firstOf(ctx, err)
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

// firstOf returns the clash err names, unless a record before it has a
// staged card that clashes: cards are only stored at the end, so their
// clashes would otherwise be found after later records'.
func (im *importer) firstOf(ctx context.Context, err error) error {
	var ie *ImportError
	if !errors.As(err, &ie) {
		return err
	}
	record, cardErr := im.firstCardClash(ctx)
	if cardErr != nil {
		return errors.Join(err, cardErr)
	}
	if record != 0 && record < ie.Record {
		return &ImportError{Record: record, Field: "card", Err: ErrCardTaken}
	}
	return err
}

// insert writes the batch's accounts and stages their cards.
func (im *importer) insert(ctx context.Context, batch []importRecord) error {
	args := im.args[:0]
	for _, r := range batch {
		a := r.a
		kind, key := a.Kind, a.Key // validateAccount set them
		if kind == "" {
			kind, key = KindCAC, a.EDIPI
		}
		args = append(args, a.Username, a.EDIPI, a.GivenName, a.MiddleName, a.FamilyName,
			a.Suffix, a.Email, a.Affiliation, string(a.Status), im.at.Unix(), im.at.Unix(),
			unixOrNull(a.LastLoginAt), r.categories, r.groups, a.Organization, a.Location,
			a.WorkAddress, a.Phone, kind, key)
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

	im.args = args
	if err := im.stageCards(ctx, batch, ids); err != nil {
		return err
	}
	im.report.Imported += len(batch)
	return nil
}

// preparer is what a *sql.Tx can do beyond a querier.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// queryValues runs INSERT, into, n rows and tail. A full batch's statement is prepared once and kept in
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
	for _, st := range []*sql.Stmt{im.accountsStmt, im.stageStmt} {
		if st != nil {
			st.Close()
		}
	}
}

// valuesSQL is INSERT, into, n copies of row separated
// by commas, and tail.
func (im *importer) valuesSQL(into, row, tail string, n int) string {
	var b strings.Builder
	b.Grow(len("INSERT") + len(into) + n*(len(row)+1) + len(tail))
	b.WriteString("INSERT")
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

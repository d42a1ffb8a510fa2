package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ImportConflict says what ImportAccounts does with a record whose
// username, DoD ID or card is already taken.
type ImportConflict int

const (
	// ImportFail fails the whole import, storing nothing, with an
	// *ImportError naming the first such record and the key that clashed.
	ImportFail ImportConflict = iota
	// ImportSkip skips such records, counting them in the report: the
	// first record in the import to claim a key wins over later ones.
	ImportSkip
)

// ImportOptions tunes ImportAccounts. The zero value fails on conflicts.
type ImportOptions struct {
	OnConflict ImportConflict
	// MaxListed caps ImportReport.SkippedRecords; zero or less means
	// DefaultMaxListed. The count in Skipped is always complete.
	MaxListed int
}

// DefaultMaxListed is how many skipped records an ImportReport lists unless
// ImportOptions.MaxListed says otherwise.
const DefaultMaxListed = 100

// ImportReport tells what an import stored.
type ImportReport struct {
	Imported int // accounts stored
	Cards    int // cards stored with them
	Skipped  int // records skipped under ImportSkip
	// SkippedRecords are the first skipped records, in record order.
	SkippedRecords []SkippedRecord
}

// SkippedRecord is a record ImportSkip left out.
type SkippedRecord struct {
	Record   int // 1-based number of the record in the import
	Username string
	// Key is what was taken: "username", "edipi" or "card".
	Key string
}

// ImportError is why an import failed, pinned to a record.
type ImportError struct {
	// Record is the 1-based number of the record at fault.
	Record int
	// Field is the field that broke a rule ("edipi", "card_sha256", ...)
	// or the key that clashed ("username", "edipi" or "card"); empty when
	// reading the record failed.
	Field string
	// Err wraps ErrInvalidAccount for a record that breaks a rule,
	// ErrUsernameTaken, ErrEDIPITaken or ErrCardTaken for a clash, or the
	// error the record source returned.
	Err error
}

func (e *ImportError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("record %d: %v", e.Record, e.Err)
	}
	return fmt.Sprintf("record %d (%s): %v", e.Record, e.Field, e.Err)
}

func (e *ImportError) Unwrap() error { return e.Err }

// Batch sizes. SQLite binds at most 32766 parameters per statement and
// PostgreSQL 65535; 1000 accounts of 18 columns, or 1000 cards of 8, stay
// well under both while making the per-statement cost negligible.
const (
	importBatch     = 1000
	importCardChunk = 1000
	// clashChunk bounds the IN lists of the clash lookups.
	clashChunk = 1000
)

const (
	importAccountColumns = `INSERT INTO accounts (username, edipi, given_name, middle_name, family_name,
suffix, email, affiliation, status, created_at, updated_at, last_login_at, categories,
group_names, organization, location, work_address, phone) VALUES `
	importAccountRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	importCardColumns = `INSERT INTO cards (fingerprint, account_id, subject, issuer, serial,
not_after, created_at, last_used_at) VALUES `
	importCardRow = `(?, ?, ?, ?, ?, ?, ?, ?)`

	// A savepoint per batch lets a clash be diagnosed after the failed
	// INSERT: PostgreSQL refuses every statement in a transaction after an
	// error until it rolls back to a savepoint. Both databases spell it
	// this way.
	importSavepoint         = `SAVEPOINT import_batch`
	importRollbackSavepoint = `ROLLBACK TO SAVEPOINT import_batch`
	importReleaseSavepoint  = `RELEASE SAVEPOINT import_batch`

	anyClearedCardSQL = `SELECT COUNT(*) FROM (SELECT 1 FROM cleared_cards LIMIT 1) x`
)

// importRecord is a checked record ready to insert.
type importRecord struct {
	n          int // 1-based record number
	a          *Account
	categories string // encoded
	groups     string // encoded
}

// ImportAccounts implements Store.
func (s *SQLStore) ImportAccounts(ctx context.Context, next func() (*Account, error), opts ImportOptions) (ImportReport, error) {
	if opts.MaxListed <= 0 {
		opts.MaxListed = DefaultMaxListed
	}
	var report ImportReport
	err := s.inWriteTx(ctx, func(ex executor) error {
		report = ImportReport{} // nothing of a failed attempt counts
		im := importer{s: s, ex: ex, opts: opts, report: &report, at: now()}
		return im.run(ctx, next)
	})
	if err != nil {
		return ImportReport{}, fmt.Errorf("store: import accounts: %w", s.dialect.translate(err))
	}
	return report, nil
}

type importer struct {
	s      *SQLStore
	ex     executor
	opts   ImportOptions
	report *ImportReport
	at     time.Time
	// anyCleared says whether cleared_cards had rows when the import
	// began: if not, there is no clearing to lift, which spares a DELETE
	// per batch when seeding a fresh database.
	anyCleared bool
	args       []any
}

func (im *importer) run(ctx context.Context, next func() (*Account, error)) error {
	var cleared int
	if err := im.ex.queryRow(ctx, anyClearedCardSQL).Scan(&cleared); err != nil {
		return err
	}
	im.anyCleared = cleared > 0
	batch := make([]importRecord, 0, importBatch)
	for n := 1; ; n++ {
		a, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &ImportError{Record: n, Err: err}
		}
		if a == nil {
			return &ImportError{Record: n, Err: invalid("no account")}
		}
		r, err := prepareRecord(n, a)
		if err != nil {
			return err
		}
		batch = append(batch, r)
		if len(batch) == importBatch {
			if err := im.flush(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := im.flush(ctx, batch); err != nil {
		return err
	}
	if im.report.Imported == 0 {
		return nil
	}
	// One notice for the lot: caches may hold "no such card" for cards
	// that now have an account, and listing a million keys is no notice.
	return im.s.announce(ctx, im.ex, Change{Resync: true})
}

// prepareRecord copies a, fills the defaults, checks it and encodes its
// lists.
func prepareRecord(n int, src *Account) (importRecord, error) {
	a := *src
	if a.Status == "" {
		a.Status = StatusActive
	}
	if field, err := validateAccount(&a); err != nil {
		return importRecord{}, &ImportError{Record: n, Field: field, Err: err}
	}
	categories, err := encodeCategories(a.Categories)
	if err != nil {
		return importRecord{}, &ImportError{Record: n, Field: "categories", Err: invalid(err.Error())}
	}
	groups, err := encodeGroups(a.Groups)
	if err != nil {
		return importRecord{}, &ImportError{Record: n, Field: "groups", Err: fmt.Errorf("%w: %w", ErrInvalidAccount, err)}
	}
	return importRecord{n: n, a: &a, categories: categories, groups: groups}, nil
}

// flush stores a batch. It inserts optimistically and, only if a key turns
// out to be taken, works out which records clash: under ImportFail that
// names the first, under ImportSkip they are dropped and the rest
// inserted. Clashes are found by looking the batch's keys up (which sees
// the earlier batches of this import) and within the batch itself.
func (im *importer) flush(ctx context.Context, batch []importRecord) error {
	if len(batch) == 0 {
		return nil
	}
	// Two rounds suffice when this transaction is the only writer (always
	// on SQLite); a third failure means another node took a key between
	// the lookup and the INSERT, and the import fails rather than loop.
	for range 3 {
		if _, err := im.ex.exec(ctx, importSavepoint); err != nil {
			return err
		}
		err := im.insert(ctx, batch)
		if err == nil {
			_, err = im.ex.exec(ctx, importReleaseSavepoint)
			return err
		}
		if _, ok := im.s.dialect.uniqueViolation(err); !ok {
			return err
		}
		if _, rerr := im.ex.exec(ctx, importRollbackSavepoint); rerr != nil {
			return errors.Join(err, rerr)
		}
		kept, err := im.resolveClashes(ctx, batch)
		if err != nil {
			return err
		}
		batch = kept
		if len(batch) == 0 {
			return nil
		}
	}
	return errors.New("keys kept being taken by another writer during the import")
}

// insert writes the batch's accounts and then their cards.
func (im *importer) insert(ctx context.Context, batch []importRecord) error {
	args := im.args[:0]
	for _, r := range batch {
		a := r.a
		args = append(args, a.Username, a.EDIPI, a.GivenName, a.MiddleName, a.FamilyName,
			a.Suffix, a.Email, a.Affiliation, string(a.Status), im.at.Unix(), im.at.Unix(),
			unixOrNull(a.LastLoginAt), r.categories, r.groups, a.Organization, a.Location,
			a.WorkAddress, a.Phone)
	}
	rows, err := im.ex.query(ctx, valuesSQL(importAccountColumns, importAccountRow, len(batch))+` RETURNING id, username`, args...)
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

	args, rowCount, cards := args[:0], 0, 0
	var fingerprints []string
	flushCards := func() error {
		if rowCount == 0 {
			return nil
		}
		if _, err := im.ex.exec(ctx, valuesSQL(importCardColumns, importCardRow, rowCount), args...); err != nil {
			return err
		}
		if im.anyCleared {
			// An import is as explicit a registration as LinkCard, and
			// lifts an earlier clearing the same way.
			if _, err := im.ex.exec(ctx, `DELETE FROM cleared_cards WHERE fingerprint IN (`+placeholders(len(fingerprints))+`)`, stringArgs(fingerprints)...); err != nil {
				return err
			}
		}
		cards += rowCount
		args, rowCount, fingerprints = args[:0], 0, fingerprints[:0]
		return nil
	}
	for _, r := range batch {
		id := ids[r.a.Username]
		for _, c := range r.a.Cards {
			args = append(args, c.Fingerprint, id, c.Subject, c.Issuer, c.Serial, c.NotAfter.Unix(),
				im.at.Unix(), unixOrNull(c.LastUsedAt))
			fingerprints = append(fingerprints, c.Fingerprint)
			if rowCount++; rowCount == importCardChunk {
				if err := flushCards(); err != nil {
					return err
				}
			}
		}
	}
	if err := flushCards(); err != nil {
		return err
	}
	im.args = args
	im.report.Imported += len(batch)
	im.report.Cards += cards
	return nil
}

// resolveClashes finds the records of batch whose username, DoD ID or card
// is taken, by an account stored before or by an earlier record of the
// batch that is kept. Under ImportFail it returns an *ImportError for the
// first; under ImportSkip it records them in the report and returns the
// others.
func (im *importer) resolveClashes(ctx context.Context, batch []importRecord) ([]importRecord, error) {
	var usernames, edipis, fingerprints []string
	for _, r := range batch {
		usernames = append(usernames, r.a.Username)
		edipis = append(edipis, r.a.EDIPI)
		for _, c := range r.a.Cards {
			fingerprints = append(fingerprints, c.Fingerprint)
		}
	}
	takenUsernames, err := im.existing(ctx, `SELECT username FROM accounts WHERE username IN `, usernames)
	if err != nil {
		return nil, err
	}
	takenEDIPIs, err := im.existing(ctx, `SELECT edipi FROM accounts WHERE edipi IN `, edipis)
	if err != nil {
		return nil, err
	}
	takenCards, err := im.existing(ctx, `SELECT fingerprint FROM cards WHERE fingerprint IN `, fingerprints)
	if err != nil {
		return nil, err
	}
	kept := batch[:0:0]
	for _, r := range batch {
		key, err := "", error(nil)
		switch {
		case takenUsernames[r.a.Username]:
			key, err = "username", ErrUsernameTaken
		case takenEDIPIs[r.a.EDIPI]:
			key, err = "edipi", ErrEDIPITaken
		default:
			for _, c := range r.a.Cards {
				if takenCards[c.Fingerprint] {
					key, err = "card", ErrCardTaken
					break
				}
			}
			if key == "" && repeatsCard(r.a.Cards) {
				key, err = "card", ErrCardTaken
			}
		}
		if key != "" {
			if im.opts.OnConflict != ImportSkip {
				return nil, &ImportError{Record: r.n, Field: key, Err: err}
			}
			im.report.Skipped++
			if len(im.report.SkippedRecords) < im.opts.MaxListed {
				im.report.SkippedRecords = append(im.report.SkippedRecords, SkippedRecord{Record: r.n, Username: r.a.Username, Key: key})
			}
			continue
		}
		// This record is kept: later ones in the batch cannot have its keys.
		takenUsernames[r.a.Username] = true
		takenEDIPIs[r.a.EDIPI] = true
		for _, c := range r.a.Cards {
			takenCards[c.Fingerprint] = true
		}
		kept = append(kept, r)
	}
	return kept, nil
}

// existing returns which of keys the query, a SELECT of one column ending
// in "IN ", finds.
func (im *importer) existing(ctx context.Context, query string, keys []string) (map[string]bool, error) {
	found := map[string]bool{}
	for start := 0; start < len(keys); start += clashChunk {
		chunk := keys[start:min(start+clashChunk, len(keys))]
		rows, err := im.ex.query(ctx, query+`(`+placeholders(len(chunk))+`)`, stringArgs(chunk)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			found[k] = true
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// repeatsCard reports whether a record lists the same card twice.
func repeatsCard(cards []Card) bool {
	for i := range cards {
		for j := range i {
			if cards[i].Fingerprint == cards[j].Fingerprint {
				return true
			}
		}
	}
	return false
}

// valuesSQL is head followed by n copies of row, comma-separated.
func valuesSQL(head, row string, n int) string {
	var b strings.Builder
	b.Grow(len(head) + n*(len(row)+1))
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
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

package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
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
	// Key is what was taken: "username", "edipi", "key" (the credential
	// key of a non-DoD account) or "card".
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

// importBatch is how many accounts one multi-row INSERT stores. SQLite
// binds at most 32766 parameters per statement and PostgreSQL 65535; 1000
// accounts of 18 columns stay well under both while making the cost per
// statement negligible.
const importBatch = 1000

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
	err := s.withBulkConn(ctx, func(conn *sql.Conn) error {
		return inTx(ctx, conn, s.dialect, func(ex executor) error {
			im := importer{s: s, ex: ex, opts: opts, report: &report, at: now()}
			defer im.closeStatements()
			return im.run(ctx, next)
		})
	})
	if err != nil {
		return ImportReport{}, fmt.Errorf("store: import accounts: %w", s.dialect.translate(err))
	}
	return report, nil
}

// withBulkConn runs fn on a write connection of its own, tuned for a large
// import if the dialect knows how.
//
// fn's error is the result: once fn has committed, failing to put the
// connection's settings back must not report the committed import as
// failed. Such a connection is discarded instead of going back to the
// pool, so no later statement runs with the import's settings.
func (s *SQLStore) withBulkConn(ctx context.Context, fn func(conn *sql.Conn) error) error {
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if tune := bulkTuning[s.dialect.name]; tune != nil {
		restore, err := tune(ctx, executor{q: conn, rebind: s.dialect.rebind})
		if err != nil {
			discardConn(conn) // it may be half tuned
			return err
		}
		defer func() {
			if restore() != nil {
				discardConn(conn)
			}
		}()
	}
	return fn(conn)
}

// discardConn makes the pool close conn rather than reuse it: returning
// driver.ErrBadConn from Raw marks the connection bad.
func discardConn(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}

const anyClearedCardSQL = `SELECT COUNT(*) FROM (SELECT 1 FROM cleared_cards LIMIT 1) x`

type importer struct {
	s      *SQLStore
	ex     executor
	opts   ImportOptions
	report *ImportReport
	at     time.Time
	// anyCleared says whether cleared_cards had rows when the import
	// began: if not, there is no clearing to lift, which spares a scan of
	// the staged cards when seeding a fresh database.
	anyCleared bool
	// staged counts the cards staged so far (see import_cards.go).
	staged int
	args   []any
	// Statements for full batches and full card chunks, prepared once:
	// parsing a thousand-row INSERT costs about as much as running it.
	accountsStmt, stageStmt *sql.Stmt
}

func (im *importer) run(ctx context.Context, next func() (*Account, error)) error {
	var cleared int
	if err := im.ex.queryRow(ctx, anyClearedCardSQL).Scan(&cleared); err != nil {
		return err
	}
	im.anyCleared = cleared > 0
	if _, err := im.ex.exec(ctx, createImportCardsSQL); err != nil {
		return err
	}
	if im.opts.OnConflict == ImportSkip {
		if _, err := im.ex.exec(ctx, indexImportCardsSQL); err != nil {
			return err
		}
	}
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
	if err := im.storeCards(ctx); err != nil {
		return err
	}
	im.report.Cards = im.staged
	if im.anyCleared {
		// An import registers cards as explicitly as LinkCard, and lifts
		// an earlier clearing of them the same way.
		if _, err := im.ex.exec(ctx, liftImportClearingsSQL); err != nil {
			return err
		}
	}
	// Dropped here so that the connection, which goes back to the pool,
	// can import again; a failed import's rollback removes it as well.
	if _, err := im.ex.exec(ctx, dropImportCardsSQL); err != nil {
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

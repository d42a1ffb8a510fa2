package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteConnPragmas apply to every connection. WAL lets readers and the
// writer proceed together; busy_timeout makes a connection wait for another
// process's lock rather than fail at once; synchronous=NORMAL is durable
// across application crashes in WAL mode and loses at most the last
// transactions on power loss, which for sign-in bookkeeping is the right
// trade for not syncing on every commit. SQLite leaves foreign keys off
// unless asked, per connection.
var sqliteConnPragmas = []string{
	"busy_timeout(5000)",
	"journal_mode(WAL)",
	"foreign_keys(1)",
	"synchronous(NORMAL)",
}

var sqliteDialect = dialect{
	name:                "sqlite",
	rebind:              func(query string) string { return query },
	uniqueViolation:     sqliteUniqueViolation,
	foreignKeyViolation: sqliteForeignKeyViolation,
}

// OpenSQLite opens the SQLite database at path, creating it and its parent
// directory, both readable by the owner only, if they do not exist, and
// brings its schema up to date. Several processes may open the same file;
// it must be on a local file system, as SQLite's WAL mode requires.
func OpenSQLite(ctx context.Context, path string) (*SQLStore, error) {
	if path == "" {
		return nil, errors.New("store: empty SQLite database path")
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// The file holds the shared secrets. SQLite would create it with
	// 0644 less the umask, so create it first; SQLite gives the -wal and
	// -shm files it makes later the database file's permissions.
	if err := createPrivateFile(path); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}

	// Write transactions begin IMMEDIATE, taking the write lock up front:
	// a transaction that reads first and upgrades later can fail with
	// SQLITE_BUSY on a lock no busy_timeout will wait for.
	writer, err := openSQLitePool(ctx, sqliteDSN(path, sqliteConnPragmas, "_txlock", "immediate"), 1)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, writer, sqliteDialect); err != nil {
		writer.Close()
		return nil, err
	}
	// The reader is opened after migrating so that its connections never
	// meet a half-built schema. query_only turns a write sent to the wrong
	// pool into an error instead of a lock fight with the writer.
	readerPragmas := slices.Concat(sqliteConnPragmas, []string{"query_only(1)"})
	reader, err := openSQLitePool(ctx, sqliteDSN(path, readerPragmas), max(4, runtime.GOMAXPROCS(0)))
	if err != nil {
		writer.Close()
		return nil, err
	}
	return &SQLStore{
		writer:    writer,
		reader:    reader,
		readStmts: newStmtCache(reader),
		dialect:   sqliteDialect,
	}, nil
}

func createPrivateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// sqliteDSN builds a file: URI for path. A plain file name would be cut at
// its first '?', where the driver's parameters begin; in a URI the path is
// percent-encoded, so any file name works.
func sqliteDSN(path string, pragmas []string, keyValues ...string) string {
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows volume: file:///C:/...
	}
	q := url.Values{"_pragma": pragmas}
	for i := 0; i+1 < len(keyValues); i += 2 {
		q.Set(keyValues[i], keyValues[i+1])
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// openSQLitePool opens a pool of at most conns connections, all kept open
// while idle: each new connection reopens the file and reruns the pragmas.
func openSQLitePool(ctx context.Context, dsn string, conns int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if err := pingSQLite(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open SQLite database: %w", err)
	}
	return db, nil
}

// sqliteOpenPatience bounds how long pingSQLite retries, matching the
// busy_timeout that governs every other wait for a lock.
const sqliteOpenPatience = 5 * time.Second

// pingSQLite opens the pool's first connection, which runs the pragmas.
// Switching a new database to WAL needs an exclusive lock, and when several
// processes open a fresh file together SQLite can refuse that lock with
// SQLITE_BUSY at once, without waiting out busy_timeout. The switch is made
// once for the life of the file, so the losers succeed when they try again;
// database/sql discards the failed connection, and each ping dials anew.
func pingSQLite(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(sqliteOpenPatience)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || !sqliteBusy(err) || time.Now().Add(delay).After(deadline) {
			return err
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return errors.Join(err, ctx.Err())
		case <-timer.C:
		}
	}
}

func sqliteBusy(err error) bool {
	var e *sqlite.Error
	// The low byte is the primary result code; extended codes such as
	// SQLITE_BUSY_RECOVERY mean the same here.
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// sqliteUniqueViolation recognises SQLite's UNIQUE and PRIMARY KEY errors.
// SQLite names the columns rather than the constraint, in a message such as
// "UNIQUE constraint failed: accounts.username", which is exactly the
// "table.column" form dialect.uniqueViolation reports.
func sqliteUniqueViolation(err error) (string, bool) {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return "", false
	}
	if e.Code() != sqlite3.SQLITE_CONSTRAINT_UNIQUE && e.Code() != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return "", false
	}
	const marker = "constraint failed: "
	msg := e.Error()
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return "", true
	}
	columns := msg[i+len(marker):]
	// The driver appends the result code: "... accounts.username (2067)".
	if j := strings.LastIndex(columns, " ("); j >= 0 {
		columns = columns[:j]
	}
	return columns, true
}

func sqliteForeignKeyViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

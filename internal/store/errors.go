package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors the store returns, wrapped, for conditions callers act on. Test for
// them with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrUsernameTaken = errors.New("username already taken")
	ErrEDIPITaken    = errors.New("an account already exists for this DoD ID")
	ErrCardTaken     = errors.New("card already registered")
	// ErrStatusConflict: TransitionStatus found the account in another status.
	ErrStatusConflict = errors.New("account is not in the expected status")
	// ErrCardCleared: AutoLinkCard refused a card whose registration was
	// cleared; only an explicit LinkCard may register it again.
	ErrCardCleared = errors.New("card registration was cleared")
	// ErrQuestionRepeated: the same security question was answered twice.
	ErrQuestionRepeated = errors.New("security questions must differ")
)

// errorForUnique maps a violated UNIQUE or PRIMARY KEY constraint, named
// "table.column" whatever the dialect ("table.a, table.b" for one over
// several columns), to the error that explains it.
var errorForUnique = map[string]error{
	"accounts.username": ErrUsernameTaken,
	"accounts.edipi":    ErrEDIPITaken,
	"cards.fingerprint": ErrCardTaken,
	// The person's credential key: for a DoD account the EDIPI again.
	"accounts.id_kind, accounts.id_key": ErrEDIPITaken,

	"security_answers.account_id, security_answers.question_id": ErrQuestionRepeated,
}

// translate turns the driver errors that mean something to callers into the
// package's sentinel errors and passes every other error through unchanged.
func (d dialect) translate(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if constraint, ok := d.uniqueViolation(err); ok {
		if mapped, ok := errorForUnique[constraint]; ok {
			return mapped
		}
	}
	return err
}

// Why the account database could not do what was asked, as Cause names
// it. Each is a state of the database, its disk or the way to it, never of
// the request's data: the same request may succeed once it is over, and
// meanwhile callers answer 503 with Retry-After.
const (
	// CauseDiskFull: SQLite's "database or disk is full" (SQLITE_FULL), or
	// PostgreSQL's disk_full (53100).
	CauseDiskFull = "disk_full"
	// CauseReadOnly: the database refuses writes (SQLITE_READONLY: a
	// read-only file or file system; PostgreSQL 25006, a standby after a
	// failover, or default_transaction_read_only).
	CauseReadOnly = "read_only"
	// CauseUnreachable: no connection (refused, reset, closed, the server
	// shutting down or starting: PostgreSQL class 08, 57P01-57P03; an SQLite
	// file that cannot be opened; a closed store).
	CauseUnreachable = "unreachable"
	// CauseTimeout: no answer in time (a deadline, statement_timeout).
	CauseTimeout = "timeout"
	// CauseBusy: other work held the database past the wait allowed
	// (SQLITE_BUSY, SQLITE_LOCKED; PostgreSQL lock_not_available,
	// serialization failures, deadlocks, too many connections).
	CauseBusy = "busy"
	// CauseIOError: the disk failed to read or write (SQLITE_IOERR,
	// PostgreSQL class 58).
	CauseIOError = "io_error"
	// CauseCorrupt: the database file or an index is damaged
	// (SQLITE_CORRUPT, SQLITE_NOTADB, PostgreSQL XX001, XX002).
	CauseCorrupt = "corrupt"
	// CauseOutOfResources: memory or another server limit ran out
	// (SQLITE_NOMEM, PostgreSQL class 53 but disk_full and
	// too_many_connections).
	CauseOutOfResources = "out_of_resources"
	// CauseCanceled: the caller gave up (its context was canceled) before
	// the database answered.
	CauseCanceled = "canceled"
)

// Unavailable reports whether err means that the account database could not
// serve the request (see Cause) rather than that the request was refused
// (ErrNotFound, a taken username, an invalid record, …). Callers fail
// closed with 503 and let the person try again; a transaction that failed
// so wrote nothing.
func Unavailable(err error) bool { return Cause(err) != "" }

// Cause names why the account database could not serve the request that
// failed with err: one of the Cause constants, or "" when err is nil or
// another kind of error. It is the one place where driver errors (SQLite
// result codes, PostgreSQL SQLSTATEs, network and context errors) are
// read for this, so logs, audit entries, pages and the admin API name a
// failure alike.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	// The database's own codes first: they are the most precise, and a
	// connection error may carry one (too many connections).
	var se *sqlite.Error
	if errors.As(err, &se) {
		if c := sqliteCause(se.Code()); c != "" {
			return c
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if c := postgresCause(pe.Code); c != "" {
			return c
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return CauseCanceled
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err), isNetTimeout(err):
		return CauseTimeout
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return CauseDiskFull
	case errors.Is(err, syscall.EROFS):
		return CauseReadOnly
	case errors.Is(err, syscall.EIO):
		return CauseIOError
	case isConnectionLost(err):
		return CauseUnreachable
	}
	return ""
}

// sqliteCause reads an SQLite result code. The low byte is the primary
// code; the extended codes (SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED,
// SQLITE_BUSY_SNAPSHOT …) mean the same here.
func sqliteCause(code int) string {
	switch code & 0xff {
	case sqlite3.SQLITE_FULL:
		return CauseDiskFull
	case sqlite3.SQLITE_READONLY:
		return CauseReadOnly
	case sqlite3.SQLITE_IOERR:
		return CauseIOError
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return CauseCorrupt
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_PROTOCOL:
		return CauseBusy
	case sqlite3.SQLITE_CANTOPEN:
		return CauseUnreachable
	case sqlite3.SQLITE_NOMEM:
		return CauseOutOfResources
	case sqlite3.SQLITE_INTERRUPT:
		// The driver interrupts a statement whose context ended.
		return CauseTimeout
	}
	return ""
}

// postgresCause reads a PostgreSQL SQLSTATE.
func postgresCause(code string) string {
	switch code {
	case "53100": // disk_full
		return CauseDiskFull
	case "25006": // read_only_sql_transaction
		return CauseReadOnly
	case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
		return CauseUnreachable
	case "57014": // query_canceled: statement_timeout (a canceled context is caught before)
		return CauseTimeout
	case "55P03", "40001", "40P01", "53300": // lock_not_available, serialization_failure, deadlock_detected, too_many_connections
		return CauseBusy
	case "XX001", "XX002": // data_corrupted, index_corrupted
		return CauseCorrupt
	}
	switch {
	case strings.HasPrefix(code, "08"): // connection_exception
		return CauseUnreachable
	case strings.HasPrefix(code, "53"): // insufficient_resources
		return CauseOutOfResources
	case strings.HasPrefix(code, "58"): // system_error (io_error, undefined_file …)
		return CauseIOError
	}
	return ""
}

// isNetTimeout reports a network operation that timed out.
func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isConnectionLost reports errors of a connection to the database that
// could not be made or broke: dialing refused, a reset or closed
// connection, a pool or handle already closed.
func isConnectionLost(err error) bool {
	var ce *pgconn.ConnectError
	var oe *net.OpError
	switch {
	case errors.As(err, &ce), errors.As(err, &oe):
		return true
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return true
	}
	// database/sql's own "database is closed" and pgconn's "conn closed"
	// are not exported as values.
	msg := err.Error()
	return strings.Contains(msg, "sql: database is closed") || strings.HasSuffix(msg, "conn closed")
}

// Explain says in words what a cause means, for people and logs: "the
// account database's disk is full". It never carries the error's text,
// which may name hosts, files or SQL.
func Explain(cause string) string {
	switch cause {
	case CauseDiskFull:
		return "the account database's disk is full"
	case CauseReadOnly:
		return "the account database is read-only"
	case CauseUnreachable:
		return "the account database cannot be reached"
	case CauseTimeout:
		return "the account database did not answer in time"
	case CauseBusy:
		return "the account database is busy with other work"
	case CauseIOError:
		return "the account database's disk failed to read or write"
	case CauseCorrupt:
		return "the account database is damaged"
	case CauseOutOfResources:
		return "the account database is out of memory or another resource"
	case CauseCanceled:
		return "the request ended before the account database answered"
	}
	return "the account database failed"
}

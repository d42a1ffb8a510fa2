package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cacgate/cacgate/internal/pgtest"
)

// The causes Cause names are tested against the errors the drivers really
// return wherever a test can provoke them: a full SQLite database (its
// page count capped, as a full disk would), a read-only one, one locked
// by another writer, a closed store; a PostgreSQL database turned
// read-only, a statement timeout, a server that refuses connections.

// fillSQLite caps s's database at its current size, so that the next
// write needing a page fails with SQLITE_FULL, "database or disk is full":
// what a full disk does, without filling one. The cap holds on the
// writer's one connection, which the pool keeps open.
func fillSQLite(t *testing.T, s *SQLStore) {
	t.Helper()
	ctx := context.Background()
	var pages int
	if err := s.writer.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
}

// TestCauseSQLiteDiskFull: the database is full. Every write that needs
// room fails as disk_full, and the enrollment transaction that failed left
// nothing behind: no account, card, password or answers.
func TestCauseSQLiteDiskFull(t *testing.T) {
	ctx := context.Background()
	s := sqliteBackend.openStore(t)
	fillSQLite(t, s)
	var err error
	// A capped file still has room in its last pages: write until it is
	// gone (bounded; each account needs a few hundred bytes).
	for i := range 2000 {
		err = s.CreateAccount(ctx, newAccount(fmt.Sprintf("filler%04d", i), fmt.Sprintf("10%08d", i)))
		if err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("2000 accounts fit in a full database")
	}
	if Cause(err) != CauseDiskFull || !Unavailable(err) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("filling: %v: cause %q", err, Cause(err))
	}
	accounts := countRows(t, s, "accounts")

	e := newEnrollment("john.b.smith", "1234567890", "full-disk-card")
	_, err = s.Enroll(ctx, e)
	if Cause(err) != CauseDiskFull {
		t.Fatalf("Enroll on a full database: %v: cause %q", err, Cause(err))
	}
	// Wrapped as callers wrap it, it is still named.
	if got := Cause(fmt.Errorf("enroll: creating account: %w", err)); got != CauseDiskFull {
		t.Errorf("wrapped: cause %q", got)
	}
	if _, err := s.AccountByEDIPI(ctx, "1234567890"); !errors.Is(err, ErrNotFound) {
		t.Errorf("account after the failed enrollment: %v", err)
	}
	if _, err := s.AccountByFingerprint(ctx, e.Card.Fingerprint); !errors.Is(err, ErrNotFound) {
		t.Errorf("card after the failed enrollment: %v", err)
	}
	if n := countRows(t, s, "accounts"); n != accounts {
		t.Errorf("%d accounts after the failed enrollment, want %d", n, accounts)
	}
	// Reads still work: the gateway keeps admitting registered cards.
	if _, err := s.AccountByUsername(ctx, "filler0000"); err != nil {
		t.Errorf("reading a full database: %v", err)
	}
}

// TestCauseSQLiteReadOnly: a write on a connection that may only read
// (the store's reader pool, as a read-only file or mount would) is
// read_only.
func TestCauseSQLiteReadOnly(t *testing.T) {
	s := sqliteBackend.openStore(t)
	_, err := s.readStmts.db.ExecContext(context.Background(), `INSERT INTO secrets (name, value) VALUES ('x', x'00')`)
	if err == nil {
		t.Fatal("wrote through the read-only pool")
	}
	if Cause(err) != CauseReadOnly {
		t.Fatalf("%v: cause %q", err, Cause(err))
	}
}

// TestCauseSQLiteBusy: another process holds the write lock longer than
// this one waits.
func TestCauseSQLiteBusy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cacgate.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	holder, err := sql.Open("sqlite", sqliteDSN(path, []string{"busy_timeout(0)"}))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	holder.SetMaxOpenConns(1)
	tx, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, value, created_at) VALUES ('held', x'00', 0)`); err != nil {
		t.Fatal(err)
	}
	// A writer that does not wait at all meets the lock at once.
	other, err := sql.Open("sqlite", sqliteDSN(path, []string{"busy_timeout(0)"}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.ExecContext(ctx, `INSERT INTO secrets (name, value, created_at) VALUES ('other', x'00', 0)`)
	if err == nil {
		t.Fatal("wrote past another writer's lock")
	}
	if Cause(err) != CauseBusy {
		t.Fatalf("%v: cause %q", err, Cause(err))
	}
}

// TestCauseClosedStore: a store used after Close (a config unloading
// under a request) cannot be reached.
func TestCauseClosedStore(t *testing.T) {
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = s.AccountByUsername(context.Background(), "john.q.doe")
	if Cause(err) != CauseUnreachable {
		t.Fatalf("%v: cause %q", err, Cause(err))
	}
	err = s.CreateAccount(context.Background(), newAccount("john.q.doe", "1234567890"))
	if Cause(err) != CauseUnreachable {
		t.Fatalf("%v: cause %q", err, Cause(err))
	}
}

// TestCauseContext: a request that ended, or ran out of time, before the
// database answered.
func TestCauseContext(t *testing.T) {
	s := sqliteBackend.openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.AccountByUsername(ctx, "x"); Cause(err) != CauseCanceled {
		t.Errorf("canceled: %v: cause %q", err, Cause(err))
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := s.AccountByUsername(ctx, "x"); Cause(err) != CauseTimeout {
		t.Errorf("past its deadline: %v: cause %q", err, Cause(err))
	}
}

// TestCauseNotUnavailable: the store's answers about the request, and
// other errors, are not the database being unavailable.
func TestCauseNotUnavailable(t *testing.T) {
	s := sqliteBackend.openStore(t)
	ctx := context.Background()
	if err := s.CreateAccount(ctx, newAccount("john.q.doe", "1234567890")); err != nil {
		t.Fatal(err)
	}
	_, notFound := s.AccountByUsername(ctx, "nobody")
	taken := s.CreateAccount(ctx, newAccount("john.q.doe", "1234567891"))
	_, syntax := s.writer.ExecContext(ctx, `SELEC 1`)
	for _, err := range []error{nil, notFound, taken, syntax, ErrStatusConflict, errors.New("something else")} {
		if Unavailable(err) || Cause(err) != "" {
			t.Errorf("%v: unavailable, cause %q", err, Cause(err))
		}
	}
}

// TestCauseCodes: the codes that cannot be provoked here (a PostgreSQL
// disk filling up, a server shutting down) and errors of the system, as
// the drivers wrap them.
func TestCauseCodes(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("store: enroll: %w", &pgconn.PgError{Severity: "ERROR", Code: code})
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{pg("53100"), CauseDiskFull},
		{pg("25006"), CauseReadOnly},
		{pg("57P01"), CauseUnreachable},
		{pg("57P02"), CauseUnreachable},
		{pg("57P03"), CauseUnreachable},
		{pg("08006"), CauseUnreachable},
		{pg("08001"), CauseUnreachable},
		{pg("57014"), CauseTimeout},
		{pg("55P03"), CauseBusy},
		{pg("40001"), CauseBusy},
		{pg("40P01"), CauseBusy},
		{pg("53300"), CauseBusy},
		{pg("53200"), CauseOutOfResources},
		{pg("58030"), CauseIOError},
		{pg("XX001"), CauseCorrupt},
		{pg("23505"), ""}, // a unique violation is an answer
		{pg("42P01"), ""}, // undefined_table: a bug, not an outage
		{fmt.Errorf("write: %w", syscall.ENOSPC), CauseDiskFull},
		{fmt.Errorf("open: %w", syscall.EROFS), CauseReadOnly},
		{fmt.Errorf("read: %w", syscall.EIO), CauseIOError},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, CauseUnreachable},
		{fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), CauseUnreachable},
		{sql.ErrConnDone, CauseUnreachable},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), CauseTimeout},
	} {
		if got := Cause(c.err); got != c.want {
			t.Errorf("Cause(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	for _, cause := range []string{CauseDiskFull, CauseReadOnly, CauseUnreachable, CauseTimeout, CauseBusy,
		CauseIOError, CauseCorrupt, CauseOutOfResources, CauseCanceled, ""} {
		if text := Explain(cause); !strings.Contains(text, "account database") && cause != CauseCanceled {
			t.Errorf("Explain(%q) = %q", cause, text)
		}
	}
}

// TestCausePostgresReadOnly: the database turned read-only under a
// running node (a failover to a standby, an operator's
// default_transaction_read_only): writes fail as read_only, and a node
// starting on it cannot even migrate.
func TestCausePostgresReadOnly(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	s, err := OpenPostgres(ctx, dsn, PostgresOptions{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn := pgConnect(t, dsn)
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{pgDatabase(t, dsn)}.Sanitize()+` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	// The setting holds for new sessions: end the store's.
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	// The first use of a connection the server ended may fail on the lost
	// connection (unreachable) before the pool dials a new, read-only one.
	var causes []string
	for i := range 5 {
		err = s.CreateAccount(ctx, newAccount(fmt.Sprintf("user%d", i), fmt.Sprintf("12345678%02d", i)))
		causes = append(causes, Cause(err))
		if Cause(err) == CauseReadOnly {
			break
		}
		if Cause(err) != CauseUnreachable {
			t.Fatalf("write %d on a read-only database: %v: cause %q", i+1, err, Cause(err))
		}
	}
	if causes[len(causes)-1] != CauseReadOnly {
		t.Fatalf("writes on a read-only database: causes %v", causes)
	}
	if _, err := OpenPostgres(ctx, dsn, PostgresOptions{}); Cause(err) != CauseReadOnly {
		t.Fatalf("opening a read-only database: %v: cause %q", err, Cause(err))
	}
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{pgDatabase(t, dsn)}.Sanitize()+` RESET default_transaction_read_only`); err != nil {
		t.Fatal(err)
	}
}

// TestCausePostgresTimeout: a statement that outlives statement_timeout.
func TestCausePostgresTimeout(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	conn := pgConnect(t, dsn)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `SET statement_timeout = 20`); err != nil {
		t.Fatal(err)
	}
	_, err := conn.Exec(ctx, `SELECT pg_sleep(10)`)
	if Cause(err) != CauseTimeout {
		t.Fatalf("%v: cause %q", err, Cause(err))
	}
}

// TestCausePostgresUnreachable: the server goes away under a running store
// (its connections cut, new ones refused), and a node cannot connect at
// all: unreachable, with the PostgreSQL driver's real errors.
func TestCausePostgresUnreachable(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	p := startTCPProxy(t, pgAddress(t, dsn))
	proxied := withAddress(t, dsn, p.addr)
	s, err := OpenPostgres(ctx, proxied, PostgresOptions{MaxOpenConns: 2, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateAccount(ctx, newAccount("john.q.doe", "1234567890")); err != nil {
		t.Fatal(err)
	}
	p.cut()
	if _, err := s.AccountByUsername(ctx, "john.q.doe"); Cause(err) != CauseUnreachable {
		t.Fatalf("reading after the server went away: %v: cause %q", err, Cause(err))
	}
	if err := s.CreateAccount(ctx, newAccount("jane.smith", "1234567891")); Cause(err) != CauseUnreachable {
		t.Fatalf("writing after the server went away: %v: cause %q", err, Cause(err))
	}
	// A node starting meanwhile is refused its connection.
	_, err = OpenPostgres(ctx, proxied, PostgresOptions{ConnectTimeout: 5 * time.Second})
	if Cause(err) != CauseUnreachable {
		t.Fatalf("opening: %v: cause %q", err, Cause(err))
	}
	var ce *pgconn.ConnectError
	if _, err := pgconn.Connect(ctx, proxied); !errors.As(err, &ce) || Cause(err) != CauseUnreachable {
		t.Fatalf("connecting: %v: cause %q", err, Cause(err))
	}
}

func pgConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func pgDatabase(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

func pgAddress(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("pgtest DSN %q is not a URL with a host: %v", dsn, err)
	}
	return u.Host
}

// withAddress is dsn pointed at addr.
func withAddress(t *testing.T, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// tcpProxy forwards loopback connections to a server until cut, when it
// closes every connection and stops listening: the server, as its
// clients see it, is gone (connections reset, new ones refused).
type tcpProxy struct {
	addr string
	ln   net.Listener
	mu   sync.Mutex
	cuts bool
	open []net.Conn
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", target, 10*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, up) {
				return
			}
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cuts {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	p.open = append(p.open, conns...)
	return true
}

// cut takes the server away.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts = true
	p.ln.Close()
	for _, c := range p.open {
		c.Close()
	}
	p.open = nil
}

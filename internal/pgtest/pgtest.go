// Package pgtest starts a throwaway PostgreSQL server for tests and hands
// each test a fresh database on it.
//
// The server is started on first use, once per test binary, from the
// PostgreSQL binaries installed on the machine (initdb and postgres, found
// in PATH or /usr/lib/postgresql/<version>/bin). It lives in a temporary
// directory, listens on 127.0.0.1 on a free port and on a Unix socket in
// that directory, trusts local connections, and skips fsync: nothing it
// holds outlives the tests. When the tests run as root, as in CI
// containers, the server runs as the postgres system user, since
// PostgreSQL refuses to run as root.
//
// Call Main from TestMain so the server stops, and its directory goes, when
// the tests end, whether they pass or fail. Without it the server still
// dies with the test binary (it is the binary's child, asked to quit when
// its parent dies), and the next run removes the directory left behind.
//
// Without PostgreSQL installed, tests that ask for a database are skipped,
// except when the CI environment variable is set: there a missing server
// must fail the build rather than silently test less.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	mu sync.Mutex
	// srv is the running server, nil before the first NewDatabase and
	// after Stop.
	srv *server
	// startErr is why the server could not start; once set, every later
	// NewDatabase reports it at once instead of trying again.
	startErr error
	// dbSeq numbers the databases, for unique and readable names.
	dbSeq atomic.Int64
)

// Main runs the tests and then stops the server, if they started one, and
// exits with the tests' status. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Stop stops the server, if one is running, and removes its directory.
// A later NewDatabase starts a new one.
func Stop() error {
	mu.Lock()
	defer mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.stop()
	srv = nil
	return err
}

// NewDatabase creates an empty database for the test and returns a DSN
// (a postgres:// URL) that connects to it as a superuser. The database is
// dropped when the test ends, connections still open to it included.
//
// It skips the test if PostgreSQL is not installed, unless the CI
// environment variable is set, and fails it if the server cannot start.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := running(t)
	name := fmt.Sprintf("test_%d_%s", dbSeq.Add(1), randomSuffix())
	if err := s.admin(fmt.Sprintf(`CREATE DATABASE %s`, pgx.Identifier{name}.Sanitize())); err != nil {
		t.Fatalf("pgtest: create database: %v\n%s", err, s.logTail())
	}
	t.Cleanup(func() {
		// FORCE ends the sessions a test left open (a leaked store, a
		// listener still reconnecting), which would block the drop.
		if err := s.admin(fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, pgx.Identifier{name}.Sanitize())); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("PostgreSQL server log, database %s:\n%s", name, s.logOf(name))
		}
	})
	return s.dsn(name)
}

// running returns the server, starting it on first use.
func running(t testing.TB) *server {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if srv == nil && startErr == nil {
		srv, startErr = start()
	}
	switch {
	case errors.Is(startErr, errNotInstalled) && os.Getenv("CI") == "":
		t.Skipf("PostgreSQL not installed: apt-get install postgresql (%v)", startErr)
	case startErr != nil:
		t.Fatalf("pgtest: %v", startErr)
	}
	return srv
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// adminTimeout bounds each administrative statement (CREATE and DROP
// DATABASE), so a wedged server fails the test instead of hanging it.
const adminTimeout = 30 * time.Second

// admin runs one statement on the maintenance database, over a connection
// kept for the purpose: connecting costs as much as a small statement.
func (s *server) admin(sql string) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if s.adminConn == nil || s.adminConn.IsClosed() {
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		if err != nil {
			return err
		}
		s.adminConn = conn
	}
	_, err := s.adminConn.Exec(ctx, sql)
	return err
}

package pgtest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is what StartServer returns when no PostgreSQL binaries
// are installed.
var ErrNotInstalled = errNotInstalled

// Server is a PostgreSQL server of the caller's own, apart from the one
// NewDatabase shares among a test binary's tests: for fault tests that stop
// and start the database under running gateways, and for programs outside
// tests (the benchmark) that need a database. It is set up like the shared
// one (see the package comment) and keeps its port across restarts, so a
// DSN handed out once stays good.
type Server struct {
	mu sync.Mutex
	s  *server
	// up is whether the server process is running (Stop, Crash and Start
	// change it).
	up bool
}

// StartServer initialises and starts a new server. It returns an error
// wrapping ErrNotInstalled when PostgreSQL is not installed. Close it when
// done; it also dies with the calling process.
func StartServer() (*Server, error) {
	s, err := start()
	if err != nil {
		return nil, err
	}
	return &Server{s: s, up: true}, nil
}

// NewServer is StartServer for a test: it skips the test when PostgreSQL
// is not installed (except under CI, where that fails it), fails it when
// the server cannot start, and closes the server when the test ends,
// logging the server's log if the test failed.
func NewServer(t testing.TB) *Server {
	t.Helper()
	srv, err := StartServer()
	switch {
	case errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "":
		t.Skipf("PostgreSQL not installed: apt-get install postgresql (%v)", err)
	case err != nil:
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PostgreSQL server log:\n%s", srv.LogTail())
		}
		if err := srv.Close(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return srv
}

// CreateDatabase creates an empty database and returns a DSN (a
// postgres:// URL) that connects to it as a superuser. name must be a
// plain identifier.
func (srv *Server) CreateDatabase(name string) (string, error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if err := srv.s.admin(fmt.Sprintf(`CREATE DATABASE %s`, pgx.Identifier{name}.Sanitize())); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return srv.s.dsn(name), nil
}

// DSN is the URL of database name on the server, whether or not it runs.
func (srv *Server) DSN(name string) string {
	return srv.s.dsn(name)
}

// Stop shuts the server down the way an administrator does (a fast
// shutdown: sessions are ended, the data is kept). Start brings it back.
func (srv *Server) Stop() error {
	return srv.halt(shutdownSignals...)
}

// Crash ends the server the way a power cut would, as far as its clients
// can tell (an immediate shutdown: no goodbye to the sessions, recovery at
// the next start). Start brings it back.
func (srv *Server) Crash() error {
	return srv.halt(syscall.SIGQUIT, syscall.SIGKILL)
}

func (srv *Server) halt(signals ...os.Signal) error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if !srv.up {
		return nil
	}
	srv.s.dropAdminConn()
	if !srv.s.signal(signals...) {
		return fmt.Errorf("pgtest: postgres (pid %d) did not exit", srv.s.cmd.Process.Pid)
	}
	srv.up = false
	return nil
}

// Start starts a stopped server again on its port and waits until it
// accepts connections. It fails if something else took the port meanwhile.
func (srv *Server) Start() error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.up {
		return nil
	}
	if err := srv.s.run(srv.s.port); err != nil {
		return fmt.Errorf("pgtest: restart: %w\nserver log:\n%s", err, srv.s.logTail())
	}
	srv.up = true
	return nil
}

// Close stops the server and removes its directory.
func (srv *Server) Close() error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.up = false
	return srv.s.stop()
}

// LogTail is the end of the server's log (across restarts).
func (srv *Server) LogTail() string {
	return srv.s.logTail()
}

package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// initTimeout bounds initdb, startTimeout the wait for the server to
	// accept connections, stopTimeout each step of stopping it.
	initTimeout  = 2 * time.Minute
	startTimeout = time.Minute
	stopTimeout  = 15 * time.Second

	// portAttempts bounds retries when another process takes the free
	// port between our finding it and the server binding it.
	portAttempts = 3

	// dirPrefix names the server's directory, so that a later run can
	// recognise the directory of a run that was killed (see stale.go).
	dirPrefix = "cacgate-pgtest-"
	// ownerFile in that directory holds the PID of the test binary that
	// made it.
	ownerFile = "owner.pid"
)

// server is a running PostgreSQL server of our own.
type server struct {
	dir  string // temporary directory: data/, the socket, owner.pid
	port int
	// bin and owner are what it was started with, to start it again on
	// the same port (see Server.Start).
	bin   binaries
	owner *account
	cmd   *exec.Cmd
	// exited is closed when the server process has exited; waitErr is
	// then how it exited.
	exited  chan struct{}
	waitErr error

	adminMu   sync.Mutex
	adminConn *pgx.Conn // see admin
}

// serverSettings are given on the command line so no configuration file
// needs editing. The data is thrown away after the tests, so durability
// settings are off; max_connections is high because concurrency tests open
// several pools at once.
func serverSettings(dir string, port int) []string {
	settings := []string{
		"listen_addresses=127.0.0.1",
		"port=" + strconv.Itoa(port),
		"unix_socket_directories=" + dir,
		"fsync=off",
		"synchronous_commit=off",
		"full_page_writes=off",
		"max_connections=300",
		"shared_buffers=32MB",
		"logging_collector=off",
		"log_min_messages=warning",
		"log_checkpoints=off",
		"log_min_error_statement=error",
		// The database name, for logOf.
		"log_line_prefix=%m [%p] %q[%d] ",
	}
	args := make([]string, 0, 2*len(settings))
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	return args
}

// start initialises a cluster in a new temporary directory and starts its
// server.
func start() (*server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	removeStaleDirs()
	owner, err := serverUser()
	if err != nil {
		return nil, err
	}
	dir, err := makeServerDir(owner)
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, bin: bin, owner: owner}
	if err := s.initdb(bin, owner); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		err = s.run(port)
		if err == nil {
			return s, nil
		}
		// Another process may have bound the port we picked first.
		if attempt == portAttempts || !strings.Contains(s.logTail(), "could not bind") {
			log := s.logTail()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%w\nserver log:\n%s", err, log)
		}
	}
}

// initdb creates the cluster. ICU collation, where the server supports
// it, makes the database's default collation a linguistic one, as on most
// production servers, so that a query relying on bytewise comparison
// without saying so fails here rather than in production.
func (s *server) initdb(bin binaries, owner *account) error {
	args := []string{
		"-D", filepath.Join(s.dir, "data"),
		"-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
	}
	icu := []string{"--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US"}
	if bin.version < 15 {
		icu = nil // --locale-provider is new in 15
	}
	out, err := s.runTool(owner, bin.initdb, append(args, icu...)...)
	if err != nil && icu != nil {
		// A server built without ICU: its default collation will do.
		os.RemoveAll(filepath.Join(s.dir, "data"))
		out, err = s.runTool(owner, bin.initdb, append(args, "--locale=C.UTF-8")...)
	}
	if err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

// runTool runs a PostgreSQL program to completion as owner.
func (s *server) runTool(owner *account, path string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = s.dir
	cmd.Env = serverEnv()
	setProcAttrs(cmd, owner, false)
	return cmd.CombinedOutput()
}

// serverEnv is the environment less the PG* variables, which would
// otherwise change what initdb and the server do (PGDATA, PGPORT, ...).
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// run starts the server on port and waits until it accepts connections.
// The server is our child, not a daemon started by pg_ctl, so that it can
// be told to quit when the test binary dies, however it dies.
func (s *server) run(port int) error {
	bin, owner := s.bin, s.owner
	s.port = port
	// The log goes to a file, not a pipe: the server's children inherit
	// it, and a pipe would keep Wait waiting for the last of them. It is
	// appended to, so a restarted server's log follows the first one's.
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the server has its own copy
	args := append([]string{"-D", filepath.Join(s.dir, "data")}, serverSettings(s.dir, port)...)
	cmd := exec.Command(bin.postgres, args...)
	cmd.Dir = s.dir
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setProcAttrs(cmd, owner, true)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		s.kill()
		return err
	}
	return nil
}

// waitReady polls until the server accepts a connection, exits, or
// startTimeout passes.
func (s *server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %v: %w", startTimeout, err)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited while starting: %v", s.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop shuts the server down and removes its directory: a fast shutdown
// (SIGINT) first, then an immediate one (SIGQUIT), then SIGKILL, each given
// stopTimeout.
func (s *server) stop() error {
	s.dropAdminConn()
	var err error
	if s.cmd != nil && !s.kill() {
		err = fmt.Errorf("postgres (pid %d) did not exit", s.cmd.Process.Pid)
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// dropAdminConn closes the connection admin keeps, if any.
func (s *server) dropAdminConn() {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if s.adminConn != nil {
		s.adminConn.Close(context.Background())
		s.adminConn = nil
	}
}

// shutdownSignals are tried in turn by kill: a fast shutdown (SIGINT),
// then an immediate one (SIGQUIT), then SIGKILL.
var shutdownSignals = []os.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL}

// kill stops the server process and reports whether it exited.
func (s *server) kill() bool {
	return s.signal(shutdownSignals...)
}

// signal sends each signal in turn, giving each stopTimeout, until the
// server process exits, and reports whether it did.
func (s *server) signal(signals ...os.Signal) bool {
	for _, sig := range signals {
		select {
		case <-s.exited:
			return true
		default:
		}
		_ = s.cmd.Process.Signal(sig)
		select {
		case <-s.exited:
			return true
		case <-time.After(stopTimeout):
		}
	}
	return false
}

// dsn connects to database as the superuser over TCP.
func (s *server) dsn(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, database)
}

func (s *server) logPath() string {
	return filepath.Join(s.dir, "server.log")
}

// maxLogTail is how much of the server log failure messages show.
const maxLogTail = 32 << 10

// logTail is the end of the server's log, for failure messages.
func (s *server) logTail() string {
	f, err := os.Open(s.logPath())
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > maxLogTail {
		if _, err := f.Seek(-maxLogTail, io.SeekEnd); err != nil {
			return fmt.Sprintf("(server log unreadable: %v)", err)
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxLogTail))
	if err != nil {
		return fmt.Sprintf("(server log unreadable: %v)", err)
	}
	return string(b)
}

// logOf is the end of the server's log, less the messages about other
// databases: those of a failed test and of the server itself. A message
// continues on the following lines that begin with a tab (a statement).
func (s *server) logOf(database string) string {
	var b strings.Builder
	keep := false
	for line := range strings.Lines(s.logTail()) {
		if !strings.HasPrefix(line, "\t") {
			_, rest, tagged := strings.Cut(line, "] [")
			keep = !tagged || strings.HasPrefix(rest, database+"] ") || strings.HasPrefix(rest, "] ")
		}
		if keep {
			b.WriteString(line)
		}
	}
	return b.String()
}

// freePort finds a TCP port on 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

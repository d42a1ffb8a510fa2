package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	// A minute: a hang detector, not a budget (the server forks a backend
	// per connection, which a busy machine can make slow).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestNewDatabaseIsFreshAndDropped(t *testing.T) {
	var names [2]string
	t.Run("create", func(t *testing.T) {
		for i := range names {
			conn := connect(t, NewDatabase(t))
			names[i] = queryString(t, conn, `SELECT current_database()`)
			var tables int
			if err := conn.QueryRow(context.Background(),
				`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 0 {
				t.Errorf("database %s holds %d tables (%v), want an empty one", names[i], tables, err)
			}
		}
		if names[0] == names[1] {
			t.Errorf("two databases share the name %q", names[0])
		}
	})

	// The subtest's cleanup dropped both, its open connections
	// notwithstanding.
	mu.Lock()
	s := srv
	mu.Unlock()
	conn := connect(t, s.dsn("postgres"))
	for _, name := range names {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil || n != 0 {
			t.Errorf("database %s still exists after its test (%d, %v)", name, n, err)
		}
	}
}

func TestServerSettings(t *testing.T) {
	conn := connect(t, NewDatabase(t))
	for setting, want := range map[string]string{
		"fsync":            "off",
		"listen_addresses": "127.0.0.1",
		"server_encoding":  "UTF8",
	} {
		if got := queryString(t, conn, `SHOW `+setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	// The default collation is not bytewise, as on most production
	// servers: bytewise, every capital letter sorts before every small one.
	if queryString(t, conn, `SELECT version()`) >= "PostgreSQL 15" {
		if got := queryString(t, conn, `SELECT CASE WHEN 'a' < 'B' THEN 'linguistic' ELSE 'bytewise' END`); got != "linguistic" {
			t.Errorf("default collation is %s, want linguistic (ICU)", got)
		}
	}
}

// The server never runs as root, and it stops when asked, taking its
// directory with it.
func TestStopStopsServer(t *testing.T) {
	NewDatabase(t) // make sure the shared server runs
	mu.Lock()
	s := srv
	mu.Unlock()

	b, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(s.dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if owner := fileOwner(info); owner == 0 {
		t.Errorf("data directory owned by root: the server would refuse to start")
	}
	pid, err := strconv.Atoi(string(b[:indexByte(b, '\n')]))
	if err != nil || pid != s.cmd.Process.Pid {
		t.Fatalf("postmaster.pid names %q, want %d", b, s.cmd.Process.Pid)
	}

	// Use a server of our own, so that the other tests keep theirs.
	own, err := start()
	if err != nil {
		t.Fatal(err)
	}
	if err := own.stop(); err != nil {
		t.Fatal(err)
	}
	if processAlive(own.cmd.Process.Pid) {
		t.Errorf("server %d still running after stop", own.cmd.Process.Pid)
	}
	if _, err := os.Stat(own.dir); !os.IsNotExist(err) {
		t.Errorf("server directory %s left behind (%v)", own.dir, err)
	}
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return len(b)
}

func TestRemoveStaleDirs(t *testing.T) {
	parent := os.TempDir()
	mk := func(owner string) string {
		dir, err := os.MkdirTemp(parent, dirPrefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	dead := mk("2147483646") // above any pid_max
	alive := mk(strconv.Itoa(os.Getppid()))
	unknown := mk("")
	removeStaleDirs()

	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("directory of a dead run kept (%v)", err)
	}
	for _, dir := range []string{alive, unknown} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("directory %s removed: %v", dir, err)
		}
	}
}

func TestFindBinaries(t *testing.T) {
	b, err := findBinaries()
	if err != nil {
		t.Skip(err)
	}
	if b.version < 10 {
		t.Errorf("version of %s = %d, want the real major version", b, b.version)
	}
}

func TestLogOf(t *testing.T) {
	s := &server{dir: t.TempDir()}
	log := "2026-01-01 00:00:00.000 UTC [1] LOG:  server ready\n" +
		"2026-01-01 00:00:01.000 UTC [2] [test_1_a] ERROR:  mine\n" +
		"\tSELECT 1\n" +
		"2026-01-01 00:00:02.000 UTC [3] [test_2_b] ERROR:  theirs\n" +
		"\tSELECT 2\n" +
		"2026-01-01 00:00:03.000 UTC [4] [] LOG:  no database\n"
	if err := os.WriteFile(s.logPath(), []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "2026-01-01 00:00:00.000 UTC [1] LOG:  server ready\n" +
		"2026-01-01 00:00:01.000 UTC [2] [test_1_a] ERROR:  mine\n" +
		"\tSELECT 1\n" +
		"2026-01-01 00:00:03.000 UTC [4] [] LOG:  no database\n"
	if got := s.logOf("test_1_a"); got != want {
		t.Errorf("logOf = %q\nwant %q", got, want)
	}
}

func TestServerStopStart(t *testing.T) {
	srv := NewServer(t)
	dsn, err := srv.CreateDatabase("faults")
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	if _, err := conn.Exec(context.Background(), `CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, connect(t, dsn), `SELECT v::text FROM kept`); got != "42" {
		t.Fatalf("after restart: %q, want the row written before", got)
	}
	if err := srv.Crash(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, connect(t, dsn), `SELECT v::text FROM kept`); got != "42" {
		t.Fatalf("after crash recovery: %q, want the row written before", got)
	}
}

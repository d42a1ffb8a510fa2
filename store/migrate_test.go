package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadMigrations(t *testing.T) {
	migrations, err := loadMigrations(sqliteDialect.name)
	if err != nil {
		t.Fatal(err)
	}
	if len(migrations) == 0 {
		t.Fatal("no migrations")
	}
	for i, m := range migrations {
		if m.version != i+1 {
			t.Errorf("migration %s has version %d, want %d: versions must run 1, 2, 3...", m.name, m.version, i+1)
		}
	}
}

func appliedVersions(t *testing.T, s *SQLStore) []int {
	t.Helper()
	rows, err := s.reads().query(context.Background(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return versions
}

func assertFullyMigrated(t *testing.T, s *SQLStore) {
	t.Helper()
	migrations, err := loadMigrations(sqliteDialect.name)
	if err != nil {
		t.Fatal(err)
	}
	got := appliedVersions(t, s)
	if len(got) != len(migrations) {
		t.Fatalf("schema_migrations holds versions %v, want each of %d migrations once", got, len(migrations))
	}
}

func TestReopenKeepsDataAndSkipsMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cacgate.db")

	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	want := mustCreate(t, s, newAccount("jdoe", "1111111111", "card"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		s = openStoreAt(t, path)
		assertFullyMigrated(t, s)
		got, err := s.AccountByUsername(ctx, "jdoe")
		if err != nil {
			t.Fatal(err)
		}
		assertAccount(t, got, want)
	}
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	const nodes = 4
	path := filepath.Join(t.TempDir(), "cacgate.db")

	var (
		start  = make(chan struct{})
		wg     sync.WaitGroup
		stores = make([]*SQLStore, nodes)
		errs   = make([]error, nodes)
	)
	for i := range nodes {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = OpenSQLite(context.Background(), path)
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	assertFullyMigrated(t, stores[0])
	mustCreate(t, stores[1], newAccount("jdoe", "1111111111"))
	if _, err := stores[2].AccountByUsername(context.Background(), "jdoe"); err != nil {
		t.Errorf("a write through one node is not visible to another: %v", err)
	}
}

func TestDatabaseFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "state")
	path := filepath.Join(dir, "cacgate.db")
	s := openStoreAt(t, path)
	// A write makes sure the WAL exists.
	mustCreate(t, s, newAccount("jdoe", "1111111111"))

	for name, want := range map[string]os.FileMode{
		dir:           0o700,
		path:          0o600,
		path + "-wal": 0o600,
		path + "-shm": 0o600,
	} {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", name, got, want)
		}
	}
}

// The driver takes what follows the first '?' of a plain file name as its
// parameters, which would put the database somewhere else.
func TestOpenPathWithURISpecialCharacters(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "odd ?name=#1 %20 & co")
	s := openStoreAt(t, filepath.Join(dir, "cacgate.db"))
	mustCreate(t, s, newAccount("jdoe", "1111111111"))

	for _, d := range []string{root, dir} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if name := filepath.Join(d, e.Name()); name != dir && !strings.HasPrefix(name, filepath.Join(dir, "cacgate.db")) {
				t.Errorf("stray file %q: the database was opened at the wrong path", name)
			}
		}
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if s, err := OpenSQLite(context.Background(), ""); err == nil {
		s.Close()
		t.Fatal("OpenSQLite(\"\") succeeded")
	}
}

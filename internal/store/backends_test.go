package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cacgate/cacgate/internal/pgtest"
)

// TestMain stops the PostgreSQL server the tests started, if any, however
// they end.
func TestMain(m *testing.M) { pgtest.Main(m) }

// backend is one kind of database the store runs on. The behavioural tests
// run on each (forEachBackend), so that SQLite and PostgreSQL are held to
// the same contract.
type backend struct {
	name string
	// newDatabase makes an empty database that lives as long as the test.
	newDatabase func(t testing.TB) testDatabase
	// storesNUL: text columns can hold a NUL byte. PostgreSQL's cannot,
	// and refuses such text with an error.
	storesNUL bool
}

// testDatabase is one database. Each open gives a store of its own on it,
// as a separate gateway node would have: a separate process opening the
// same SQLite file, or a separate pool on the same PostgreSQL database.
type testDatabase struct {
	// connect opens a store; it may be called from any goroutine, and the
	// caller closes the store.
	connect func() (*SQLStore, error)
	// raw connects without the store and without migrating, as a
	// database left by an older cacgate would be found.
	raw func(t testing.TB) (*sql.DB, dialect)
}

var (
	sqliteBackend = backend{
		name:      "sqlite",
		storesNUL: true,
		newDatabase: func(t testing.TB) testDatabase {
			path := filepath.Join(t.TempDir(), "cacgate.db")
			return testDatabase{
				connect: func() (*SQLStore, error) { return OpenSQLite(context.Background(), path) },
				raw: func(t testing.TB) (*sql.DB, dialect) {
					t.Helper()
					if err := createPrivateFile(path); err != nil {
						t.Fatal(err)
					}
					db, err := openSQLitePool(context.Background(), sqliteDSN(path, sqliteConnPragmas), 1)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { db.Close() })
					return db, sqliteDialect
				},
			}
		},
	}

	postgresBackend = backend{
		name: "postgres",
		newDatabase: func(t testing.TB) testDatabase {
			dsn := pgtest.NewDatabase(t)
			return testDatabase{
				connect: func() (*SQLStore, error) {
					return OpenPostgres(context.Background(), dsn, PostgresOptions{})
				},
				raw: func(t testing.TB) (*sql.DB, dialect) {
					t.Helper()
					config, err := ParsePostgresDSN(dsn)
					if err != nil {
						t.Fatal(err)
					}
					db := stdlib.OpenDB(*config)
					t.Cleanup(func() { db.Close() })
					return db, postgresMigrationDialect
				},
			}
		},
	}

	backends = []backend{sqliteBackend, postgresBackend}
)

// forEachBackend runs test as a subtest for each backend, named after it
// ("TestX/postgres"), so that -run can pick one.
func forEachBackend(t *testing.T, test func(t *testing.T, be backend)) {
	t.Helper()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) { test(t, be) })
	}
}

// openStore opens a store on a fresh, empty database.
func (be backend) openStore(t testing.TB) *SQLStore {
	t.Helper()
	return be.newDatabase(t).open(t)
}

// open opens a store that is closed when the test ends.
func (db testDatabase) open(t testing.TB) *SQLStore {
	t.Helper()
	s, err := db.connect()
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migrations are SQL files, one directory per dialect, named
// NNNN_description.sql and applied in version order. Files rather than Go
// strings because DDL reads best, and is reviewed best, as plain SQL, and
// because each dialect's DDL really does differ (column types, STRICT)
// while the queries the store runs do not.
//
//go:embed migrations
var migrationFiles embed.FS

// schemaMigrationsSQL is portable, so it lives here rather than in every
// dialect's first migration: the runner needs the table before any migration.
const schemaMigrationsSQL = `
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    applied_at BIGINT  NOT NULL
)`

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the dialect's migrations in version order.
func loadMigrations(dialectName string) ([]migration, error) {
	dir := path.Join("migrations", dialectName)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var migrations []migration
	// ReadDir sorts by name, which is version order while versions are
	// zero-padded to one width; the check below rejects anything else.
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s: name is not NNNN_description.sql", e.Name())
		}
		if n := len(migrations); n > 0 && migrations[n-1].version >= version {
			return nil, fmt.Errorf("migration %s: version %d is not greater than %s's", e.Name(), version, migrations[n-1].name)
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		migrations = append(migrations, migration{version: version, name: e.Name(), sql: string(body)})
	}
	return migrations, nil
}

// migrate brings the database's schema up to date. Each migration runs in
// its own transaction together with its schema_migrations row, so it is
// applied entirely or not at all. Whether a migration is due is decided
// inside that transaction, which excludes other writers; so when several
// processes open the same database at once each migration runs once and
// the others find it done.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	migrations, err := loadMigrations(d.name)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	err = inMigrationTx(ctx, db, d, func(ex executor) error {
		_, err := ex.exec(ctx, schemaMigrationsSQL)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	for _, m := range migrations {
		err := inMigrationTx(ctx, db, d, func(ex executor) error { return m.apply(ctx, ex) })
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
	}
	return nil
}

func inMigrationTx(ctx context.Context, db *sql.DB, d dialect, fn func(ex executor) error) error {
	return inTx(ctx, db, d, func(ex executor) error {
		if d.migrationLock != "" {
			if _, err := ex.exec(ctx, d.migrationLock); err != nil {
				return err
			}
		}
		return fn(ex)
	})
}

// apply runs the migration unless schema_migrations says it already ran.
func (m migration) apply(ctx context.Context, ex executor) error {
	var applied int
	err := ex.queryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&applied)
	if err != nil || applied > 0 {
		return err
	}
	if _, err := ex.exec(ctx, m.sql); err != nil {
		return err
	}
	_, err = ex.exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.version, now().Unix())
	return err
}

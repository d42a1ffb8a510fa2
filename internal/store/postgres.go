package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgresOptions size the connection pool of a PostgreSQL store. Zero
// fields take the defaults below.
type PostgresOptions struct {
	// MaxOpenConns caps the pool's connections, busy and idle together.
	// Every gateway node has its own pool, so the database must allow
	// nodes × MaxOpenConns connections, plus one per node for the change
	// listener. Default 10.
	MaxOpenConns int
	// MaxIdleConns is how many idle connections are kept open for the
	// next burst. Default: MaxOpenConns, so that a burst never pays for
	// connecting (TLS and SCRAM cost several round trips each).
	MaxIdleConns int
	// ConnMaxLifetime retires connections after this long, so that after
	// a failover or a DNS change the pool moves to the new server and load
	// spreads over replicas behind a proxy. Default 30 minutes.
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime closes connections idle this long. Default 5 minutes.
	ConnMaxIdleTime time.Duration
	// ConnectTimeout bounds opening one connection when the DSN sets no
	// connect_timeout, and the first contact with the server in
	// OpenPostgres. Default 10 seconds.
	ConnectTimeout time.Duration
}

// Defaults for PostgresOptions.
const (
	DefaultPostgresMaxOpenConns    = 10
	DefaultPostgresConnMaxLifetime = 30 * time.Minute
	DefaultPostgresConnMaxIdleTime = 5 * time.Minute
	DefaultPostgresConnectTimeout  = 10 * time.Second
)

// withDefaults checks o and fills in its zero fields.
func (o PostgresOptions) withDefaults() (PostgresOptions, error) {
	if o.MaxOpenConns < 0 || o.MaxIdleConns < 0 || o.ConnMaxLifetime < 0 || o.ConnMaxIdleTime < 0 || o.ConnectTimeout < 0 {
		return o, errors.New("pool options must not be negative")
	}
	if o.MaxOpenConns == 0 {
		o.MaxOpenConns = DefaultPostgresMaxOpenConns
	}
	if o.MaxIdleConns == 0 || o.MaxIdleConns > o.MaxOpenConns {
		o.MaxIdleConns = o.MaxOpenConns
	}
	if o.ConnMaxLifetime == 0 {
		o.ConnMaxLifetime = DefaultPostgresConnMaxLifetime
	}
	if o.ConnMaxIdleTime == 0 {
		o.ConnMaxIdleTime = DefaultPostgresConnMaxIdleTime
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultPostgresConnectTimeout
	}
	return o, nil
}

// defaultApplicationName labels the store's sessions in pg_stat_activity
// when the DSN does not name them.
const defaultApplicationName = "cacgate"

// ParsePostgresDSN parses a PostgreSQL connection string, a postgres:// URL
// or key=value pairs as libpq takes them. Its error never repeats the DSN,
// nor any part of it, since a DSN usually holds a password.
func ParsePostgresDSN(dsn string) (*pgx.ConnConfig, error) {
	if dsn == "" {
		return nil, errors.New("store: empty PostgreSQL DSN")
	}
	config, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx masks the password in its message only as far as it can
		// tell where the password is: in a URL whose password has an
		// unescaped '/' or '@' it cannot, and would quote part of it.
		return nil, errors.New("store: the PostgreSQL DSN cannot be parsed: it must be a postgres:// URL, " +
			"with special characters in the user name and password percent-encoded, or key=value pairs")
	}
	return config, nil
}

// OpenPostgres connects to the PostgreSQL database that dsn names and brings
// its schema up to date. Any number of gateway nodes may open the same
// database, at the same time too: migrations take turns under an advisory
// lock, uniqueness is decided by the database's constraints, and every
// write that caches depend on is announced to all of them (see
// [SQLStore.Watch]).
//
// The DSN must reach PostgreSQL itself or a pooler in session mode: the
// store prepares statements and LISTENs, which a transaction-mode pooler
// (PgBouncer's default) breaks.
func OpenPostgres(ctx context.Context, dsn string, opts PostgresOptions) (*SQLStore, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	config, err := ParsePostgresDSN(dsn)
	if err != nil {
		return nil, err
	}
	if _, ok := config.RuntimeParams["application_name"]; !ok {
		config.RuntimeParams["application_name"] = defaultApplicationName
	}
	if config.ConnectTimeout == 0 {
		// pgx applies connect_timeout by the dialer it builds for it.
		config.ConnectTimeout = opts.ConnectTimeout
		config.DialFunc = (&net.Dialer{Timeout: opts.ConnectTimeout}).DialContext
	}

	// One pool serves reads and writes: PostgreSQL runs writers
	// concurrently, so the single-writer pool SQLite needs would only
	// queue them, and MVCC lets reads proceed beside writes.
	db := stdlib.OpenDB(*config)
	db.SetMaxOpenConns(opts.MaxOpenConns)
	db.SetMaxIdleConns(opts.MaxIdleConns)
	db.SetConnMaxLifetime(opts.ConnMaxLifetime)
	db.SetConnMaxIdleTime(opts.ConnMaxIdleTime)

	pingCtx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	err = db.PingContext(pingCtx)
	cancel()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL: %w", err)
	}
	if err := checkPostgresVersion(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	if err := migrate(ctx, db, postgresMigrationDialect); err != nil {
		db.Close()
		return nil, err
	}
	d, err := postgresDialect(ctx, db, config, opts.ConnectTimeout)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &SQLStore{
		writer:    db,
		reader:    db,
		readStmts: newStmtCache(db),
		dialect:   d,
	}, nil
}

// minPostgresVersion is the oldest server the schema and the catalog query
// run on (PostgreSQL 11: pg_index.indnkeyatts), as server_version_num.
const minPostgresVersion = 110000

func checkPostgresVersion(ctx context.Context, db *sql.DB) error {
	var (
		version int
		name    string
	)
	err := db.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_version')`).
		Scan(&version, &name)
	if err != nil {
		return fmt.Errorf("store: PostgreSQL server version: %w", err)
	}
	if version < minPostgresVersion {
		return fmt.Errorf("store: PostgreSQL %s is too old: version %d or later is required", name, minPostgresVersion/10000)
	}
	return nil
}

// postgresMigrationLock serialises migrations of one database across all
// the processes opening it: the first to take the lock migrates, and the
// others, once they have it, find each migration done. The key is
// "cacgate!" in ASCII, a constant every version must keep; it only has to
// differ from the advisory locks other applications sharing the database
// take. Transaction-level, so it cannot outlive the migration however the
// process fails.
//
// lock_timeout then bounds each DDL statement's wait for its table locks:
// ALTER TABLE waits for every running query on the table, and all queries
// arriving after it wait behind it, so a migration stuck behind a
// forgotten open transaction would stall every node. It fails instead,
// and the node's start with it, saying why.
const postgresMigrationLock = `SELECT pg_advisory_xact_lock(x'6361636761746521'::bigint); SET LOCAL lock_timeout = '1min'`

// postgresMigrationDialect runs migrations, before the catalog that
// postgresDialect reads exists: it names no constraints.
var postgresMigrationDialect = dialect{
	name:                "postgres",
	rebind:              rebindDollar,
	uniqueViolation:     func(err error) (string, bool) { return "", isPgError(err, pgUniqueViolation) },
	foreignKeyViolation: postgresForeignKeyViolation,
	migrationLock:       postgresMigrationLock,
}

// postgresDialect is the dialect of an open, migrated database: it maps the
// unique indexes of the schema to the columns they cover, and announces and
// follows changes by NOTIFY.
func postgresDialect(ctx context.Context, db *sql.DB, config *pgx.ConnConfig, connectTimeout time.Duration) (dialect, error) {
	columns, err := uniqueIndexColumns(ctx, db)
	if err != nil {
		return dialect{}, fmt.Errorf("store: read the schema's unique constraints: %w", err)
	}
	d := postgresMigrationDialect
	d.uniqueViolation = func(err error) (string, bool) {
		var e *pgconn.PgError
		if !errors.As(err, &e) || e.Code != pgUniqueViolation {
			return "", false
		}
		return columns[indexKey{e.TableName, e.ConstraintName}], true
	}
	d.notifySQL = `SELECT pg_notify('` + ChangeChannel + `', ?)`
	d.origin = newOrigin()
	d.changes = newPgChangeFeed(config, connectTimeout, d.origin)
	return d, nil
}

// SQLSTATE codes the store acts on.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

func isPgError(err error, code string) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == code
}

func postgresForeignKeyViolation(err error) bool {
	return isPgError(err, pgForeignKeyViolation)
}

// indexKey names a unique index as a unique violation reports it: the
// table and the constraint (which is the index's name).
type indexKey struct{ table, index string }

// uniqueIndexSQL lists the unique indexes of the tables on the search path
// with their key columns in index order, "table.a, table.b", the form that
// dialect.uniqueViolation reports and errorForUnique is keyed by: the same
// form SQLite's messages have. Reading it from the catalog, rather than
// listing constraint names in Go, keeps every migration's constraints
// mapped, those of later migrations included. Expression indexes have no
// column to report and are left out.
const uniqueIndexSQL = `
SELECT t.relname, i.relname,
       string_agg(t.relname || '.' || a.attname, ', ' ORDER BY k.n)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace ns ON ns.oid = t.relnamespace
CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum AND k.attnum > 0
WHERE x.indisunique
  AND ns.nspname = ANY (current_schemas(false))
  AND k.n <= x.indnkeyatts
GROUP BY t.relname, i.relname
HAVING count(a.attname) = count(*)`

func uniqueIndexColumns(ctx context.Context, db *sql.DB) (map[indexKey]string, error) {
	rows, err := db.QueryContext(ctx, uniqueIndexSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	columns := make(map[indexKey]string)
	for rows.Next() {
		var k indexKey
		var cols string
		if err := rows.Scan(&k.table, &k.index, &cols); err != nil {
			return nil, err
		}
		columns[k] = cols
	}
	return columns, rows.Err()
}

package caddymodule

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/store"
)

func init() {
	caddy.RegisterModule(PostgresStore{})
}

// PostgresStore is the account database on a PostgreSQL server, for a
// cluster of gateway nodes sharing one database. Every node runs the
// migrations it needs at start, taking turns; uniqueness, enrollment and
// lockouts are decided by the database for all nodes at once; and each
// node's card cache learns of other nodes' changes at once, by LISTEN/NOTIFY.
//
//	store postgres <dsn>
//
//	store postgres [<dsn>] {
//		dsn                <dsn>
//		max_conns          <n>
//		max_idle_conns     <n>
//		conn_max_lifetime  <duration>
//		conn_max_idle_time <duration>
//		connect_timeout    <duration>
//	}
//
// The DSN is a postgres:// URL or libpq key=value pairs. Keep the password
// out of the Caddyfile with a placeholder: {env.CACGATE_PG_DSN}, or
// {file./run/secrets/cacgate-pg-dsn} for a file holding the DSN.
type PostgresStore struct {
	// DSN names the database and how to reach it. Placeholders are
	// expanded when the store is opened. Required.
	DSN string `json:"dsn,omitempty"`
	// MaxConns caps each node's connections to the database; the server
	// must allow nodes × (max_conns + 1), the one being the change
	// listener. Default 10.
	MaxConns int `json:"max_conns,omitempty"`
	// MaxIdleConns is how many connections a node keeps open while idle.
	// Default: max_conns.
	MaxIdleConns int `json:"max_idle_conns,omitempty"`
	// ConnMaxLifetime retires connections after this long, so that after
	// a failover the nodes move to the new server. Default 30m.
	ConnMaxLifetime caddy.Duration `json:"conn_max_lifetime,omitempty"`
	// ConnMaxIdleTime closes connections idle this long. Default 5m.
	ConnMaxIdleTime caddy.Duration `json:"conn_max_idle_time,omitempty"`
	// ConnectTimeout bounds connecting when the DSN sets no
	// connect_timeout. Default 10s.
	ConnectTimeout caddy.Duration `json:"connect_timeout,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (PostgresStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "cacgate.stores.postgres",
		New: func() caddy.Module { return new(PostgresStore) },
	}
}

// Validate checks the options that need no placeholder expanded.
func (s *PostgresStore) Validate() error {
	if s.DSN == "" {
		return errors.New("store postgres: dsn is required")
	}
	_, err := s.options()
	return err
}

func (s PostgresStore) options() (store.PostgresOptions, error) {
	o := store.PostgresOptions{
		MaxOpenConns:    s.MaxConns,
		MaxIdleConns:    s.MaxIdleConns,
		ConnMaxLifetime: time.Duration(s.ConnMaxLifetime),
		ConnMaxIdleTime: time.Duration(s.ConnMaxIdleTime),
		ConnectTimeout:  time.Duration(s.ConnectTimeout),
	}
	if o.MaxOpenConns < 0 || o.MaxIdleConns < 0 || o.ConnMaxLifetime < 0 || o.ConnMaxIdleTime < 0 || o.ConnectTimeout < 0 {
		return o, errors.New("store postgres: max_conns, max_idle_conns, conn_max_lifetime, conn_max_idle_time and connect_timeout must not be negative")
	}
	return o, nil
}

// OpenStore expands the DSN's placeholders, connects, and runs the
// migrations this node needs. It logs where it connects, never the
// password.
func (s PostgresStore) OpenStore(ctx caddy.Context) (*store.SQLStore, func() error, error) {
	opts, err := s.options()
	if err != nil {
		return nil, nil, err
	}
	dsn := caddy.NewReplacer().ReplaceKnown(s.DSN, "")
	if dsn == "" {
		return nil, nil, fmt.Errorf("store postgres: the dsn %q is empty once its placeholders are expanded: is the environment variable set, or the file readable?", s.DSN)
	}
	config, err := store.ParsePostgresDSN(dsn)
	if err != nil {
		// Neither the DSN nor its configured form is quoted: either may
		// hold the password.
		return nil, nil, fmt.Errorf("store postgres: dsn, after expanding placeholders: %w", err)
	}
	// One pool per database and pool settings, shared by the configs
	// that use it: a reload reuses the running config's pool (and its
	// migrations are not run again) instead of opening a second one
	// beside it, which a server sized for nodes × (max_conns + 1)
	// connections could refuse.
	key := fmt.Sprintf("postgres\x00%s\x00%+v", dsn, opts)
	st, release, loaded, err := openShared(key, func() (*store.SQLStore, error) {
		ctx.Logger().Info("opening account database", postgresLogFields(config, opts)...)
		st, err := store.OpenPostgres(ctx, dsn, opts)
		if err != nil {
			return nil, fmt.Errorf("store postgres: database %s on %s: %w", config.Database, config.Host, err)
		}
		return st, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if loaded {
		ctx.Logger().Info("reusing account database connections", postgresLogFields(config, opts)...)
	}
	return st, release, nil
}

// postgresLogFields say where the store connects: server, database and
// user, never the password.
func postgresLogFields(config *pgx.ConnConfig, opts store.PostgresOptions) []zap.Field {
	return []zap.Field{
		zap.String("backend", "postgres"),
		zap.String("host", config.Host),
		zap.Uint16("port", config.Port),
		zap.String("database", config.Database),
		zap.String("user", config.User),
		zap.Int("max_conns", opts.MaxOpenConns),
	}
}

// UnmarshalCaddyfile parses "postgres <dsn>" or "postgres [<dsn>] { ... }"
// (after "store").
func (s *PostgresStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		s.DSN = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] || (sub == "dsn" && s.DSN != "") {
			return d.Errf("%s specified more than once", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "dsn":
			err = stringArg(d, &s.DSN)
		case "max_conns":
			s.MaxConns, err = countArg(d)
		case "max_idle_conns":
			s.MaxIdleConns, err = countArg(d)
		case "conn_max_lifetime":
			err = positiveDurationArg(d, &s.ConnMaxLifetime)
		case "conn_max_idle_time":
			err = positiveDurationArg(d, &s.ConnMaxIdleTime)
		case "connect_timeout":
			err = positiveDurationArg(d, &s.ConnectTimeout)
		default:
			return d.Errf("unrecognized store postgres subdirective %q", sub)
		}
		if err != nil {
			return err
		}
	}
	if s.DSN == "" {
		return d.Err("store postgres: a dsn is required")
	}
	return nil
}

// countArg reads a subdirective's one argument, a whole number of at least 1.
func countArg(d *caddyfile.Dispenser) (int, error) {
	sub := d.Val()
	var s string
	if err := stringArg(d, &s); err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, d.Errf("%s: %q is not a whole number of at least 1", sub, s)
	}
	return n, nil
}

// positiveDurationArg reads a subdirective's one argument, a duration
// greater than zero.
func positiveDurationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	sub := d.Val()
	var s string
	if err := stringArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur <= 0 {
		return d.Errf("%s: %q is not a positive duration", sub, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guards
var (
	_ StoreOpener           = PostgresStore{}
	_ caddy.Validator       = (*PostgresStore)(nil)
	_ caddyfile.Unmarshaler = (*PostgresStore)(nil)
)

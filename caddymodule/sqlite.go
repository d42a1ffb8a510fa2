package caddymodule

import (
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/store"
)

func init() {
	caddy.RegisterModule(SQLiteStore{})
}

// SQLiteStore is the embedded account database (the default): SQLite
// through a pure-Go driver, so custom Caddy builds stay static.
//
//	store sqlite [<path>]
type SQLiteStore struct {
	// Path of the database file. Placeholders such as {env.X} are
	// expanded. Default: cacgate/cacgate.db in Caddy's data directory.
	Path string `json:"path,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (SQLiteStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "cacgate.stores.sqlite",
		New: func() caddy.Module { return new(SQLiteStore) },
	}
}

// OpenStore opens the database file and runs its migrations, or reuses
// the store a running config has open on the same file (see openStores).
func (s SQLiteStore) OpenStore(ctx caddy.Context) (*store.SQLStore, func() error, error) {
	path := s.path()
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	st, release, loaded, err := openShared("sqlite\x00"+path, func() (*store.SQLStore, error) {
		ctx.Logger().Info("opening account database", zap.String("path", path))
		return store.OpenSQLite(ctx, path)
	})
	if err != nil {
		return nil, nil, err
	}
	if loaded {
		ctx.Logger().Info("reusing the open account database", zap.String("path", path))
	}
	return st, release, nil
}

// path is the database file: Path with placeholders expanded, or the
// default in Caddy's data directory.
func (s SQLiteStore) path() string {
	if path := caddy.NewReplacer().ReplaceKnown(s.Path, ""); path != "" {
		return path
	}
	return filepath.Join(caddy.AppDataDir(), "cacgate", "cacgate.db")
}

// UnmarshalCaddyfile parses "sqlite [<path>]" (after "store").
func (s *SQLiteStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		s.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("store sqlite takes no block")
	}
	return nil
}

// Interface guards
var (
	_ StoreOpener           = SQLiteStore{}
	_ caddyfile.Unmarshaler = (*SQLiteStore)(nil)
)

package caddymodule

import (
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/cacgate/cacgate/internal/store"
)

// openStores holds the open account databases, shared by the configs that
// use the same one: a reload reuses the running config's store instead of
// opening a second one beside it and closing the first when the old config
// is cleaned up, which would fail the old config's requests still in
// flight (an enrollment's last step, a sign-in waiting for the hasher)
// with "database is closed". Keys are per backend (for PostgreSQL the
// expanded DSN and pool settings, which hold the password: in memory only).
var openStores = caddy.NewUsagePool()

// sharedStore is a pooled store; the last config to let go closes it.
type sharedStore struct{ *store.SQLStore }

func (s sharedStore) Destruct() error { return s.SQLStore.Close() }

// openShared returns the store under key, opening it with open if no
// config holds it yet; loaded reports that it was already open. The
// returned release lets go of this config's use, once.
func openShared(key string, open func() (*store.SQLStore, error)) (st *store.SQLStore, release func() error, loaded bool, err error) {
	v, loaded, err := openStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		st, err := open()
		if err != nil {
			return nil, err
		}
		return sharedStore{st}, nil
	})
	if err != nil {
		return nil, nil, false, err
	}
	var once sync.Once
	release = func() error {
		var err error
		once.Do(func() { _, err = openStores.Delete(key) })
		return err
	}
	return v.(sharedStore).SQLStore, release, loaded, nil
}

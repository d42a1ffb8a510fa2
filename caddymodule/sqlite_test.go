package caddymodule

import (
	"context"
	"path/filepath"
	"testing"
)

// TestSQLiteStoreSharedAcrossReloads: a reload opens the same database
// file through the running config's store, so that config's requests still
// in flight when it is cleaned up keep a working store; the file closes
// with its last user. (With a store per config, an enrollment's last step
// sent during a reload failed with "database is closed".)
func TestSQLiteStoreSharedAcrossReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cacgate.db")
	old, releaseOld, err := SQLiteStore{Path: path}.OpenStore(newStoreContext(t))
	if err != nil {
		t.Fatal(err)
	}
	// The same file, named another way, is the same database.
	reloaded, releaseReloaded, err := SQLiteStore{Path: filepath.Join(dir, ".", "cacgate.db")}.OpenStore(newStoreContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if old != reloaded {
		t.Fatal("the reload opened the file a second time")
	}
	other, releaseOther, err := SQLiteStore{Path: filepath.Join(dir, "other.db")}.OpenStore(newStoreContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer releaseOther()
	if other == old {
		t.Fatal("two files share one store")
	}
	ctx := context.Background()
	ensure := func() error {
		_, err := old.EnsureSecret(ctx, "k", func() ([]byte, error) { return []byte("v"), nil })
		return err
	}
	// The old config is cleaned up, twice: a request it was serving still
	// reads and writes.
	if err := releaseOld(); err != nil {
		t.Fatal(err)
	}
	releaseOld()
	if err := ensure(); err != nil {
		t.Fatalf("the old config's store once the reload replaced it: %v", err)
	}
	if err := releaseReloaded(); err != nil {
		t.Fatal(err)
	}
	if ensure() == nil {
		t.Fatal("the store stayed open after its last user let go")
	}
}

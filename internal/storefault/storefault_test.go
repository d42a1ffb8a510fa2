package storefault

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cacgate/cacgate/internal/store"
)

func TestRealErrors(t *testing.T) {
	for name, err := range map[string]error{"disk full": DiskFull(t), "read-only": ReadOnly(t), "closed": Closed(t)} {
		if !store.Unavailable(err) {
			t.Errorf("%s: %v is not unavailable", name, err)
		}
	}
}

func TestStoreFailsOnDemand(t *testing.T) {
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := New(db)
	full := DiskFull(t)
	s.Fail(full, "CreateAccount")
	ctx := context.Background()
	a := &store.Account{Username: "john.q.doe", EDIPI: "1234567890", Status: store.StatusActive}
	if err := s.CreateAccount(ctx, a); !errors.Is(err, full) || store.Cause(err) != store.CauseDiskFull {
		t.Fatalf("CreateAccount: %v", err)
	}
	if _, err := s.AccountByUsername(ctx, "john.q.doe"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AccountByUsername: %v", err)
	}
	s.Heal()
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	s.Fail(full)
	if _, err := s.AccountByUsername(ctx, "john.q.doe"); !errors.Is(err, full) {
		t.Fatalf("every operation: %v", err)
	}
	if s.Refused("CreateAccount") != 1 || s.Refused("AccountByUsername") != 1 {
		t.Errorf("refused %d, %d", s.Refused("CreateAccount"), s.Refused("AccountByUsername"))
	}
}

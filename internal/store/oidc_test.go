package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func oidcHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestOIDCCodeSingleUse(t *testing.T) { forEachBackend(t, testOIDCCodeSingleUse) }

// A code is exchanged once however many nodes race for it; a replay is
// told apart from an unknown code; an expired code is unknown.
func testOIDCCodeSingleUse(t *testing.T, be backend) {
	ctx := context.Background()
	db := be.newDatabase(t)
	var nodes []*SQLStore
	for range 2 {
		s, err := db.connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		nodes = append(nodes, s)
	}
	now := time.Now()
	req := OIDCRequest{ID: "req-1", ClientID: "grafana", AccountID: 7, Request: []byte(`{"x":1}`), Expires: now.Add(time.Minute)}
	if err := nodes[0].SaveOIDCRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].SetOIDCCode(ctx, "req-1", oidcHash("code-1")); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].SetOIDCCode(ctx, "req-1", oidcHash("code-2")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second code for one request: %v, want ErrNotFound", err)
	}
	var wins, replays atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := nodes[i%2].UseOIDCCode(ctx, oidcHash("code-1"), now)
			switch {
			case err == nil && r.ID == "req-1" && string(r.Request) == `{"x":1}`:
				wins.Add(1)
			case errors.Is(err, ErrOIDCReplayed) && r != nil && r.ID == "req-1":
				replays.Add(1)
			default:
				t.Errorf("use: %+v %v", r, err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || replays.Load() != 7 {
		t.Fatalf("wins %d replays %d, want 1 and 7", wins.Load(), replays.Load())
	}
	if _, err := nodes[0].UseOIDCCode(ctx, oidcHash("unknown"), now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	// Expired before use.
	if err := nodes[0].SaveOIDCRequest(ctx, OIDCRequest{ID: "req-2", ClientID: "grafana", AccountID: 7, Request: []byte(`{}`), Expires: now.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].SetOIDCCode(ctx, "req-2", oidcHash("code-3")); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[1].UseOIDCCode(ctx, oidcHash("code-3"), now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired code: %v, want ErrNotFound", err)
	}
	if n, err := nodes[0].PruneOIDC(ctx, now); err != nil || n != 1 {
		t.Fatalf("prune: %d %v, want 1", n, err)
	}
}

func TestOIDCRefreshRotation(t *testing.T) { forEachBackend(t, testOIDCRefreshRotation) }

// A refresh token is replaced once; the grant and the account's tokens for
// a client can be revoked.
func testOIDCRefreshRotation(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	now := time.Now()
	tok := func(id, grant, client string) OIDCRefresh {
		return OIDCRefresh{ID: oidcHash(id), GrantID: grant, ClientID: client, AccountID: 3, Username: "jane.doe",
			SessionID: "sess", Request: []byte(`{}`), Created: now, Expires: now.Add(time.Hour)}
	}
	if err := s.InsertOIDCRefresh(ctx, tok("r1", "g1", "app")); err != nil {
		t.Fatal(err)
	}
	got, err := s.OIDCRefreshToken(ctx, oidcHash("r1"))
	if err != nil || got.Username != "jane.doe" || got.SessionID != "sess" || got.Fingerprint != "" || got.Used {
		t.Fatalf("read: %+v %v", got, err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.RotateOIDCRefresh(ctx, oidcHash("r1"), tok("r2-"+string(rune('a'+i)), "g1", "app"), now)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, ErrOIDCReplayed):
				t.Errorf("rotate: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d rotations won, want 1", wins.Load())
	}
	if got, err := s.OIDCRefreshToken(ctx, oidcHash("r1")); err != nil || !got.Used {
		t.Fatalf("old token after rotation: %+v %v", got, err)
	}
	if n, err := s.CountOIDCRefresh(ctx, 3); err != nil || n != 1 {
		t.Fatalf("live tokens: %d %v, want 1", n, err)
	}
	if err := s.InsertOIDCRefresh(ctx, tok("o1", "g2", "other")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RevokeOIDCGrant(ctx, "g1"); err != nil || n != 2 {
		t.Fatalf("revoke grant: %d %v, want 2", n, err)
	}
	if n, err := s.RevokeOIDCAccountClient(ctx, 3, "other"); err != nil || n != 1 {
		t.Fatalf("revoke account/client: %d %v, want 1", n, err)
	}
}

func TestOIDCClients(t *testing.T) { forEachBackend(t, testOIDCClients) }

func testOIDCClients(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	if err := s.PutOIDCClient(ctx, "b", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOIDCClient(ctx, "a", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOIDCClient(ctx, "b", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListOIDCClients(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "a" || string(list[1].Config) != `{"v":2}` {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := s.DeleteOIDCClient(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOIDCClient(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := s.OIDCClient(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted client: %v", err)
	}
	if err := s.PutOIDCClient(ctx, "", []byte(`{}`)); err == nil {
		t.Fatal("empty client ID accepted")
	}
}

package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUseState(t *testing.T) { forEachBackend(t, testUseState) }

// A state is used once; taking a use back makes it usable again; expired
// records are pruned.
func testUseState(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	expires := testT0.Add(30 * time.Minute)
	if ok, err := s.UseState(ctx, "state-1", expires); err != nil || !ok {
		t.Fatalf("first use: %v %v", ok, err)
	}
	if ok, err := s.UseState(ctx, "state-1", expires); err != nil || ok {
		t.Fatalf("second use: %v %v, want refused", ok, err)
	}
	if ok, err := s.UseState(ctx, "state-2", expires); err != nil || !ok {
		t.Fatalf("another state: %v %v", ok, err)
	}
	if err := s.UnuseState(ctx, "state-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.UnuseState(ctx, "never-used"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.UseState(ctx, "state-1", testT0.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("use after taking back: %v %v", ok, err)
	}
	n, err := s.PruneUsedStates(ctx, testT0.Add(10*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d %v, want 1 (state-1, expiring first)", n, err)
	}
	if ok, err := s.UseState(ctx, "state-2", expires); err != nil || ok {
		t.Fatalf("state-2 after pruning an earlier one: %v %v, want still used", ok, err)
	}
	for _, bad := range []string{"", string(make([]byte, MaxStateIDLen+1)), "a\x00b"} {
		if _, err := s.UseState(ctx, bad, expires); err == nil {
			t.Errorf("UseState(%q) succeeded", bad)
		}
	}
}

func TestUseStateConcurrently(t *testing.T) { forEachBackend(t, testUseStateConcurrently) }

// Uses of one state racing on two nodes: exactly one wins.
func testUseStateConcurrently(t *testing.T, be backend) {
	ctx := context.Background()
	db := be.newDatabase(t)
	nodes := []*SQLStore{db.open(t), db.open(t)}
	var wg sync.WaitGroup
	var won, failed atomic.Int32
	for i := range 16 {
		wg.Go(func() {
			ok, err := nodes[i%2].UseState(ctx, "state-race", testT0.Add(time.Hour))
			switch {
			case err != nil:
				t.Error(err)
				failed.Add(1)
			case ok:
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if got := won.Load(); got != 1 || failed.Load() != 0 {
		t.Errorf("%d of 16 concurrent uses of one state won, want exactly 1", got)
	}
}

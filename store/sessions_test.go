package store

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEndSession(t *testing.T) { forEachBackend(t, testEndSession) }

func testEndSession(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	changes := recordChanges(t, s)
	expires := testT0.Add(8 * time.Hour)

	if ended, err := s.SessionEnded(ctx, "sess-1"); err != nil || ended {
		t.Fatalf("before: %v %v", ended, err)
	}
	for range 2 { // ending twice is harmless
		if err := s.EndSession(ctx, "sess-1", expires); err != nil {
			t.Fatal(err)
		}
	}
	if ended, err := s.SessionEnded(ctx, "sess-1"); err != nil || !ended {
		t.Fatalf("after: %v %v", ended, err)
	}
	if ended, err := s.SessionEnded(ctx, "sess-2"); err != nil || ended {
		t.Fatalf("another session: %v %v", ended, err)
	}
	want := Change{EndedSession: "sess-1", EndedSessionExpires: expires.Unix()}
	if got := changes(); !reflect.DeepEqual(got, []Change{want, want}) {
		t.Errorf("changes announced = %+v, want two of %+v", got, want)
	}
}

func TestEndSessionConcurrently(t *testing.T) { forEachBackend(t, testEndSessionConcurrently) }

// Two nodes signing the same session out at once (two tabs) both succeed.
func testEndSessionConcurrently(t *testing.T, be backend) {
	ctx := context.Background()
	db := be.newDatabase(t)
	s, other := db.open(t), db.open(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		st := s
		if i%2 == 1 {
			st = other
		}
		wg.Go(func() { errs <- st.EndSession(ctx, "sess-race", testT0.Add(time.Hour)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if ended, err := other.SessionEnded(ctx, "sess-race"); err != nil || !ended {
		t.Fatalf("%v %v", ended, err)
	}
}

func TestPruneEndedSessions(t *testing.T) { forEachBackend(t, testPruneEndedSessions) }

func testPruneEndedSessions(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	for id, exp := range map[string]time.Time{"old": testT0, "edge": testT0.Add(time.Hour), "new": testT0.Add(2 * time.Hour)} {
		if err := s.EndSession(ctx, id, exp); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PruneEndedSessions(ctx, testT0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	for id, want := range map[string]bool{"old": false, "edge": true, "new": true} {
		if ended, err := s.SessionEnded(ctx, id); err != nil || ended != want {
			t.Errorf("%s: ended %v, %v; want %v", id, ended, err, want)
		}
	}
}

func TestSessionIDsChecked(t *testing.T) { forEachBackend(t, testSessionIDsChecked) }

func testSessionIDsChecked(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	for _, id := range []string{"", strings.Repeat("x", MaxSessionIDLen+1), "nul\x00", "\xff"} {
		if err := s.EndSession(ctx, id, testT0); err == nil {
			t.Errorf("EndSession(%q) accepted", id)
		}
		if _, err := s.SessionEnded(ctx, id); err == nil {
			t.Errorf("SessionEnded(%q) accepted", id)
		}
	}
}

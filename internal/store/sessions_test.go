package store

import (
	"context"
	"errors"
	"fmt"
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

func TestStartSessionLimit(t *testing.T) { forEachBackend(t, testStartSessionLimit) }

func testStartSessionLimit(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("jdoe", "1234567890", "card"))
	changes := recordChanges(t, s)
	start := func(id string, at time.Time, limit int) []LiveSession {
		t.Helper()
		ended, err := s.StartSession(ctx, LiveSession{ID: id, Username: "jdoe", Created: at, Expires: at.Add(8 * time.Hour)}, limit, at)
		if err != nil {
			t.Fatal(err)
		}
		return ended
	}
	if ended := start("s1", testT0, 2); len(ended) != 0 {
		t.Fatalf("first session ended %v", ended)
	}
	if ended := start("s2", testT0.Add(time.Minute), 2); len(ended) != 0 {
		t.Fatalf("second session ended %v", ended)
	}
	// The third ends the oldest.
	ended := start("s3", testT0.Add(2*time.Minute), 2)
	if len(ended) != 1 || ended[0].ID != "s1" || !ended[0].Expires.Equal(testT0.Add(8*time.Hour)) {
		t.Fatalf("third session ended %+v, want s1", ended)
	}
	for id, want := range map[string]bool{"s1": true, "s2": false, "s3": false} {
		if got, err := s.SessionEnded(ctx, id); err != nil || got != want {
			t.Errorf("%s ended = %v, %v; want %v", id, got, err, want)
		}
	}
	if got := changes(); len(got) != 1 || got[0].EndedSession != "s1" {
		t.Errorf("changes announced = %+v, want s1 ended", got)
	}
	// A session signed out no longer counts; expired ones neither.
	if err := s.EndSession(ctx, "s2", testT0.Add(8*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ended := start("s4", testT0.Add(3*time.Minute), 2); len(ended) != 0 {
		t.Fatalf("after a sign-out, ended %+v", ended)
	}
	if ended := start("s5", testT0.Add(9*time.Hour), 1); len(ended) != 0 {
		t.Fatalf("after the others expired, ended %+v", ended)
	}
	// A sign-in in the same second as the live one (times are whole
	// seconds) ends the earlier one, never itself, whichever way the IDs
	// sort.
	for _, ids := range [][2]string{{"t-a", "t-b"}, {"t-d", "t-c"}} {
		at := testT0.Add(10 * time.Hour)
		start(ids[0], at, 1)
		if ended := start(ids[1], at.Add(400*time.Millisecond), 1); len(ended) != 1 || ended[0].ID != ids[0] {
			t.Fatalf("second sign-in in one second ended %+v, want %s", ended, ids[0])
		}
		if got, err := s.SessionEnded(ctx, ids[1]); err != nil || got {
			t.Fatalf("the new session %s ended = %v, %v", ids[1], got, err)
		}
		if err := s.EndSession(ctx, ids[1], at.Add(8*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// No limit: nothing is ended.
	for i := range 5 {
		if ended := start(fmt.Sprintf("u%d", i), testT0.Add(9*time.Hour+time.Duration(i)*time.Minute), 0); len(ended) != 0 {
			t.Fatalf("unlimited: ended %+v", ended)
		}
	}
	if _, err := s.StartSession(ctx, LiveSession{ID: "x", Username: "nobody", Created: testT0, Expires: testT0.Add(time.Hour)}, 1, testT0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
	if _, err := s.StartSession(ctx, LiveSession{ID: "", Username: "jdoe"}, 1, testT0); err == nil {
		t.Error("empty session ID accepted")
	}
	// Pruning removes live records of expired sessions too.
	if n, err := s.PruneEndedSessions(ctx, testT0.Add(24*time.Hour)); err != nil || n == 0 {
		t.Errorf("pruned %d, %v", n, err)
	}
}

func TestStartSessionConcurrently(t *testing.T) { forEachBackend(t, testStartSessionConcurrently) }

// Sign-ins of one person racing on two nodes keep the limit: of 8 sessions
// started at once with a limit of 1, 7 are ended.
func testStartSessionConcurrently(t *testing.T, be backend) {
	ctx := context.Background()
	db := be.newDatabase(t)
	nodes := []*SQLStore{db.open(t), db.open(t)}
	mustCreate(t, nodes[0], newAccount("jdoe", "1234567890", "card"))
	const racers = 8
	var wg sync.WaitGroup
	endedCount := make([]int, racers)
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			at := testT0.Add(time.Duration(i) * time.Second)
			ended, err := nodes[i%2].StartSession(ctx, LiveSession{ID: fmt.Sprintf("r%d", i), Username: "jdoe", Created: at, Expires: at.Add(time.Hour)}, 1, testT0.Add(time.Minute))
			endedCount[i], errs[i] = len(ended), err
		})
	}
	wg.Wait()
	total := 0
	for i := range racers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		total += endedCount[i]
	}
	live := 0
	for i := range racers {
		ended, err := nodes[0].SessionEnded(ctx, fmt.Sprintf("r%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if !ended {
			live++
		}
	}
	if live != 1 || total != racers-1 {
		t.Fatalf("%d sessions live and %d ended, want 1 and %d", live, total, racers-1)
	}
}

package store

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	throttleWindow = 15 * time.Minute
	throttleMax    = 5
)

func takeAttempt(t *testing.T, s Throttler, name string, at time.Time) bool {
	t.Helper()
	ok, err := s.TakeAttempt(context.Background(), name, at, throttleWindow, throttleMax)
	if err != nil {
		t.Fatalf("TakeAttempt(%q): %v", name, err)
	}
	return ok
}

func assertAttempts(t *testing.T, s Throttler, name string, at time.Time, n int, since time.Time) {
	t.Helper()
	gotN, gotSince, err := s.Attempts(context.Background(), name, at, throttleWindow)
	if err != nil {
		t.Fatalf("Attempts(%q): %v", name, err)
	}
	if gotN != n || !gotSince.Equal(since) {
		t.Errorf("Attempts(%q) at %v = %d since %v, want %d since %v", name, at, gotN, gotSince, n, since)
	}
}

func TestTakeAttemptAllowsMaxPerWindow(t *testing.T) {
	forEachBackend(t, testTakeAttemptAllowsMaxPerWindow)
}

func testTakeAttemptAllowsMaxPerWindow(t *testing.T, be backend) {
	s := be.openStore(t)
	var never time.Time
	assertAttempts(t, s, "card:a", testT0, 0, never)
	for i := range throttleMax {
		if !takeAttempt(t, s, "card:a", testT0.Add(time.Duration(i)*time.Minute)) {
			t.Fatalf("attempt %d refused", i+1)
		}
		assertAttempts(t, s, "card:a", testT0.Add(time.Duration(i)*time.Minute), i+1, testT0)
	}
	if takeAttempt(t, s, "card:a", testT0.Add(10*time.Minute)) {
		t.Error("attempt past the maximum allowed")
	}
	// A refused attempt counts nothing.
	assertAttempts(t, s, "card:a", testT0.Add(10*time.Minute), throttleMax, testT0)
	// Other names have their own counters.
	if !takeAttempt(t, s, "card:b", testT0.Add(10*time.Minute)) {
		t.Error("another name refused")
	}
	assertAttempts(t, s, "card:b", testT0.Add(10*time.Minute), 1, testT0.Add(10*time.Minute))
}

func TestTakeAttemptWindowExpires(t *testing.T) { forEachBackend(t, testTakeAttemptWindowExpires) }

func testTakeAttemptWindowExpires(t *testing.T, be backend) {
	s := be.openStore(t)
	for range throttleMax {
		takeAttempt(t, s, "card:a", testT0)
	}
	justBefore := testT0.Add(throttleWindow - time.Second)
	if takeAttempt(t, s, "card:a", justBefore) {
		t.Error("allowed a second before the window ends")
	}
	assertAttempts(t, s, "card:a", justBefore, throttleMax, testT0)
	// From the window's end, the count is gone and the next attempt
	// starts a new window.
	end := testT0.Add(throttleWindow)
	assertAttempts(t, s, "card:a", end, 0, time.Time{})
	if !takeAttempt(t, s, "card:a", end) {
		t.Fatal("refused once the window ended")
	}
	assertAttempts(t, s, "card:a", end, 1, end)
	// A window that expired without reaching the maximum restarts too.
	takeAttempt(t, s, "card:a", end.Add(time.Minute))
	later := end.Add(throttleWindow + time.Minute)
	if !takeAttempt(t, s, "card:a", later) {
		t.Fatal("refused in a new window")
	}
	assertAttempts(t, s, "card:a", later, 1, later)
}

func TestRefundAttempt(t *testing.T) { forEachBackend(t, testRefundAttempt) }

func testRefundAttempt(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	// Refunding what was never taken changes nothing and is no error.
	if err := s.RefundAttempt(ctx, "card:a"); err != nil {
		t.Fatal(err)
	}
	assertAttempts(t, s, "card:a", testT0, 0, time.Time{})

	for range throttleMax {
		takeAttempt(t, s, "card:a", testT0)
	}
	if err := s.RefundAttempt(ctx, "card:a"); err != nil {
		t.Fatal(err)
	}
	assertAttempts(t, s, "card:a", testT0, throttleMax-1, testT0)
	if !takeAttempt(t, s, "card:a", testT0.Add(time.Minute)) {
		t.Error("refunded attempt not available again")
	}
	// The floor: more refunds than attempts leave zero, not a negative
	// count that would allow more than the maximum later.
	for range throttleMax + 3 {
		if err := s.RefundAttempt(ctx, "card:a"); err != nil {
			t.Fatal(err)
		}
	}
	assertAttempts(t, s, "card:a", testT0.Add(time.Minute), 0, time.Time{})
	allowed := 0
	for range throttleMax + 3 {
		if takeAttempt(t, s, "card:a", testT0.Add(2*time.Minute)) {
			allowed++
		}
	}
	if allowed != throttleMax {
		t.Errorf("after refunds below zero, %d attempts allowed, want %d", allowed, throttleMax)
	}
	// A counter refunded to zero restarts its window with the next
	// attempt, as an absent one would.
	assertAttempts(t, s, "card:a", testT0.Add(2*time.Minute), throttleMax, testT0.Add(2*time.Minute))
}

func TestPruneAttempts(t *testing.T) { forEachBackend(t, testPruneAttempts) }

func testPruneAttempts(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	takeAttempt(t, s, "old", testT0)
	takeAttempt(t, s, "edge", testT0.Add(time.Hour))
	takeAttempt(t, s, "new", testT0.Add(2*time.Hour))
	n, err := s.PruneAttempts(ctx, testT0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("pruned %d, want 1", n)
	}
	var names []string
	rows, err := s.reads().query(ctx, `SELECT name FROM attempts ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "edge,new" {
		t.Errorf("left %v, want [edge new]", names)
	}
}

func TestAttemptArgumentsChecked(t *testing.T) { forEachBackend(t, testAttemptArgumentsChecked) }

func testAttemptArgumentsChecked(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	for _, name := range []string{"", strings.Repeat("x", MaxAttemptNameLen+1), "a\x00b", "with space", "caf\u00e9"} {
		if _, err := s.TakeAttempt(ctx, name, testT0, throttleWindow, throttleMax); err == nil {
			t.Errorf("TakeAttempt accepted name %q", name)
		}
		if err := s.RefundAttempt(ctx, name); err == nil {
			t.Errorf("RefundAttempt accepted name %q", name)
		}
		if _, _, err := s.Attempts(ctx, name, testT0, throttleWindow); err == nil {
			t.Errorf("Attempts accepted name %q", name)
		}
	}
	if _, err := s.TakeAttempt(ctx, strings.Repeat("x", MaxAttemptNameLen), testT0, throttleWindow, throttleMax); err != nil {
		t.Errorf("longest name refused: %v", err)
	}
	for _, c := range []struct {
		window time.Duration
		max    int
	}{{0, 5}, {-time.Minute, 5}, {time.Millisecond, 5}, {time.Minute, 0}, {time.Minute, -1}} {
		if ok, err := s.TakeAttempt(ctx, "card:a", testT0, c.window, c.max); err == nil || ok {
			t.Errorf("TakeAttempt(window %v, max %d) = %v, %v; want an error", c.window, c.max, ok, err)
		}
	}
	assertAttempts(t, s, "card:a", testT0, 0, time.Time{})
}

// TestTakeAttemptAcrossNodes: takes racing on two stores on one database,
// as on two gateway nodes, never allow more than the maximum.
func TestTakeAttemptAcrossNodes(t *testing.T) { forEachBackend(t, testTakeAttemptAcrossNodes) }

func testTakeAttemptAcrossNodes(t *testing.T, be backend) {
	db := be.newDatabase(t)
	nodes := []*SQLStore{db.open(t), db.open(t)}
	const perNode = 12
	for round := range 3 {
		name := "card:" + string(rune('a'+round))
		var allowed atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, s := range nodes {
			for range perNode {
				wg.Go(func() {
					<-start
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					ok, err := s.TakeAttempt(ctx, name, testT0, throttleWindow, throttleMax)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						allowed.Add(1)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		if got := allowed.Load(); got != throttleMax {
			t.Errorf("round %d: %d of %d concurrent attempts allowed, want %d", round, got, 2*perNode, throttleMax)
		}
		for _, s := range nodes {
			assertAttempts(t, s, name, testT0, throttleMax, testT0)
		}
	}
}

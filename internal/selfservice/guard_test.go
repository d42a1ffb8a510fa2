package selfservice

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/store"
)

// newTestGuard returns a guard counting in a fresh SQLite database, at a
// clock the test moves.
func newTestGuard(t *testing.T, perAddress int) (*Guard, *store.SQLStore, *time.Time) {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	return NewGuard(db, db, perAddress, 0, func() time.Time { return now }), db, &now
}

// TestGuardTryCountsOnlyFailures: a failed check counts against the card,
// a right one is given back, a check that errs is given back; after Max
// failures the guard refuses without running the check.
func TestGuardTryCountsOnlyFailures(t *testing.T) {
	g, db, now := newTestGuard(t, 0)
	ctx := context.Background()
	l := Limit{Key: "link:" + fpTest, Window: FailureWindow, Max: 3}
	counted := func() int {
		t.Helper()
		n, _, err := db.Attempts(ctx, cardPrefix+l.Key, *now, l.Window)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if ok, err := g.Try(ctx, l, func(context.Context) (bool, error) { return true, nil }); !ok || err != nil || counted() != 0 {
		t.Fatalf("right: %v %v, %d counted", ok, err, counted())
	}
	boom := errors.New("roster down")
	if _, err := g.Try(ctx, l, func(context.Context) (bool, error) { return false, boom }); !errors.Is(err, boom) || counted() != 0 {
		t.Fatalf("erring check: %v, %d counted", err, counted())
	}
	for i := range 3 {
		if ok, err := g.Try(ctx, l, func(context.Context) (bool, error) { return false, nil }); ok || err != nil {
			t.Fatalf("wrong %d: %v %v", i+1, ok, err)
		}
	}
	if err := g.Check(ctx, l); !errors.Is(err, ErrLimited) {
		t.Fatalf("Check after the limit: %v", err)
	}
	ran := false
	if _, err := g.Try(ctx, l, func(context.Context) (bool, error) { ran = true; return true, nil }); !errors.Is(err, ErrLimited) || ran {
		t.Fatalf("Try after the limit: %v, ran %v", err, ran)
	}
	*now = now.Add(FailureWindow)
	if err := g.Check(ctx, l); err != nil {
		t.Fatalf("Check after the window: %v", err)
	}
}

const fpTest = "abababababababababababababababababababababababababababababababab"

// failingCounts is a database that cannot count.
type failingCounts struct {
	store.Throttler
	take, refund bool
}

func (f failingCounts) TakeAttempt(ctx context.Context, name string, now time.Time, window time.Duration, max int) (bool, error) {
	if f.take {
		return false, errDatabaseDown
	}
	return f.Throttler.TakeAttempt(ctx, name, now, window, max)
}

func (f failingCounts) RefundAttempt(ctx context.Context, name string) error {
	if f.refund {
		return errDatabaseDown
	}
	return f.Throttler.RefundAttempt(ctx, name)
}

// TestGuardFailsClosed: a count that cannot be taken refuses the attempt
// without running it; a right answer whose refund fails is not reported as
// right.
func TestGuardFailsClosed(t *testing.T) {
	_, db, now := newTestGuard(t, 0)
	ctx := context.Background()
	l := cardLimit("identity:" + fpTest)
	clock := func() time.Time { return *now }
	g := NewGuard(failingCounts{Throttler: db, take: true}, db, 0, 0, clock)
	ran := false
	if _, err := g.Try(ctx, l, func(context.Context) (bool, error) { ran = true; return true, nil }); !errors.Is(err, ErrUnavailable) || ran {
		t.Fatalf("take failing: %v, ran %v", err, ran)
	}
	if err := g.TakeAddress(ctx, "192.0.2.1"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrLimited) {
		t.Fatalf("TakeAddress failing: %v", err)
	}
	g = NewGuard(failingCounts{Throttler: db, refund: true}, db, 0, 0, clock)
	if ok, err := g.Try(ctx, l, func(context.Context) (bool, error) { return true, nil }); ok || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("refund failing: %v %v", ok, err)
	}
	// A key longer than promised is refused, not cut.
	long := Limit{Key: string(make([]byte, MaxThrottleKeyLen+1)), Window: FailureWindow, Max: 5}
	if err := NewGuard(db, db, 0, 0, clock).Check(ctx, long); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("long key: %v", err)
	}
}

// TestGuardAddress is attempts_per_ip: a limit per address (per IPv6 /64),
// refused attempts not counted, refunds making room, the window passing.
func TestGuardAddress(t *testing.T) {
	g, _, now := newTestGuard(t, 3)
	ctx := context.Background()
	take := func(ip string) bool {
		t.Helper()
		err := g.TakeAddress(ctx, ip)
		if err != nil && !errors.Is(err, ErrLimited) {
			t.Fatal(err)
		}
		return err == nil
	}
	for i := range 3 {
		if !take("192.0.2.1") {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if take("192.0.2.1") {
		t.Fatal("fourth attempt allowed")
	}
	if !take("192.0.2.2") {
		t.Fatal("another address shares the first one's count")
	}
	// Refused attempts are not counted: one refund makes room for one.
	if err := g.RefundAddress(ctx, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if !take("192.0.2.1") || take("192.0.2.1") {
		t.Fatal("a refund did not make room for exactly one attempt")
	}
	// Another address in the same IPv6 /64 is the same client.
	for range 3 {
		take("2001:db8::1")
	}
	if take("2001:db8::2") {
		t.Fatal("a second address in the /64 got a fresh allowance")
	}
	*now = now.Add(AddressWindow)
	if !take("192.0.2.1") {
		t.Fatal("still refused after the window")
	}
	// Refunding an address never seen changes nothing.
	if err := g.RefundAddress(ctx, "198.51.100.9"); err != nil {
		t.Fatal(err)
	}
}

// TestGuardAddressConcurrent: many first attempts from one address at once
// share one count, so exactly the limit get through.
func TestGuardAddressConcurrent(t *testing.T) {
	g, _, _ := newTestGuard(t, 10)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if g.TakeAddress(context.Background(), "203.0.113.5") == nil {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 10 {
		t.Fatalf("%d of 64 concurrent attempts allowed, want 10", n)
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                  "192.0.2.7",
		"192.0.2.7:54321":            "192.0.2.7",
		"::ffff:192.0.2.7":           "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":       "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":       "2001:db8:1:2::/64", // same /64: one client
		"[2001:db8:1:3::1]:443":      "2001:db8:1:3::/64",
		"fe80::1%eth0":               "fe80::/64",
		"not an address":             "invalid",
		"":                           "invalid",
		"999.1.1.1":                  "invalid",
		"192.0.2.7\r\nX-Injected: 1": "invalid",
	} {
		if got := AddressKey(in); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", in, got, want)
		}
	}
	if len(addressPrefix+"ffff:ffff:ffff:ffff::/64") > store.MaxAttemptNameLen || len(cardPrefix)+MaxThrottleKeyLen > store.MaxAttemptNameLen {
		t.Error("a key does not fit the attempts table")
	}
	// Counters are pruned Retention after their window began, which must
	// outlast every window.
	if AddressWindow > Retention/2 || ThrottleWindow > Retention/2 {
		t.Errorf("a window is over half of Retention %v", Retention)
	}
}

// pruneRecorder records PruneAttempts calls; the first fails.
type pruneRecorder struct {
	store.Throttler
	calls chan time.Time
	mu    sync.Mutex
	n     int
}

func (f *pruneRecorder) PruneAttempts(_ context.Context, before time.Time) (int64, error) {
	f.mu.Lock()
	f.n++
	first := f.n == 1
	f.mu.Unlock()
	select {
	case f.calls <- before:
	default: // the test has seen enough; never block the loop
	}
	if first {
		return 0, errors.New("database is locked")
	}
	return 3, nil
}

// TestPruneAttemptsLoop: pruning runs every interval with the retention
// cut-off, survives a failed run, and stops with its context.
func TestPruneAttemptsLoop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	f := &pruneRecorder{calls: make(chan time.Time, 10)}
	failed := make(chan error, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		PruneAttempts(ctx, f, time.Millisecond, func() time.Time { return now }, func(err error) { failed <- err }, nil)
	}()
	for i := range 2 {
		if before := <-f.calls; !before.Equal(now.Add(-pruneRetention())) || pruneRetention() < Retention {
			t.Errorf("prune %d: before %v, want %v", i+1, before, now.Add(-pruneRetention()))
		}
	}
	if err := <-failed; err == nil {
		t.Error("the failed run was not reported")
	}
	cancel()
	<-done
}

// TestPruneKeepsDecoyLocks: pruning keeps counters as long as the longest
// lockout (a decoy's lock counter) and a window more.
func TestPruneKeepsDecoyLocks(t *testing.T) {
	NewGuard(nil, nil, 0, 3*time.Hour, nil)
	if got := pruneRetention(); got < 3*time.Hour+ThrottleWindow {
		t.Errorf("retention %v with a 3h lockout", got)
	}
}

var errDatabaseDown = errors.New("dial tcp 10.0.0.5:5432: connection refused")

// TestDecoyLocksAsAnAccount: a decoy and a real account's lock, given the
// same wrong secrets at the same times, answer alike at every step: the
// count down, the lock from the third failure (not the first) for the
// lockout period, refusals while locked without verifying, the count
// starting again after the lock or once its window passed; with a lockout
// period shorter than the count's window too.
func TestDecoyLocksAsAnAccount(t *testing.T) {
	for _, lockout := range []time.Duration{30 * time.Minute, 5 * time.Minute} {
		t.Run(lockout.String(), func(t *testing.T) {
			db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cacgate.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			ctx := context.Background()
			acct := &store.Account{Username: "john.doe", EDIPI: "1234567890", Status: store.StatusActive}
			if err := db.CreateAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 12, 6, 8, 0, 0, 250e6, time.UTC) // not on a second: locks round up
			g := NewGuard(db, db, 0, lockout, func() time.Time { return now })
			// Minutes after the start of each wrong attempt.
			for i, at := range []float64{0, 1, 2, 3, 14, 20, 33, 34, 50, 51, 70, 71, 71.5, 72, 73, 120} {
				now = time.Date(2026, 12, 6, 8, 0, 0, 250e6, time.UTC).Add(time.Duration(at * float64(time.Minute)))
				accountRan, decoyRan := false, false
				real, err := g.Account(ctx, acct, func(context.Context) (bool, error) { accountRan = true; return false, nil })
				if err != nil {
					t.Fatal(err)
				}
				decoy, err := g.Decoy(ctx, "decoy:test", func(context.Context) error { decoyRan = true; return nil })
				if err != nil {
					t.Fatal(err)
				}
				r, d := real.State, decoy.State
				if r.Remaining != d.Remaining || !r.LockedUntil.Equal(d.LockedUntil) || accountRan != decoyRan || real.OK || decoy.OK {
					t.Errorf("attempt %d at +%vm: account %+v (verified %v), decoy %+v (verified %v)", i+1, at, r, accountRan, d, decoyRan)
				}
			}
		})
	}
}

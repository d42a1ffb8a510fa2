package store

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

const (
	testWindow  = 15 * time.Minute
	testMax     = 3
	testLockFor = 30 * time.Minute
)

var testT0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

func recordFailure(t *testing.T, s *SQLStore, id int64, at time.Time) LoginState {
	t.Helper()
	st, err := s.RecordLoginFailure(context.Background(), id, at, testWindow, testMax, testLockFor)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func loginState(t *testing.T, s *SQLStore, id int64, at time.Time) LoginState {
	t.Helper()
	st, err := s.LoginState(context.Background(), id, at, testWindow, testMax)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func assertLoginState(t *testing.T, what string, got LoginState, failures, remaining int, lockedUntil time.Time) {
	t.Helper()
	want := LoginState{Failures: failures, Remaining: remaining, LockedUntil: lockedUntil}
	if got != want {
		t.Errorf("%s: %+v, want %+v", what, got, want)
	}
	if got.Locked() != !lockedUntil.IsZero() {
		t.Errorf("%s: Locked() = %v", what, got.Locked())
	}
}

func TestLoginFailuresLockAtMax(t *testing.T) { forEachBackend(t, testLoginFailuresLockAtMax) }

func testLoginFailuresLockAtMax(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	var never time.Time

	assertLoginState(t, "fresh", loginState(t, s, a.ID, testT0), 0, 3, never)
	assertLoginState(t, "failure 1", recordFailure(t, s, a.ID, testT0), 1, 2, never)
	assertLoginState(t, "failure 2", recordFailure(t, s, a.ID, testT0.Add(time.Minute)), 2, 1, never)
	assertLoginState(t, "read after 2", loginState(t, s, a.ID, testT0.Add(2*time.Minute)), 2, 1, never)
	lockedAt := testT0.Add(3 * time.Minute)
	until := lockedAt.Add(testLockFor)
	assertLoginState(t, "failure 3", recordFailure(t, s, a.ID, lockedAt), 3, 0, until)

	stored, err := s.AccountByUsername(ctx, a.Username)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.LockedUntil.Equal(until) || !stored.UpdatedAt.Equal(a.UpdatedAt) {
		t.Errorf("locked account: %s", describe(stored))
	}

	// Failures while locked count but do not extend the lock.
	assertLoginState(t, "failure while locked", recordFailure(t, s, a.ID, lockedAt.Add(time.Minute)), 4, 0, until)
	assertLoginState(t, "read while locked", loginState(t, s, a.ID, until.Add(-time.Second)), 4, 0, until)

	// When the lock ends, so does the count.
	assertLoginState(t, "read at lock end", loginState(t, s, a.ID, until), 0, 3, never)
	assertLoginState(t, "failure after lock", recordFailure(t, s, a.ID, until), 1, 2, never)
	assertLoginState(t, "read after lock", loginState(t, s, a.ID, until.Add(time.Second)), 1, 2, never)
}

func TestLoginFailureWindowRestartsCount(t *testing.T) {
	forEachBackend(t, testLoginFailureWindowRestartsCount)
}

func testLoginFailureWindowRestartsCount(t *testing.T, be backend) {
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	var never time.Time

	recordFailure(t, s, a.ID, testT0)
	assertLoginState(t, "second within window", recordFailure(t, s, a.ID, testT0.Add(10*time.Minute)), 2, 1, never)
	assertLoginState(t, "read just inside window", loginState(t, s, a.ID, testT0.Add(testWindow-time.Second)), 2, 1, never)
	assertLoginState(t, "read at window end", loginState(t, s, a.ID, testT0.Add(testWindow)), 0, 3, never)

	// The window runs from the first failure counted, not the latest.
	restart := testT0.Add(testWindow)
	assertLoginState(t, "failure at window end", recordFailure(t, s, a.ID, restart), 1, 2, never)
	assertLoginState(t, "next", recordFailure(t, s, a.ID, restart.Add(time.Minute)), 2, 1, never)
	lockedAt := restart.Add(testWindow - time.Second)
	assertLoginState(t, "third within new window", recordFailure(t, s, a.ID, lockedAt), 3, 0, lockedAt.Add(testLockFor))
}

func TestLoginFailureLockTimesRoundUp(t *testing.T) {
	forEachBackend(t, testLoginFailureLockTimesRoundUp)
}

func testLoginFailureLockTimesRoundUp(t *testing.T, be backend) {
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	at := testT0.Add(400 * time.Millisecond)
	st, err := s.RecordLoginFailure(context.Background(), a.ID, at, testWindow, 1, testLockFor)
	if err != nil {
		t.Fatal(err)
	}
	// A maximum of one locks at the first failure; the lock lasts at
	// least lockFor although times are kept in whole seconds.
	if want := testT0.Add(testLockFor + time.Second); st.LockedUntil != want || st.Failures != 1 {
		t.Errorf("state = %+v, want 1 failure locked until %v", st, want)
	}
}

// Two stores on one file stand for two cacgate nodes.
func TestLoginFailuresConcurrentlyAcrossNodes(t *testing.T) {
	forEachBackend(t, testLoginFailuresConcurrentlyAcrossNodes)
}

func testLoginFailuresConcurrentlyAcrossNodes(t *testing.T, be backend) {
	const racers = 10
	db := be.newDatabase(t)
	nodes := []*SQLStore{db.open(t), db.open(t)}
	a := mustEnroll(t, nodes[0], newEnrollment("john.b.smith", "1111111111", "card"))

	var (
		start  = make(chan struct{})
		wg     sync.WaitGroup
		states = make([]LoginState, racers)
		errs   = make([]error, racers)
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			states[i], errs[i] = nodes[i%2].RecordLoginFailure(context.Background(), a.ID, testT0, testWindow, testMax, testLockFor)
		})
	}
	close(start)
	wg.Wait()

	until := testT0.Add(testLockFor)
	var counts []int
	for i, st := range states {
		if errs[i] != nil {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
		counts = append(counts, st.Failures)
		// Exactly the failure that reached the maximum locked the account;
		// every later one found that lock and kept it.
		wantLock := time.Time{}
		if st.Failures >= testMax {
			wantLock = until
		}
		if st.LockedUntil != wantLock || st.Remaining != max(0, testMax-st.Failures) {
			t.Errorf("racer %d: %+v", i, st)
		}
	}
	slices.Sort(counts)
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(counts, want) {
		t.Errorf("failure counts returned = %v, want each of %v once: a count was lost", counts, want)
	}
	assertLoginState(t, "after the race", loginState(t, nodes[1], a.ID, testT0), racers, 0, until)
}

func TestResetLoginFailuresAndUnlock(t *testing.T) {
	forEachBackend(t, testResetLoginFailuresAndUnlock)
}

func testResetLoginFailuresAndUnlock(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	var never time.Time

	recordFailure(t, s, a.ID, testT0)
	recordFailure(t, s, a.ID, testT0)
	if err := s.ResetLoginFailures(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	assertLoginState(t, "after reset", loginState(t, s, a.ID, testT0), 0, 3, never)
	assertLoginState(t, "failure after reset", recordFailure(t, s, a.ID, testT0), 1, 2, never)

	// A reset does not lift a lock...
	recordFailure(t, s, a.ID, testT0)
	until := testT0.Add(testLockFor)
	assertLoginState(t, "locked", recordFailure(t, s, a.ID, testT0), 3, 0, until)
	if err := s.ResetLoginFailures(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if st := loginState(t, s, a.ID, testT0.Add(time.Minute)); !st.Locked() || st.LockedUntil != until {
		t.Errorf("after reset of a locked account: %+v, want locked until %v", st, until)
	}

	// ...Unlock does.
	if err := s.Unlock(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	assertLoginState(t, "after unlock", loginState(t, s, a.ID, testT0.Add(time.Minute)), 0, 3, never)
	stored, err := s.AccountByUsername(ctx, a.Username)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.LockedUntil.IsZero() {
		t.Errorf("LockedUntil after unlock = %v", stored.LockedUntil)
	}
	assertLoginState(t, "failure after unlock", recordFailure(t, s, a.ID, testT0.Add(time.Minute)), 1, 2, never)
}

func TestLoginStateErrors(t *testing.T) { forEachBackend(t, testLoginStateErrors) }

func testLoginStateErrors(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	missing := a.ID + 1000

	_, err := s.RecordLoginFailure(ctx, missing, testT0, testWindow, testMax, testLockFor)
	assertErrorIs(t, err, ErrNotFound)
	_, err = s.LoginState(ctx, missing, testT0, testWindow, testMax)
	assertErrorIs(t, err, ErrNotFound)
	assertErrorIs(t, s.ResetLoginFailures(ctx, missing), ErrNotFound)
	assertErrorIs(t, s.Unlock(ctx, missing), ErrNotFound)

	for _, p := range []struct {
		window  time.Duration
		max     int
		lockFor time.Duration
	}{
		{0, testMax, testLockFor},
		{-time.Minute, testMax, testLockFor},
		{testWindow, 0, testLockFor},
		{testWindow, testMax, 0},
	} {
		if _, err := s.RecordLoginFailure(ctx, a.ID, testT0, p.window, p.max, p.lockFor); err == nil {
			t.Errorf("RecordLoginFailure(window %v, max %d, lock %v) succeeded", p.window, p.max, p.lockFor)
		}
		if p.lockFor == 0 {
			continue
		}
		if _, err := s.LoginState(ctx, a.ID, testT0, p.window, p.max); err == nil {
			t.Errorf("LoginState(window %v, max %d) succeeded", p.window, p.max)
		}
	}
	assertLoginState(t, "after refused calls", loginState(t, s, a.ID, testT0), 0, 3, time.Time{})
}

func takeLoginAttempt(t *testing.T, s *SQLStore, id int64, at time.Time) (LoginState, bool) {
	t.Helper()
	st, allowed, err := s.TakeLoginAttempt(context.Background(), id, at, testWindow, testMax, testLockFor)
	if err != nil {
		t.Fatal(err)
	}
	return st, allowed
}

func releaseLoginAttempt(t *testing.T, s *SQLStore, id int64, at, ownLock time.Time) time.Time {
	t.Helper()
	until, err := s.ReleaseLoginAttempt(context.Background(), id, at, ownLock)
	if err != nil {
		t.Fatal(err)
	}
	return until
}

func TestTakeLoginAttemptCountsBeforeVerifyingAndRefusesWhileLocked(t *testing.T) {
	forEachBackend(t, testTakeLoginAttemptCountsBeforeVerifyingAndRefusesWhileLocked)
}

func testTakeLoginAttemptCountsBeforeVerifyingAndRefusesWhileLocked(t *testing.T, be backend) {
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	var never time.Time

	st, ok := takeLoginAttempt(t, s, a.ID, testT0)
	assertLoginState(t, "take 1", st, 1, 2, never)
	st, ok2 := takeLoginAttempt(t, s, a.ID, testT0.Add(time.Minute))
	assertLoginState(t, "take 2", st, 2, 1, never)
	lockedAt := testT0.Add(2 * time.Minute)
	until := lockedAt.Add(testLockFor)
	st, ok3 := takeLoginAttempt(t, s, a.ID, lockedAt)
	assertLoginState(t, "take 3 locks", st, 3, 0, until)
	if !ok || !ok2 || !ok3 {
		t.Fatalf("takes before the lock refused: %v %v %v", ok, ok2, ok3)
	}

	// Locked: refused, and nothing counted.
	st, ok = takeLoginAttempt(t, s, a.ID, lockedAt.Add(time.Minute))
	if ok {
		t.Error("an attempt on a locked account was allowed")
	}
	assertLoginState(t, "take while locked", st, 3, 0, until)
	assertLoginState(t, "read while locked", loginState(t, s, a.ID, lockedAt.Add(time.Minute)), 3, 0, until)

	// A right password of an earlier attempt does not lift a lock it did
	// not set: the lock is still in force.
	if got := releaseLoginAttempt(t, s, a.ID, lockedAt.Add(time.Minute), never); got != until {
		t.Errorf("release of another attempt: lock %v, want %v", got, until)
	}
	if st := loginState(t, s, a.ID, lockedAt.Add(time.Minute)); st.LockedUntil != until {
		t.Errorf("after release of another attempt: %+v", st)
	}

	// The attempt that set the lock, right after all, lifts it.
	if got := releaseLoginAttempt(t, s, a.ID, lockedAt.Add(time.Minute), until); !got.IsZero() {
		t.Errorf("release of the locking attempt: lock %v left", got)
	}
	assertLoginState(t, "after release", loginState(t, s, a.ID, lockedAt.Add(time.Minute)), 0, 3, never)
	st, ok = takeLoginAttempt(t, s, a.ID, lockedAt.Add(time.Minute))
	if !ok {
		t.Error("attempt after release refused")
	}
	assertLoginState(t, "take after release", st, 1, 2, never)

	// When a lock ends, the count restarts.
	takeLoginAttempt(t, s, a.ID, lockedAt.Add(time.Minute))
	relock := lockedAt.Add(2 * time.Minute)
	st, _ = takeLoginAttempt(t, s, a.ID, relock)
	assertLoginState(t, "locked again", st, 3, 0, relock.Add(testLockFor))
	st, ok = takeLoginAttempt(t, s, a.ID, relock.Add(testLockFor))
	if !ok {
		t.Error("attempt at lock end refused")
	}
	assertLoginState(t, "take at lock end", st, 1, 2, never)
}

// However many attempts race on however many nodes, exactly testMax are
// allowed (and so verified); every other one finds the lock.
func TestTakeLoginAttemptConcurrentlyAcrossNodes(t *testing.T) {
	forEachBackend(t, testTakeLoginAttemptConcurrentlyAcrossNodes)
}

func testTakeLoginAttemptConcurrentlyAcrossNodes(t *testing.T, be backend) {
	const racers = 12
	db := be.newDatabase(t)
	nodes := []*SQLStore{db.open(t), db.open(t)}
	a := mustEnroll(t, nodes[0], newEnrollment("john.b.smith", "1111111111", "card"))

	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		states  = make([]LoginState, racers)
		allowed = make([]bool, racers)
		errs    = make([]error, racers)
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			states[i], allowed[i], errs[i] = nodes[i%2].TakeLoginAttempt(context.Background(), a.ID, testT0, testWindow, testMax, testLockFor)
		})
	}
	close(start)
	wg.Wait()

	until := testT0.Add(testLockFor)
	var counts []int
	for i, st := range states {
		if errs[i] != nil {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
		if !st.Locked() && !allowed[i] {
			t.Errorf("racer %d refused without a lock: %+v", i, st)
		}
		if allowed[i] {
			counts = append(counts, st.Failures)
			continue
		}
		if st.LockedUntil != until || st.Failures != testMax {
			t.Errorf("racer %d refused with %+v", i, st)
		}
	}
	slices.Sort(counts)
	if want := []int{1, 2, 3}; !slices.Equal(counts, want) {
		t.Errorf("attempts allowed counted %v, want %v", counts, want)
	}
	assertLoginState(t, "after the race", loginState(t, nodes[1], a.ID, testT0), testMax, 0, until)
}

func TestTakeAndReleaseLoginAttemptErrors(t *testing.T) {
	forEachBackend(t, testTakeAndReleaseLoginAttemptErrors)
}

func testTakeAndReleaseLoginAttemptErrors(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	missing := a.ID + 1000

	_, allowed, err := s.TakeLoginAttempt(ctx, missing, testT0, testWindow, testMax, testLockFor)
	assertErrorIs(t, err, ErrNotFound)
	if allowed {
		t.Error("attempt on a missing account allowed")
	}
	_, err = s.ReleaseLoginAttempt(ctx, missing, testT0, time.Time{})
	assertErrorIs(t, err, ErrNotFound)
	for _, p := range []struct {
		window  time.Duration
		max     int
		lockFor time.Duration
	}{
		{0, testMax, testLockFor},
		{testWindow, 0, testLockFor},
		{testWindow, testMax, 0},
	} {
		if _, allowed, err := s.TakeLoginAttempt(ctx, a.ID, testT0, p.window, p.max, p.lockFor); err == nil || allowed {
			t.Errorf("TakeLoginAttempt(window %v, max %d, lock %v) = %v, %v", p.window, p.max, p.lockFor, allowed, err)
		}
	}
	assertLoginState(t, "after refused calls", loginState(t, s, a.ID, testT0), 0, 3, time.Time{})
}

func TestReturnLoginAttempt(t *testing.T) { forEachBackend(t, testReturnLoginAttempt) }

// An attempt taken in advance whose secret was never checked goes back:
// one failure less, the lock it set lifted, earlier failures kept.
func testReturnLoginAttempt(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	var never time.Time
	take := func(at time.Time) LoginState {
		t.Helper()
		st, ok, err := s.TakeLoginAttempt(ctx, a.ID, at, testWindow, testMax, testLockFor)
		if err != nil || !ok {
			t.Fatalf("take: %v %v", ok, err)
		}
		return st
	}
	take(testT0)
	st := take(testT0.Add(time.Minute))
	if err := s.ReturnLoginAttempt(ctx, a.ID, st.LockedUntil); err != nil {
		t.Fatal(err)
	}
	assertLoginState(t, "one of two returned", loginState(t, s, a.ID, testT0.Add(2*time.Minute)), 1, 2, never)
	take(testT0.Add(2 * time.Minute))
	st = take(testT0.Add(3 * time.Minute)) // the third: locks
	if !st.Locked() {
		t.Fatalf("third failure did not lock: %+v", st)
	}
	if err := s.ReturnLoginAttempt(ctx, a.ID, st.LockedUntil); err != nil {
		t.Fatal(err)
	}
	assertLoginState(t, "the locking attempt returned", loginState(t, s, a.ID, testT0.Add(4*time.Minute)), 2, 1, never)
	for range 2 {
		if err := s.ReturnLoginAttempt(ctx, a.ID, never); err != nil {
			t.Fatal(err)
		}
	}
	assertLoginState(t, "all returned", loginState(t, s, a.ID, testT0.Add(5*time.Minute)), 0, 3, never)
	if err := s.ReturnLoginAttempt(ctx, a.ID, never); err != nil {
		t.Fatalf("returning with none counted: %v", err)
	}
	assertLoginState(t, "never below zero", loginState(t, s, a.ID, testT0.Add(5*time.Minute)), 0, 3, never)
	if err := s.ReturnLoginAttempt(ctx, a.ID+1000, never); err == nil {
		t.Error("returning an attempt of no account succeeded")
	}
}

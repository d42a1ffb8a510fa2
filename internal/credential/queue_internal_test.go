package credential

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockingHasher is a one-slot Hasher whose first hash blocks until the
// returned function is called, whose slots do not rest, and which records
// the secrets it derived in order.
func blockingHasher(t *testing.T, q Queue) (h *Hasher, order func() []string, unblock func()) {
	t.Helper()
	h = NewQueuedHasher(internalFast, 1, q)
	h.rest = func(time.Duration) time.Duration { return 0 }
	var mu sync.Mutex
	var seen []string
	started, gate := make(chan struct{}), make(chan struct{})
	h.derive = func(secret, salt []byte, p Params) ([]byte, error) {
		mu.Lock()
		seen = append(seen, string(secret))
		first := len(seen) == 1
		mu.Unlock()
		if first {
			close(started)
			<-gate
		}
		return deriveKey(secret, salt, p)
	}
	go func() { _, _ = h.Hash(context.Background(), "holder") }()
	<-started
	var once sync.Once
	unblock = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(unblock)
	return h, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }, unblock
}

// waitFor polls cond with a generous deadline: the goroutines under test
// only have to reach a line, but a busy machine may leave them waiting
// long for a CPU, and only a failing test waits that long.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestInteractiveServedBeforeQueuedEnrollment queues enrollment hashes
// behind a running one, then a password sign-in's Verify, and checks that
// the sign-in is the next hash to run when the slot frees: not after the
// enrollment hashes queued before it.
func TestInteractiveServedBeforeQueuedEnrollment(t *testing.T) {
	const flood = 8
	// MaxWait: the queued hashes wait for the test, never give up (the
	// default bound is 10s; a busy machine can take that long to queue them).
	h, order, unblock := blockingHasher(t, Queue{MaxWaiting: 64, MaxWait: time.Hour})
	var wg sync.WaitGroup
	enroll := WithPriority(context.Background(), Enrollment)
	for range flood {
		wg.Go(func() {
			if _, err := h.Hash(enroll, "enroll"); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, "the enrollment hashes to queue", func() bool { return h.Waiting(Enrollment) == flood })
	encoded := encodePHC(internalFast, make([]byte, 16), make([]byte, 32))
	wg.Go(func() {
		if _, err := h.Verify(context.Background(), "signin", encoded); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, "the sign-in to queue", func() bool { return h.Waiting(Interactive) == 1 })
	unblock()
	wg.Wait()
	got := order()
	if len(got) != flood+2 {
		t.Fatalf("%d hashes ran, want %d", len(got), flood+2)
	}
	for i, s := range got {
		if s == "signin" && i != 1 {
			t.Errorf("the sign-in ran after %d queued enrollment hashes, want 0 (order %v)", i-1, got)
		}
	}
}

// TestQueueFullFailsFast checks that a hash finding its priority's line
// full is turned away at once with ErrBusy (counted), while another
// priority's line still takes a waiter.
func TestQueueFullFailsFast(t *testing.T) {
	var rejected sync.Map
	// MaxWait: the queued hashes must still be waiting when the one too
	// many comes, however slow the machine (the default bound is 10s).
	h, _, unblock := blockingHasher(t, Queue{MaxWaiting: 2, MaxWait: time.Hour, Rejected: func(p Priority, reason string) {
		rejected.Store(p.String()+"/"+reason, true)
	}})
	enroll := WithPriority(context.Background(), Enrollment)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, _ = h.Hash(enroll, "queued") })
	}
	waitFor(t, "two enrollment hashes to queue", func() bool { return h.Waiting(Enrollment) == 2 })
	_, err := h.Hash(enroll, "one too many")
	var busy *BusyError
	if !errors.Is(err, ErrBusy) || !errors.As(err, &busy) || busy.Reason != BusyQueueFull || busy.RetryAfter <= 0 {
		t.Fatalf("Hash with a full line: %v, want a BusyError (queue_full) with a RetryAfter", err)
	}
	if _, ok := rejected.Load("enrollment/queue_full"); !ok {
		t.Error("the rejection was not reported")
	}
	wg.Go(func() {
		if _, err := h.Hash(context.Background(), "signin"); err != nil {
			t.Errorf("a sign-in with the enrollment line full: %v", err)
		}
	})
	waitFor(t, "the sign-in to queue", func() bool { return h.Waiting(Interactive) == 1 })
	unblock()
	wg.Wait()
}

// TestWaitIsBounded checks that a hash waiting longer than MaxWait gives
// up with ErrBusy (wait_timeout) and leaves the line, and that the waits
// of hashes that got a slot are reported.
func TestWaitIsBounded(t *testing.T) {
	var waits atomic.Int32
	var rejected atomic.Value
	h, _, unblock := blockingHasher(t, Queue{MaxWait: 20 * time.Millisecond,
		Waited:   func(Priority, time.Duration) { waits.Add(1) },
		Rejected: func(_ Priority, reason string) { rejected.Store(reason) },
	})
	_, err := h.Hash(WithPriority(context.Background(), Enrollment), "late")
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Reason != BusyWaitTimeout {
		t.Fatalf("Hash waiting past MaxWait: %v, want a BusyError (wait_timeout)", err)
	}
	if got, _ := rejected.Load().(string); got != BusyWaitTimeout {
		t.Errorf("rejection reported as %q", got)
	}
	if n := h.Waiting(Enrollment); n != 0 {
		t.Errorf("%d still waiting after giving up", n)
	}
	unblock()
	waitFor(t, "the slot to free", func() bool { return h.InFlight() == 0 })
	if _, err := h.Hash(context.Background(), "after"); err != nil {
		t.Fatal(err)
	}
	if got := waits.Load(); got < 2 {
		t.Errorf("%d waits reported, want one per hash that got a slot (at least 2)", got)
	}
}

// BenchmarkSignInUnderEnrollmentFlood measures one password sign-in's
// Verify while 24 goroutines keep enrollment hashes queued on a
// one-slot Hasher (hash_concurrency 1, slots resting as in production):
// ns/op is the sign-in's latency, hashes-waited/op how many other hashes
// ran between its call and its own hash. priority=off queues the flood
// in the sign-in's own line, as every hash waited before priorities.
//
//	go test -run '^$' -bench SignInUnderEnrollmentFlood -benchtime 200x ./internal/credential/
func BenchmarkSignInUnderEnrollmentFlood(b *testing.B) {
	for _, tc := range []struct {
		name  string
		flood Priority
	}{{"priority=off", Interactive}, {"priority=on", Enrollment}} {
		b.Run(tc.name, func(b *testing.B) {
			h := NewQueuedHasher(internalFast, 1, Queue{MaxWaiting: 64, MaxWait: time.Minute})
			var derived atomic.Int64
			var signinAt atomic.Int64
			h.derive = func(secret, salt []byte, p Params) ([]byte, error) {
				n := derived.Add(1)
				if string(secret) == "signin" {
					signinAt.Store(n)
				}
				return deriveKey(secret, salt, p)
			}
			ctx, cancel := context.WithCancel(WithPriority(context.Background(), tc.flood))
			var wg sync.WaitGroup
			for range 24 {
				wg.Go(func() {
					for ctx.Err() == nil {
						_, _ = h.Hash(ctx, "enroll")
					}
				})
			}
			for h.Waiting(tc.flood) < 20 {
				time.Sleep(time.Millisecond)
			}
			encoded := encodePHC(internalFast, make([]byte, 16), make([]byte, 32))
			var waited int64
			for b.Loop() {
				before := derived.Load()
				if _, err := h.Verify(context.Background(), "signin", encoded); err != nil {
					b.Fatal(err)
				}
				waited += signinAt.Load() - before - 1
			}
			b.ReportMetric(float64(waited)/float64(b.N), "hashes-waited/op")
			cancel()
			wg.Wait()
		})
	}
}

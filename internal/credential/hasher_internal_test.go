package credential

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var internalFast = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// TestBoundedConcurrency starts more hashes than the bound and checks,
// from inside the derivation, that no more than the bound ever run at once.
func TestBoundedConcurrency(t *testing.T) {
	for _, bound := range []int{1, 2} {
		// MaxWait: every hash must get its turn, however slow the machine
		// (the default bound, 10s, is not what this test is about).
		h := NewQueuedHasher(internalFast, bound, Queue{MaxWait: time.Hour})
		var running, peak atomic.Int32
		h.derive = func(secret, salt []byte, p Params) ([]byte, error) {
			n := running.Add(1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			if got := h.InFlight(); got < 1 || got > bound {
				t.Errorf("bound %d: InFlight = %d inside a hash", bound, got)
			}
			time.Sleep(5 * time.Millisecond) // long enough for the others to pile up
			running.Add(-1)
			return deriveKey(secret, salt, p)
		}
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				encoded, err := h.Hash(t.Context(), "secret")
				if err != nil {
					t.Error(err)
					return
				}
				if ok, err := h.Verify(t.Context(), "secret", encoded); !ok || err != nil {
					t.Errorf("Verify = %v, %v", ok, err)
				}
			})
		}
		wg.Wait()
		if got := peak.Load(); got < 1 || got > int32(bound) {
			t.Errorf("bound %d: up to %d hashes ran at once", bound, got)
		}
		if got := h.InFlight(); got != 0 {
			t.Errorf("bound %d: InFlight = %d after every hash returned", bound, got)
		}
	}
}

// TestWaitRespectsContext fills the only slot with a hash that blocks, then
// checks that callers waiting behind it leave as soon as their context ends.
// Only their context can end their wait: the slot is held until the test
// ends and the line's bound is an hour, so neither the machine's speed nor
// the queue's own bound decides the outcome.
func TestWaitRespectsContext(t *testing.T) {
	h := NewQueuedHasher(internalFast, 1, Queue{MaxWait: time.Hour})
	started := make(chan struct{})
	unblock := make(chan struct{})
	var once sync.Once
	h.derive = func(secret, salt []byte, p Params) ([]byte, error) {
		once.Do(func() { close(started) })
		<-unblock
		return deriveKey(secret, salt, p)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := h.Hash(context.Background(), "holder"); err != nil {
			t.Error(err)
		}
	})
	<-started
	defer func() {
		close(unblock)
		wg.Wait()
	}()
	if got := h.InFlight(); got != 1 {
		t.Errorf("InFlight = %d while one hash runs", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(ctx, "waiter")
		done <- err
	}()
	waitFor(t, "the waiter to queue", func() bool { return h.Waiting(Interactive) == 1 })
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Hash while waiting, cancelled: error = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Hash still waits a minute after its context was cancelled")
	}
	if n := h.Waiting(Interactive); n != 0 {
		t.Errorf("%d still waiting after the cancellation", n)
	}

	encoded := encodePHC(internalFast, make([]byte, 16), make([]byte, 32))
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if ok, err := h.Verify(ctx, "waiter", encoded); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify while waiting, deadline passed: %v, %v; want false, context.DeadlineExceeded", ok, err)
	}
	if got := h.InFlight(); got != 1 {
		t.Errorf("InFlight = %d after waiters gave up, want 1", got)
	}
}

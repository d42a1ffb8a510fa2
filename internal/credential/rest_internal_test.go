package credential

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSlotRestsAfterHash checks the duty cycle: after a hash that took d,
// its slot stays taken for restFactor×d, so a hash queued behind it starts
// no sooner. (That the caller does not wait for the rest is
// TestCallerDoesNotWaitForTheRest.)
func TestSlotRestsAfterHash(t *testing.T) {
	const d = 40 * time.Millisecond
	// MaxWait: the second hash waits out the rest, however long a busy
	// machine made the first hash (and so its rest).
	h := NewQueuedHasher(internalFast, 1, Queue{MaxWait: time.Hour})
	var starts []time.Time
	h.derive = func(secret, salt []byte, p Params) ([]byte, error) {
		starts = append(starts, time.Now()) // one slot: never concurrent
		time.Sleep(d)
		return deriveKey(secret, salt, p)
	}
	if _, err := h.Hash(t.Context(), "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hash(t.Context(), "second"); err != nil {
		t.Fatal(err)
	}
	if len(starts) != 2 {
		t.Fatalf("%d hashes ran, want 2", len(starts))
	}
	// The first hash ran for at least d, so its slot was taken until
	// (1+restFactor)×d after it started.
	if gap := starts[1].Sub(starts[0]); gap < (1+restFactor)*d {
		t.Errorf("second hash started %v after the first, want ≥ %v", gap, (1+restFactor)*d)
	}
}

// TestCallerDoesNotWaitForTheRest: the caller gets its result while its
// slot still rests. The rest is an hour, so a Hash that returns at all did
// not wait for it, however slow the machine; the slot is still taken then
// (a second hash gives up after its 1ms bound), though nothing runs.
func TestCallerDoesNotWaitForTheRest(t *testing.T) {
	h := NewQueuedHasher(internalFast, 1, Queue{MaxWait: time.Millisecond})
	h.rest = func(time.Duration) time.Duration { return time.Hour }
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "first")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the first hash has not returned after a minute: it waits for its own rest")
	}
	if got := h.InFlight(); got != 0 {
		t.Errorf("InFlight = %d while the slot only rests", got)
	}
	if _, err := h.Hash(context.Background(), "second"); !errors.Is(err, ErrBusy) {
		t.Errorf("a hash while the only slot rests: %v, want ErrBusy", err)
	}
}

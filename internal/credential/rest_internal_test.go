package credential

import (
	"testing"
	"time"
)

// TestSlotRestsAfterHash checks the duty cycle: after a hash that took d,
// its slot stays taken for restFactor×d, so a hash queued behind it starts
// no sooner, while the first caller gets its result without waiting.
func TestSlotRestsAfterHash(t *testing.T) {
	const d = 40 * time.Millisecond
	h := NewHasher(internalFast, 1)
	var starts []time.Time
	h.derive = func(secret, salt []byte, p Params) ([]byte, error) {
		starts = append(starts, time.Now()) // one slot: never concurrent
		time.Sleep(d)
		return deriveKey(secret, salt, p)
	}
	begin := time.Now()
	if _, err := h.Hash(t.Context(), "first"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > d+restFactor*d/2 {
		t.Errorf("the first hash returned after %v: it waited for its own rest", took)
	}
	if got := h.InFlight(); got != 0 {
		t.Errorf("InFlight = %d while the slot only rests", got)
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

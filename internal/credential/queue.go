package credential

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Priority is the class a hash waits in for a slot. When a slot frees, the
// longest-waiting hash of the highest class gets it: a person signing in
// is served before any enrollment hash queued earlier.
type Priority int

// Priorities, highest first.
const (
	// Interactive is the default: a secret a waiting person typed to be
	// let in (password sign-in, registering a card, reset answers, the
	// account pages).
	Interactive Priority = iota
	// Enrollment is hashing new secrets during self-enrollment (the
	// profile's password and the security answers), which a flood of
	// replayed posts would otherwise put ahead of everyone signing in.
	Enrollment
	priorities
)

// String is the priority's name as the metrics label it.
func (p Priority) String() string {
	switch p {
	case Interactive:
		return "interactive"
	case Enrollment:
		return "enrollment"
	}
	return "priority" + strconv.Itoa(int(p))
}

type priorityKey struct{}

// WithPriority returns ctx carrying p: the hashes made under it wait for a
// slot in p's class. Without it, a hash is Interactive.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityOf returns the priority ctx carries (Interactive by default).
func PriorityOf(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok && p >= 0 && p < priorities {
		return p
	}
	return Interactive
}

// Defaults of Queue.
const (
	// DefaultMaxWaiting is how many hashes of one priority may wait for a
	// slot. With argon2id (about 50 ms of a core, then a slot's rest) one
	// slot gets through about five hashes a second, so a full queue is
	// about six seconds of work per slot.
	DefaultMaxWaiting = 32
	// DefaultMaxWait is the longest a hash waits for a slot.
	DefaultMaxWait = 10 * time.Second
)

// Queue bounds the line in front of a Hasher's slots.
type Queue struct {
	// MaxWaiting is how many hashes of one priority may wait for a slot at
	// once (per Hasher, whatever its slots): one more fails at once with
	// a BusyError (reason queue_full). 0 means DefaultMaxWaiting. Each
	// priority has its own allowance, so a full enrollment line never
	// turns a sign-in away.
	MaxWaiting int
	// MaxWait is the longest a hash waits for a slot before failing with a
	// BusyError (reason wait_timeout). 0 means DefaultMaxWait.
	MaxWait time.Duration
	// Waited, if set, is told how long each hash that got a slot waited
	// for it (zero when a slot was free), by priority: for metrics.
	Waited func(p Priority, waited time.Duration)
	// Rejected, if set, is told of each hash turned away, by priority and
	// reason (queue_full or wait_timeout): for metrics.
	Rejected func(p Priority, reason string)
}

func (q Queue) withDefaults() Queue {
	if q.MaxWaiting <= 0 {
		q.MaxWaiting = DefaultMaxWaiting
	}
	if q.MaxWait <= 0 {
		q.MaxWait = DefaultMaxWait
	}
	return q
}

// Reasons of a BusyError.
const (
	BusyQueueFull   = "queue_full"
	BusyWaitTimeout = "wait_timeout"
)

// ErrBusy means a hash was turned away because too many were waiting for a
// slot, or it waited for one longer than the Hasher allows: nothing was
// hashed or verified, and the request may be tried again later. The error
// is a *BusyError.
var ErrBusy = errors.New("credential: too many hashes waiting")

// BusyError is a hash turned away (see ErrBusy).
type BusyError struct {
	Priority Priority
	// Reason is BusyQueueFull or BusyWaitTimeout.
	Reason string
	// RetryAfter is when to suggest trying again.
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return ErrBusy.Error() + " (" + e.Priority.String() + ", " + e.Reason + ")"
}

// Is makes a BusyError match ErrBusy.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// slots is a counting semaphore with one FIFO line per priority: a freed
// slot goes to the first waiter of the highest priority, handed over
// directly so that a newcomer cannot take it first.
type slots struct {
	q     Queue
	mu    sync.Mutex
	free  int
	lines [priorities][]*waiter
}

type waiter struct {
	granted chan struct{} // closed when the slot is handed over (under mu)
	done    bool          // the slot was handed over (under mu)
}

func newSlots(n int, q Queue) *slots { return &slots{q: q.withDefaults(), free: max(n, 1)} }

// acquire takes a slot for a hash of priority p, waiting in p's line at
// most the queue's MaxWait and while ctx lasts.
func (s *slots) acquire(ctx context.Context, p Priority) error {
	// A caller that has already gone must not take a free slot.
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	s.mu.Lock()
	if s.free > 0 {
		s.free--
		s.mu.Unlock()
		s.waited(p, 0)
		return nil
	}
	if len(s.lines[p]) >= s.q.MaxWaiting {
		s.mu.Unlock()
		return s.reject(p, BusyQueueFull)
	}
	w := &waiter{granted: make(chan struct{})}
	s.lines[p] = append(s.lines[p], w)
	s.mu.Unlock()

	timer := time.NewTimer(s.q.MaxWait)
	defer timer.Stop()
	var err error
	select {
	case <-w.granted:
		s.waited(p, time.Since(start))
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
	}
	s.mu.Lock()
	if w.done && err == nil {
		// Handed a slot just as the wait ran out: take it.
		s.mu.Unlock()
		s.waited(p, time.Since(start))
		return nil
	}
	if w.done {
		// Handed a slot while giving up: give it to the next in line.
		s.releaseLocked()
	} else {
		s.lines[p] = slices.DeleteFunc(s.lines[p], func(x *waiter) bool { return x == w })
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.reject(p, BusyWaitTimeout)
}

func (s *slots) release() {
	s.mu.Lock()
	s.releaseLocked()
	s.mu.Unlock()
}

func (s *slots) releaseLocked() {
	for p := range s.lines {
		if line := s.lines[p]; len(line) > 0 {
			w := line[0]
			line[0] = nil
			s.lines[p] = line[1:]
			w.done = true
			close(w.granted)
			return
		}
	}
	s.free++
}

// waiting returns how many hashes of priority p wait for a slot.
func (s *slots) waiting(p Priority) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines[p])
}

func (s *slots) waited(p Priority, d time.Duration) {
	if s.q.Waited != nil {
		s.q.Waited(p, d)
	}
}

func (s *slots) reject(p Priority, reason string) error {
	if s.q.Rejected != nil {
		s.q.Rejected(p, reason)
	}
	return &BusyError{Priority: p, Reason: reason, RetryAfter: s.q.MaxWait}
}

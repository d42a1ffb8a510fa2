package selfservice

import (
	"context"
	"sync"
	"time"
)

// Throttle counts the flow's failed attempts per key: identity checks,
// "register this card" passwords and security answers, per card, and the
// decoy countdown of usernames that cannot be reset. Each key has one
// count with the time its window began; a count whose window has passed is
// zero, and the next attempt starts a new window.
//
// With several gateway nodes the throttle must be shared by all of them
// (store.Throttler, through the account database), or each node grants a
// card its own allowance. The flow's keys are printable ASCII without
// spaces and at most MaxThrottleKeyLen bytes, so an adapter may add a
// prefix of its own.
//
// An error means the throttle cannot tell: the flow then refuses the
// attempt with a "try again later" page, counting nothing and changing
// nothing.
type Throttle interface {
	// Take counts an attempt for key at now, in advance, unless max were
	// already counted in the window; it reports whether the attempt may
	// go ahead. Concurrent takes never allow more than max per window.
	Take(ctx context.Context, key string, now time.Time, window time.Duration, max int) (bool, error)
	// Refund takes back one attempt counted by Take, when the attempt did
	// not fail after all. The count never goes below zero.
	Refund(ctx context.Context, key string) error
	// Failures returns the attempts counted for key in the window at now
	// and when that window began (0 and the zero time if none).
	Failures(ctx context.Context, key string, now time.Time, window time.Duration) (n int, since time.Time, err error)
}

// MaxThrottleKeyLen is the longest key the flow passes its Throttle.
const MaxThrottleKeyLen = 120

// ThrottleWindow is the longest window the flow counts attempts in: a
// shared throttle may forget counts whose window began longer ago.
const ThrottleWindow = max(failureWindow, loginWindow)

// memoryThrottle is the Throttle of a single gateway node: counts in
// memory, for at most size keys. It is the default when Deps.Throttle is
// nil; with several nodes each has its own, so a card gets each node's
// allowance.
type memoryThrottle struct {
	mu   sync.Mutex
	size int
	seen map[string]*failures
}

type failures struct {
	count int
	since time.Time // start of the window
	ends  time.Time // since plus the window it was counted in, for eviction
}

var _ Throttle = (*memoryThrottle)(nil)

func newMemoryThrottle(size int) *memoryThrottle {
	return &memoryThrottle{size: size, seen: map[string]*failures{}}
}

// current returns key's count if its window has not passed. l.mu is held.
func (l *memoryThrottle) current(key string, now time.Time, window time.Duration) *failures {
	f := l.seen[key]
	if f == nil || f.count == 0 || now.Sub(f.since) >= window {
		return nil
	}
	return f
}

// Take implements Throttle. It never fails.
func (l *memoryThrottle) Take(_ context.Context, key string, now time.Time, window time.Duration, max int) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.current(key, now, window); f != nil {
		if f.count >= max {
			return false, nil
		}
		f.count++
		return true, nil
	}
	if max < 1 {
		return false, nil
	}
	delete(l.seen, key)
	if len(l.seen) >= l.size {
		l.evict(now)
	}
	l.seen[key] = &failures{count: 1, since: now, ends: now.Add(window)}
	return true, nil
}

// Refund implements Throttle. It never fails.
func (l *memoryThrottle) Refund(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.seen[key]; f != nil && f.count > 0 {
		f.count--
		if f.count == 0 {
			delete(l.seen, key)
		}
	}
	return nil
}

// Failures implements Throttle. It never fails.
func (l *memoryThrottle) Failures(_ context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.current(key, now, window)
	if f == nil {
		return 0, time.Time{}, nil
	}
	return f.count, f.since, nil
}

// evict drops expired entries and, if none expired, the oldest one, so the
// map never grows past size. It is linear, and only runs when full.
// l.mu is held.
func (l *memoryThrottle) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, f := range l.seen {
		if !now.Before(f.ends) {
			delete(l.seen, k)
			continue
		}
		if oldestKey == "" || f.since.Before(oldest) {
			oldestKey, oldest = k, f.since
		}
	}
	if len(l.seen) >= l.size && oldestKey != "" {
		delete(l.seen, oldestKey)
	}
}

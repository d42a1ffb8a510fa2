package enroll

import (
	"sync"
	"time"
)

// limiter counts failed identity validations per card in memory: at most
// max failures per window, for at most size cards. It is per gateway node;
// the roster's own protections (and the card's PIN) back it up.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	size   int
	seen   map[string]*failures
}

type failures struct {
	count int
	since time.Time // start of the window
}

func newLimiter(maxFailures int, window time.Duration, size int) *limiter {
	return &limiter{max: maxFailures, window: window, size: size, seen: map[string]*failures{}}
}

// blocked reports whether key has used up its failures in the current
// window.
func (l *limiter) blocked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.seen[key]
	if f == nil {
		return false
	}
	if now.Sub(f.since) >= l.window {
		delete(l.seen, key)
		return false
	}
	return f.count >= l.max
}

// take counts an attempt for key as failed in advance, and reports false
// (counting nothing) when key has no failures left. Counting before the
// roster answers means parallel requests cannot exceed the limit; refund
// takes the count back when the attempt did not fail.
func (l *limiter) take(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.seen[key]; f != nil && now.Sub(f.since) < l.window {
		if f.count >= l.max {
			return false
		}
		f.count++
		return true
	}
	l.add(key, now)
	return true
}

// refund takes back one attempt counted by take.
func (l *limiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.seen[key]; f != nil && f.count > 0 {
		f.count--
		if f.count == 0 {
			delete(l.seen, key)
		}
	}
}

// add starts a window with one failure for key. l.mu is held.
func (l *limiter) add(key string, now time.Time) {
	if len(l.seen) >= l.size {
		l.evict(now)
	}
	l.seen[key] = &failures{count: 1, since: now}
}

// evict drops expired entries and, if none expired, the oldest one, so the
// map never grows past size. It is linear, and only runs when full.
func (l *limiter) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, f := range l.seen {
		if now.Sub(f.since) >= l.window {
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

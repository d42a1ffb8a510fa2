package caddymodule

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// ipLimiter bounds identity-validation attempts (roster checks, password
// checks) per client address. The enrollment flow limits each card; this
// stops one client from cycling through cards or usernames. It is per node
// and in memory: a bound on abuse, not an account lockout (that one lives
// in the database).
type ipLimiter struct {
	max    int
	window time.Duration
	lru    *expirable.LRU[string, *ipWindow]
}

type ipWindow struct {
	mu    sync.Mutex
	start time.Time
	n     int
}

// ipLimiterSize bounds the addresses remembered; an attacker with more
// addresses than this gets no worse than the per-card and per-account
// limits.
const ipLimiterSize = 100_000

func newIPLimiter(max int, window time.Duration) *ipLimiter {
	return &ipLimiter{max: max, window: window, lru: expirable.NewLRU[string, *ipWindow](ipLimiterSize, nil, window)}
}

// allow counts an attempt from ip and reports whether it is within the limit.
func (l *ipLimiter) allow(ip string, now time.Time) bool {
	w, ok := l.lru.Get(ip)
	if !ok {
		w = &ipWindow{start: now}
		l.lru.Add(ip, w)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.start) >= l.window {
		w.start, w.n = now, 0
	}
	w.n++
	return w.n <= l.max
}

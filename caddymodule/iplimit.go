package caddymodule

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// addressLimit bounds identity checks (roster checks, passwords, security
// answers) per client address: attempts_per_ip. The enrollment flow limits
// each card and the database locks each account; this stops one client
// from cycling through cards or usernames (password spraying on the
// sign-in page). It is a bound on abuse, not an account lockout.
//
// With a store that can count attempts (store.Throttler) the counts live
// in the account database, so the bound holds across every node behind the
// load balancer rather than once per node; otherwise they live in this
// node's memory.
type addressLimit struct {
	max    int
	window time.Duration
	shared store.Throttler // nil: counted in local
	local  *ipLimiter
}

// addressAttemptPrefix namespaces the per-address counters in the store's
// table of attempts, next to the enrollment flow's per-card ones.
const addressAttemptPrefix = "ip:"

func newAddressLimit(max int, window time.Duration, shared store.Throttler) *addressLimit {
	l := &addressLimit{max: max, window: window, shared: shared}
	if shared == nil {
		l.local = newIPLimiter(max, window)
	}
	return l
}

// take counts an attempt from the client address ip and reports whether it
// is within the limit; an attempt over the limit is not counted. An error
// means the shared count could not be read or written: the caller refuses
// the attempt (fail closed).
func (l *addressLimit) take(ctx context.Context, ip string, now time.Time) (bool, error) {
	key := addressKey(ip)
	if l.shared == nil {
		return l.local.allow(key, now), nil
	}
	return l.shared.TakeAttempt(ctx, addressAttemptPrefix+key, now, l.window, l.max)
}

// refund takes back an attempt counted in advance that turned out not to
// be a failed identity check (a correct sign-in), so that people sharing an
// address (a base behind one NAT) are not limited by their own successes.
func (l *addressLimit) refund(ctx context.Context, ip string) error {
	key := addressKey(ip)
	if l.shared == nil {
		l.local.refund(key)
		return nil
	}
	return l.shared.RefundAttempt(ctx, addressAttemptPrefix+key)
}

// addressKey is what attempts from ip are counted under: the address
// itself for IPv4, its /64 for IPv6, since one client is routinely given a
// whole /64 and could otherwise take a fresh allowance with every address
// in it. An IPv4 address mapped into IPv6 counts as the IPv4 address. A
// value that is not an address (never from Caddy, which parses it) counts
// under one shared key rather than under a key the client could vary.
func addressKey(ip string) string {
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "invalid"
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// ipLimiter counts attempts per address in this node's memory, for stores
// that cannot count them in the database.
type ipLimiter struct {
	max    int
	window time.Duration
	lru    *expirable.LRU[string, *ipWindow]
	mu     sync.Mutex // serialises creating an address's window
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

// counter returns key's window, creating it if needed. Creation is
// serialised so that two first attempts at once share one counter.
func (l *ipLimiter) counter(key string, now time.Time) *ipWindow {
	if w, ok := l.lru.Get(key); ok {
		return w
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.lru.Get(key); ok {
		return w
	}
	w := &ipWindow{start: now}
	l.lru.Add(key, w)
	return w
}

// allow counts an attempt from key and reports whether it is within the
// limit. An attempt over the limit is not counted.
func (l *ipLimiter) allow(key string, now time.Time) bool {
	w := l.counter(key, now)
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.start) >= l.window {
		w.start, w.n = now, 0
	}
	if w.n >= l.max {
		return false
	}
	w.n++
	return true
}

// refund takes back one attempt counted for key.
func (l *ipLimiter) refund(key string) {
	w, ok := l.lru.Peek(key)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n > 0 {
		w.n--
	}
}

// limitAddress counts an identity check from the request's client address
// against attempts_per_ip. Over the limit it answers 429 and audits event
// (with fields); when the count cannot be kept (the account database is
// unreachable) it answers 503, since a limit that cannot be checked must
// not let the attempt through. done
// reports that the response was written.
func (h *Handler) limitAddress(w http.ResponseWriter, r *http.Request, now time.Time, event string, fields ...zap.Field) (done bool, err error) {
	ok, err := h.ipAttempts.take(r.Context(), clientIP(r), now)
	if err != nil {
		return true, h.unavailable(w, r, fmt.Errorf("counting an identity check per client address: %w", err))
	}
	if ok {
		return false, nil
	}
	h.app.audit.Request(r, event, audit.Failure, append(fields, zap.String("reason", "too_many_attempts_from_address"))...)
	w.Header().Set("Retry-After", strconv.Itoa(int(h.ipAttempts.window/time.Second)))
	return true, ui.WriteProblem(w, r, ui.Problem{
		Status:  http.StatusTooManyRequests,
		Code:    "too_many_attempts",
		Title:   "Too many attempts",
		Detail:  "Too many identity checks came from your network in the last 15 minutes.",
		Steps:   []string{"Wait 15 minutes, then try again."},
		Contact: h.Contact,
	})
}

package consent

import (
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache remembers consent tokens that have already been verified, so the
// request path does one map lookup instead of parsing and HMAC-verifying a
// JWT on every request. Only tokens that verified are cached: a forged or
// tampered token always goes through Verify and is refused there.
//
// Entries age by the caller's clock (the request's "now"), not by a clock
// read inside the cache: the hot path reads the time once.
type Cache struct {
	tokens *Tokens
	ttl    time.Duration
	lru    *lru.Cache[string, *cachedClaims]
}

type cachedClaims struct {
	Claims
	cachedAt time.Time
	// token is the token itself (the cache's key, copied from the
	// request).
	token string
}

// NewCache returns a cache of at most size verified tokens, each remembered
// for at most ttl (and never past the token's own expiry).
func NewCache(tokens *Tokens, size int, ttl time.Duration) *Cache {
	c, err := lru.New[string, *cachedClaims](size)
	if err != nil {
		panic(err) // only for size <= 0, which callers validate
	}
	return &Cache{tokens: tokens, ttl: ttl, lru: c}
}

// Accepted reports whether token is a valid, unexpired consent made by the
// card with the given fingerprint no longer than maxAge ago. maxAge is the
// site's own consent_ttl: the cookie is shared by every site (and port) of
// the host, and an acceptance made where it lasts 12 hours must not
// satisfy a site that asks every minute. token may alias request memory:
// it is copied before being stored.
func (c *Cache) Accepted(token, fingerprint string, now time.Time, maxAge time.Duration) bool {
	if token == "" {
		return false
	}
	cached, ok := c.lru.Get(token)
	if !ok || now.Sub(cached.cachedAt) >= c.ttl {
		claims, err := c.tokens.Verify(token, now)
		if err != nil {
			return false
		}
		// A pointer: the hot path's Get then copies one word, not the
		// claims.
		cached = &cachedClaims{Claims: claims, cachedAt: now, token: strings.Clone(token)}
		c.lru.Add(cached.token, cached)
	}
	return cached.Fingerprint == fingerprint && now.Before(cached.Expires) && now.Sub(cached.Issued) < maxAge
}

// Memo is what a holder of per-card state (a site's entry for a
// certificate) keeps of the last consent token its card presented, beside
// that state: while its card's requests carry the same token, AcceptedVia
// answers from it, and the request path reads one entry per card instead
// of two (with many cards taking turns, each is a miss in the CPU's
// caches). A token a memo holds is not also kept in the Cache: one copy
// per card. The zero Memo is empty and ready.
type Memo struct {
	last atomic.Pointer[memoEntry]
}

// memoEntry is one token's verified claims, held against one card.
type memoEntry struct {
	cachedClaims
	// card is the fingerprint the entry was made for (a caller passes the
	// same string every time, so comparing it reads no bytes), and ofCard
	// whether the token was made by that card.
	card   string
	ofCard bool
	// by is the cache, and so the key, that verified the token: a memo
	// that outlives its cache (kept across a change of consent key, or
	// handed to another config's cache) is no verdict for another.
	by *Cache
}

// AcceptedVia is Accepted for the card whose state holds m. It verifies
// the token only when it is not the one m remembers for this card and
// this cache, or m's claims are older than the cache's ttl.
func (c *Cache) AcceptedVia(m *Memo, token, fingerprint string, now time.Time, maxAge time.Duration) bool {
	if token == "" {
		return false
	}
	e := m.last.Load()
	if e == nil || e.token != token || e.card != fingerprint || e.by != c || now.Sub(e.cachedAt) >= c.ttl {
		claims, err := c.tokens.Verify(token, now)
		if err != nil {
			return false
		}
		e = &memoEntry{
			cachedClaims: cachedClaims{Claims: claims, cachedAt: now, token: strings.Clone(token)},
			card:         fingerprint, ofCard: claims.Fingerprint == fingerprint, by: c,
		}
		m.last.Store(e)
	}
	return e.ofCard && now.Before(e.Expires) && now.Sub(e.Issued) < maxAge
}

// CookieValue extracts the consent cookie from raw Cookie header values
// without allocating (net/http's Request.Cookie parses and allocates every
// cookie, which the hot path does not need).
func CookieValue(cookieHeaders []string) string {
	return CookieByName(cookieHeaders, CookieName)
}

// CookieByName is CookieValue for any cookie name, also without allocating.
func CookieByName(cookieHeaders []string, cookieName string) string {
	for _, line := range cookieHeaders {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			name, value, ok := strings.Cut(part, "=")
			if !ok || name != cookieName {
				continue
			}
			if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			return value
		}
	}
	return ""
}

package consent

import (
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Cache remembers consent tokens that have already been verified, so the
// request path does one map lookup instead of parsing and HMAC-verifying a
// JWT on every request. Only tokens that verified are cached: a forged or
// tampered token always goes through Verify and is refused there.
type Cache struct {
	tokens *Tokens
	lru    *expirable.LRU[string, Claims]
}

// NewCache returns a cache of at most size verified tokens, each remembered
// for at most ttl (and never past the token's own expiry).
func NewCache(tokens *Tokens, size int, ttl time.Duration) *Cache {
	return &Cache{tokens: tokens, lru: expirable.NewLRU[string, Claims](size, nil, ttl)}
}

// Accepted reports whether token is a valid, unexpired consent made by the
// card with the given fingerprint. token may alias request memory: it is
// copied before being stored.
func (c *Cache) Accepted(token, fingerprint string, now time.Time) bool {
	if token == "" {
		return false
	}
	claims, ok := c.lru.Get(token)
	if !ok {
		var err error
		if claims, err = c.tokens.Verify(token, now); err != nil {
			return false
		}
		c.lru.Add(strings.Clone(token), claims)
	}
	return claims.Fingerprint == fingerprint && now.Before(claims.Expires)
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

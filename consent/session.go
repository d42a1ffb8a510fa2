package consent

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/golang-lru/v2/expirable"
)

// SessionCookieName carries a password sign-in (for people without a card
// reader). Like the consent cookie it is __Host-, HttpOnly and Secure.
const SessionCookieName = "__Host-cacgate-session"

const sessionAudience = "cacgate-password-session"

// IssueSession returns a signed password-session token for username, valid
// for ttl. It is signed with its own derived key and audience, so neither a
// consent token nor a CSRF token can stand in for it.
func (t *Tokens) IssueSession(username string, now time.Time, ttl time.Duration) (string, error) {
	if username == "" || ttl <= 0 {
		return "", errors.New("session token needs a username and a positive lifetime")
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer:    tokenIssuer,
		Subject:   username,
		Audience:  jwt.ClaimStrings{sessionAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID:        base64.RawURLEncoding.EncodeToString(id),
	}).SignedString(t.sessionKey)
}

// VerifySession checks a password-session token and returns its username
// and expiry. Only HS256 under the session key is accepted.
func (t *Tokens) VerifySession(token string, now time.Time) (username string, expires time.Time, err error) {
	var rc jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(token, &rc,
		func(*jwt.Token) (any, error) { return t.sessionKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(sessionAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return "", time.Time{}, err
	}
	if rc.Subject == "" {
		return "", time.Time{}, errors.New("session token has no subject")
	}
	return rc.Subject, rc.ExpiresAt.Time, nil
}

// SessionCache remembers verified session tokens, like Cache does consent
// tokens, so a password session costs a map lookup per request.
type SessionCache struct {
	tokens *Tokens
	lru    *expirable.LRU[string, sessionEntry]
}

type sessionEntry struct {
	username string
	expires  time.Time
}

// NewSessionCache returns a cache of at most size verified sessions.
func NewSessionCache(tokens *Tokens, size int, ttl time.Duration) *SessionCache {
	return &SessionCache{tokens: tokens, lru: expirable.NewLRU[string, sessionEntry](size, nil, ttl)}
}

// User returns the username of a valid, unexpired session token.
func (c *SessionCache) User(token string, now time.Time) (string, bool) {
	if token == "" {
		return "", false
	}
	e, ok := c.lru.Get(token)
	if !ok {
		username, exp, err := c.tokens.VerifySession(token, now)
		if err != nil {
			return "", false
		}
		e = sessionEntry{username: username, expires: exp}
		c.lru.Add(strings.Clone(token), e)
	}
	if !now.Before(e.expires) {
		return "", false
	}
	return e.username, true
}

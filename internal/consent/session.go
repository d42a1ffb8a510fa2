package consent

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/golang-lru/v2/expirable"
)

// SessionCookieName carries a password sign-in (for people without a card
// reader). Like the consent cookie it is __Host-, HttpOnly and Secure.
const SessionCookieName = "__Host-cacgate-session"

const sessionAudience = "cacgate-password-session"

// Session is a verified password session.
type Session struct {
	Username string
	// ID names the session; it stays the same when the token is renewed.
	ID string
	// Expires is the absolute end: the session lifetime after sign-in.
	Expires time.Time
	// IdleUntil is when the session ends unless renewed by activity; zero
	// when it has no idle limit.
	IdleUntil time.Time
	// SignedIn is when the password was checked (renewals keep it): a
	// session signed in before the password was last changed or reset
	// must end, or a stolen session would outlive the change meant to
	// stop it.
	SignedIn time.Time
}

// valid reports whether s is still live at now.
func (s Session) valid(now time.Time) bool {
	return now.Before(s.Expires) && (s.IdleUntil.IsZero() || now.Before(s.IdleUntil))
}

// sessionClaims are a session token's claims: the registered ones plus the
// idle deadline.
type sessionClaims struct {
	jwt.RegisteredClaims
	Idle *jwt.NumericDate `json:"idle,omitempty"`
	// AuthTime is the sign-in time (OpenID Connect's claim of that name).
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
}

// IssueSession returns a signed password-session token for username, valid
// for ttl and, when idle is positive, ending sooner after idle without a
// renewal. It is signed with its own derived key and audience, so neither a
// consent token nor a CSRF token can stand in for it.
func (t *Tokens) IssueSession(username string, now time.Time, ttl, idle time.Duration) (string, error) {
	_, token, err := t.NewSession(username, now, ttl, idle)
	return token, err
}

// NewSession is IssueSession that also returns the session issued.
func (t *Tokens) NewSession(username string, now time.Time, ttl, idle time.Duration) (Session, string, error) {
	if username == "" || ttl <= 0 || idle < 0 {
		return Session{}, "", errors.New("session token needs a username, a positive lifetime and no negative idle limit")
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return Session{}, "", err
	}
	s := Session{Username: username, ID: base64.RawURLEncoding.EncodeToString(id), Expires: now.Add(ttl), SignedIn: now.Truncate(time.Second)}
	token, err := t.signSession(s, now, idle)
	if err != nil {
		return Session{}, "", err
	}
	if idle > 0 {
		s.IdleUntil = now.Add(idle)
		if s.IdleUntil.After(s.Expires) {
			s.IdleUntil = s.Expires
		}
	}
	return s, token, nil
}

// RenewSession returns a token for the same session (same ID and absolute
// end) whose idle deadline starts again at now. The deadline never passes
// the absolute end.
func (t *Tokens) RenewSession(s Session, now time.Time, idle time.Duration) (string, error) {
	if s.Username == "" || s.ID == "" || idle <= 0 || !s.valid(now) {
		return "", errors.New("only a live session with an idle limit can be renewed")
	}
	return t.signSession(s, now, idle)
}

func (t *Tokens) signSession(s Session, now time.Time, idle time.Duration) (string, error) {
	c := sessionClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    tokenIssuer,
		Subject:   s.Username,
		Audience:  jwt.ClaimStrings{sessionAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(s.Expires),
		ID:        s.ID,
	}}
	if !s.SignedIn.IsZero() {
		c.AuthTime = jwt.NewNumericDate(s.SignedIn)
	}
	if idle > 0 {
		deadline := now.Add(idle)
		if deadline.After(s.Expires) {
			deadline = s.Expires
		}
		c.Idle = jwt.NewNumericDate(deadline)
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.sessionKey)
}

// VerifySession checks a password-session token, its lifetime and its idle
// deadline. Only HS256 under the session key is accepted.
func (t *Tokens) VerifySession(token string, now time.Time) (Session, error) {
	var c sessionClaims
	_, err := jwt.ParseWithClaims(token, &c,
		func(*jwt.Token) (any, error) { return t.sessionKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(sessionAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return Session{}, err
	}
	if c.Subject == "" || c.ID == "" {
		return Session{}, errors.New("session token has no subject or ID")
	}
	s := Session{Username: c.Subject, ID: c.ID, Expires: c.ExpiresAt.Time}
	if c.Idle != nil {
		s.IdleUntil = c.Idle.Time
	}
	// A token from before the claim existed counts from its own issue,
	// the latest renewal: a lenient reading, never a stricter one.
	switch {
	case c.AuthTime != nil:
		s.SignedIn = c.AuthTime.Time
	case c.IssuedAt != nil:
		s.SignedIn = c.IssuedAt.Time
	}
	if !s.valid(now) {
		return Session{}, errors.New("session idle for too long")
	}
	return s, nil
}

// SessionCache remembers verified session tokens, like Cache does consent
// tokens, so a password session costs a map lookup per request.
type SessionCache struct {
	tokens *Tokens
	lru    *expirable.LRU[string, Session]
	ended  sync.Map // session ID -> time.Time: signed out, refused until then

	// Ended, when set, reports whether a session was ended elsewhere (in
	// the database every node shares). It is asked when a token is not
	// cached yet, before the token is remembered, so an error refuses the
	// token rather than letting it in unchecked.
	Ended func(ctx context.Context, id string) (bool, error)
}

// NewSessionCache returns a cache of at most size verified sessions.
func NewSessionCache(tokens *Tokens, size int, ttl time.Duration) *SessionCache {
	return &SessionCache{tokens: tokens, lru: expirable.NewLRU[string, Session](size, nil, ttl)}
}

// Session returns the session of a valid token: unexpired, not idle past
// its deadline and not ended. The error reports that Ended could not say.
func (c *SessionCache) Session(ctx context.Context, token string, now time.Time) (Session, bool, error) {
	if token == "" {
		return Session{}, false, nil
	}
	s, ok := c.lru.Get(token)
	if !ok {
		var err error
		if s, err = c.tokens.VerifySession(token, now); err != nil {
			return Session{}, false, nil
		}
		if c.Ended != nil && !c.isEnded(s.ID, now) {
			ended, err := c.Ended(ctx, s.ID)
			if err != nil {
				return Session{}, false, err
			}
			if ended {
				c.End(s.ID, s.Expires, now)
			}
		}
		c.lru.Add(strings.Clone(token), s)
	}
	if !s.valid(now) || c.isEnded(s.ID, now) {
		return Session{}, false, nil
	}
	return s, true, nil
}

// User returns the username of a valid session token; a session whose
// state cannot be checked counts as none.
func (c *SessionCache) User(ctx context.Context, token string, now time.Time) (string, bool) {
	s, ok, err := c.Session(ctx, token, now)
	return s.Username, ok && err == nil
}

// End refuses session id's tokens from now until expires, when they die
// anyway. Records of sessions already over are swept at the same time:
// sign-outs are rare, so this stays small.
func (c *SessionCache) End(id string, expires, now time.Time) {
	c.ended.Store(id, expires)
	c.ended.Range(func(k, v any) bool {
		if !now.Before(v.(time.Time)) {
			c.ended.Delete(k)
		}
		return true
	})
}

func (c *SessionCache) isEnded(id string, now time.Time) bool {
	v, ok := c.ended.Load(id)
	return ok && now.Before(v.(time.Time))
}

// Purge forgets every verified token, so each is checked again (with
// Ended) on its next use: for when notices of ended sessions may have
// been missed.
func (c *SessionCache) Purge() {
	c.lru.Purge()
}

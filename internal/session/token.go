// Package session is the gateway's password sessions: the sign-in of people
// without a card reader ("I don't have a CAC/PIV"). It issues and verifies
// the signed session cookie, remembers verified tokens so a request costs a
// map lookup, ends sessions on every node through the account database
// (sign-out, a changed password, session_limit), and prunes the records of
// ended sessions.
//
// It is apart from the consent banner (package consent) because a session
// is an identity, not an acknowledgement: it has a lifetime, an idle
// limit, an end the server records, and a per-person limit, none of which
// the banner's cookie has. It needs no Caddy; the gateway's glue builds a
// Manager on the account store and runs its pruning loop.
package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// CookieName carries a password sign-in. Like the consent cookie it is
// __Host-, HttpOnly and Secure.
const CookieName = "__Host-cacgate-session"

const (
	tokenIssuer = "cacgate"
	audience    = "cacgate-password-session"
)

// MinKeySize is the shortest master key NewTokens accepts.
const MinKeySize = 32

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

// Valid reports whether s is still live at now.
func (s Session) Valid(now time.Time) bool {
	return now.Before(s.Expires) && (s.IdleUntil.IsZero() || now.Before(s.IdleUntil))
}

// Tokens signs and verifies session tokens.
type Tokens struct {
	key []byte
}

// NewTokens derives the session signing key from master, the key the
// consent banner's tokens derive theirs from (the gateway keeps it in the
// account database so every node agrees on it). The derivation label is
// the one the sessions have always used, so sessions signed in before an
// upgrade stay valid, and no consent or CSRF token can stand in for a
// session token: each has its own derived key and audience.
func NewTokens(master []byte) (*Tokens, error) {
	if len(master) < MinKeySize {
		return nil, fmt.Errorf("session key must be at least %d bytes, got %d", MinKeySize, len(master))
	}
	m := hmac.New(sha256.New, master)
	m.Write([]byte("cacgate password session v1"))
	return &Tokens{key: m.Sum(nil)}, nil
}

// claims are a session token's claims: the registered ones plus the idle
// deadline.
type claims struct {
	jwt.RegisteredClaims
	Idle *jwt.NumericDate `json:"idle,omitempty"`
	// AuthTime is the sign-in time (OpenID Connect's claim of that name).
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
}

// Issue returns a signed token of a new session for username, valid for
// ttl and, when idle is positive, ending sooner after idle without a
// renewal.
func (t *Tokens) Issue(username string, now time.Time, ttl, idle time.Duration) (string, error) {
	_, token, err := t.New(username, now, ttl, idle)
	return token, err
}

// New is Issue that also returns the session issued.
func (t *Tokens) New(username string, now time.Time, ttl, idle time.Duration) (Session, string, error) {
	if username == "" || ttl <= 0 || idle < 0 {
		return Session{}, "", errors.New("session token needs a username, a positive lifetime and no negative idle limit")
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return Session{}, "", err
	}
	s := Session{Username: username, ID: base64.RawURLEncoding.EncodeToString(id), Expires: now.Add(ttl), SignedIn: now.Truncate(time.Second)}
	token, err := t.sign(s, now, idle)
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

// Renew returns a token for the same session (same ID and absolute end)
// whose idle deadline starts again at now. The deadline never passes the
// absolute end.
func (t *Tokens) Renew(s Session, now time.Time, idle time.Duration) (string, error) {
	if s.Username == "" || s.ID == "" || idle <= 0 || !s.Valid(now) {
		return "", errors.New("only a live session with an idle limit can be renewed")
	}
	return t.sign(s, now, idle)
}

func (t *Tokens) sign(s Session, now time.Time, idle time.Duration) (string, error) {
	c := claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    tokenIssuer,
		Subject:   s.Username,
		Audience:  jwt.ClaimStrings{audience},
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
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
}

// Verify checks a session token, its lifetime and its idle deadline. Only
// HS256 under the session key is accepted.
func (t *Tokens) Verify(token string, now time.Time) (Session, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c,
		func(*jwt.Token) (any, error) { return t.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(audience),
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
	if !s.Valid(now) {
		return Session{}, errors.New("session idle for too long")
	}
	return s, nil
}

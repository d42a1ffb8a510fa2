// Package consent implements the DoD Standard Mandatory Notice and Consent
// Banner step: the banner text, the page that shows it, the signed cookie
// that records a card holder's acceptance, and the CSRF token that protects
// the "I Accept" form. Password sessions, which are an identity rather
// than an acknowledgement, are package session; the safe return path after
// the banner is ui.SafeNext.
//
// An acceptance is bound to the certificate that made it (its SHA-256
// fingerprint): the cookie is useless with any other card, so a stolen or
// shared cookie does not let a different card holder skip the banner.
package consent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// CookieName is the consent cookie. The __Host- prefix makes browsers refuse
// it unless it is Secure, host-only and Path=/, so a sibling subdomain cannot
// plant or overwrite it.
const CookieName = "__Host-cacgate-consent"

const (
	tokenIssuer   = "cacgate"
	tokenAudience = "cacgate-consent"

	// csrfLifetime bounds how long a rendered banner page can be submitted.
	csrfLifetime = time.Hour
)

// MinKeySize is the shortest master key NewTokens accepts.
const MinKeySize = 32

// Tokens issues and verifies consent tokens and CSRF tokens from one master
// key. Separate keys are derived for each use so a CSRF token can never be
// replayed as a consent token or the other way round.
type Tokens struct {
	consentKey []byte
	csrfKey    []byte
}

// NewTokens derives the token keys from master, which must be random and at
// least MinKeySize bytes (the gateway keeps it in the account database so
// every node agrees on it).
func NewTokens(master []byte) (*Tokens, error) {
	if len(master) < MinKeySize {
		return nil, fmt.Errorf("consent key must be at least %d bytes, got %d", MinKeySize, len(master))
	}
	return &Tokens{
		consentKey: derive(master, "cacgate consent token v1"),
		csrfKey:    derive(master, "cacgate consent csrf v1"),
	}, nil
}

func derive(master []byte, label string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Claims is what a verified consent token says.
type Claims struct {
	Fingerprint string    // hex SHA-256 of the accepting certificate
	Issued      time.Time // when the banner was accepted
	Expires     time.Time // acceptance is void after this
}

// Issue returns a signed consent token for the card with the given
// fingerprint, valid for ttl from now.
func (t *Tokens) Issue(fingerprint string, now time.Time, ttl time.Duration) (string, error) {
	if fingerprint == "" || ttl <= 0 {
		return "", errors.New("consent token needs a fingerprint and a positive lifetime")
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	claims := jwt.RegisteredClaims{
		Issuer:    tokenIssuer,
		Subject:   fingerprint,
		Audience:  jwt.ClaimStrings{tokenAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID:        base64.RawURLEncoding.EncodeToString(id),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.consentKey)
}

// Verify checks a consent token's signature, algorithm, issuer, audience and
// expiry. Only HS256 is accepted, which rules out "alg":"none" and
// algorithm-confusion tokens.
func (t *Tokens) Verify(token string, now time.Time) (Claims, error) {
	var rc jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &rc,
		func(*jwt.Token) (any, error) { return t.consentKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(tokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return Claims{}, err
	}
	if rc.Subject == "" {
		return Claims{}, errors.New("consent token has no subject")
	}
	if rc.IssuedAt == nil {
		return Claims{}, errors.New("consent token has no issue time")
	}
	return Claims{Fingerprint: rc.Subject, Issued: rc.IssuedAt.Time, Expires: rc.ExpiresAt.Time}, nil
}

// CSRF returns a token to embed in the banner form. It is bound to the card
// (an attacker's page cannot obtain one for the victim's card) and to the
// time it was made, and needs no server-side state.
func (t *Tokens) CSRF(fingerprint string, now time.Time) string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(now.Unix()))
	mac := t.csrfMAC(fingerprint, ts[:])
	return base64.RawURLEncoding.EncodeToString(append(ts[:], mac...))
}

// CheckCSRF reports whether token was made by CSRF for this card within the
// last hour.
func (t *Tokens) CheckCSRF(token, fingerprint string, now time.Time) bool {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 8+sha256.Size {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(raw[:8])), 0)
	if issued.After(now.Add(time.Minute)) || now.Sub(issued) > csrfLifetime {
		return false
	}
	return hmac.Equal(raw[8:], t.csrfMAC(fingerprint, raw[:8]))
}

func (t *Tokens) csrfMAC(fingerprint string, ts []byte) []byte {
	m := hmac.New(sha256.New, t.csrfKey)
	m.Write(ts)
	m.Write([]byte(fingerprint))
	return m.Sum(nil)
}

// UserPrincipal is whom a password-signed-in user's acceptance is bound to
// (where a card's is bound to its fingerprint): a prefix no hex card
// fingerprint can have.
func UserPrincipal(username string) string { return "user:" + username }

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
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
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

// A consent token is a JWT (RFC 7519) in compact JWS form, HMAC-SHA256
// over the header and the registered claims iss, sub (the card's
// fingerprint), aud, iat, exp and jti. The package makes and checks it
// itself rather than through a general JWT library: every card entering
// the gateway's cache has its token checked, and with one fixed header
// there is no algorithm to negotiate ("none", or a public key taken for
// an HMAC secret, cannot arise), so the check is an HMAC and the decoding
// of claims that the HMAC has vouched for.

// tokenHeader is the header segment of every consent token: the JSON
// {"alg":"HS256","typ":"JWT"} in base64url, as golang-jwt wrote it for the
// tokens issued before (so those still verify).
var tokenHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

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
	payload, err := json.Marshal(tokenClaims{
		Issuer:    tokenIssuer,
		Subject:   fingerprint,
		Audience:  []string{tokenAudience},
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(ttl).Unix(),
		ID:        base64.RawURLEncoding.EncodeToString(id),
	})
	if err != nil {
		return "", err
	}
	signed := tokenHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(t.consentMAC(signed)), nil
}

// errMalformed: not a consent token made by this package.
var errMalformed = errors.New("consent token: malformed")

// Verify checks a consent token's signature, header, issuer, audience and
// times: it must have an issue time not in the future and an expiry not
// reached (and a not-before time, which the gateway never sets, passed).
func (t *Tokens) Verify(token string, now time.Time) (Claims, error) {
	rest, ok := strings.CutPrefix(token, tokenHeader+".")
	if !ok {
		return Claims{}, errMalformed
	}
	payloadB64, sigB64, ok := strings.Cut(rest, ".")
	if !ok {
		return Claims{}, errMalformed
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sigB64)
	if err != nil {
		return Claims{}, errMalformed
	}
	if !hmac.Equal(sig, t.consentMAC(token[:len(token)-len(sigB64)-1])) {
		return Claims{}, errors.New("consent token: bad signature")
	}
	// Only claims the key vouches for are decoded.
	payload, err := base64.RawURLEncoding.Strict().DecodeString(payloadB64)
	if err != nil {
		return Claims{}, errMalformed
	}
	var tc tokenClaims
	if err := json.Unmarshal(payload, &tc); err != nil {
		return Claims{}, errMalformed
	}
	issued, expires := time.Unix(tc.IssuedAt, 0), time.Unix(tc.ExpiresAt, 0)
	switch {
	case tc.Issuer != tokenIssuer || !slices.Contains(tc.Audience, tokenAudience):
		return Claims{}, errors.New("consent token: wrong issuer or audience")
	case tc.Subject == "":
		return Claims{}, errors.New("consent token has no subject")
	case tc.IssuedAt == 0 || tc.ExpiresAt == 0:
		return Claims{}, errors.New("consent token has no issue time or expiry")
	case now.Add(issueSkew).Before(issued) || (tc.NotBefore != 0 && now.Before(time.Unix(tc.NotBefore, 0))):
		return Claims{}, errors.New("consent token: not valid yet")
	case !now.Before(expires):
		return Claims{}, errors.New("consent token: expired")
	}
	return Claims{Fingerprint: tc.Subject, Issued: issued, Expires: expires}, nil
}

// issueSkew is how far in the future a token's issue time may be: another
// node of a cluster whose clock is ahead issued it (a node behind would
// otherwise send the person back to the banner they just accepted). CSRF
// tokens allow the same. The issue time only ages an acceptance, and only
// the key's holder makes a token, so a minute more youth is harmless.
const issueSkew = time.Minute

// tokenClaims are a consent token's claims as JSON, in golang-jwt's order
// and form (times in whole seconds, the audience a list): a token whose
// claims take another form was not made by the gateway and fails to
// decode.
type tokenClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  []string `json:"aud"`
	ExpiresAt int64    `json:"exp"`
	NotBefore int64    `json:"nbf,omitempty"`
	IssuedAt  int64    `json:"iat"`
	ID        string   `json:"jti,omitempty"`
}

func (t *Tokens) consentMAC(signed string) []byte {
	m := hmac.New(sha256.New, t.consentKey)
	m.Write([]byte(signed))
	return m.Sum(nil)
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

package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeySet is the gateway's published verification keys, for a backend that
// checks X-Cac-Assertion itself instead of trusting the network between it
// and the gateway. Fetch the set from https://<gateway>/.cacgate/jwks.json
// (it is public) and refresh it when Verify reports an unknown key ID.
type KeySet struct {
	keys map[string]*ecdsa.PublicKey
}

// ParseJWKS reads a JSON Web Key Set (RFC 7517) as the gateway serves it.
// Only P-256 ES256 signing keys are taken; a set with none is an error.
func ParseJWKS(data []byte) (*KeySet, error) {
	var set struct {
		Keys []jsonWebKey `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("assertion: key set: %w", err)
	}
	ks := &KeySet{keys: map[string]*ecdsa.PublicKey{}}
	for _, k := range set.Keys {
		if k.KeyType != "EC" || k.Curve != "P-256" || (k.Alg != "" && k.Alg != "ES256") || (k.Use != "" && k.Use != "sig") || k.KeyID == "" {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("assertion: key %q: bad coordinates", k.KeyID)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("assertion: key %q: %w", k.KeyID, err)
		}
		ks.keys[k.KeyID] = pub
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("assertion: the key set holds no ES256 P-256 key")
	}
	return ks, nil
}

// ErrUnknownKey is Verify's error for a token signed with a key the set
// does not hold: the gateway's key may have changed; fetch the set again.
var ErrUnknownKey = errors.New("assertion: signed with an unknown key")

// Verified is what a verified assertion says.
type Verified struct {
	Claims
	Audience string
	IssuedAt time.Time
	Expires  time.Time
	ID       string
}

// Verify checks an assertion for audience at now: ES256 only (no "none",
// no HMAC with the public key), a key of the set, issuer "cacgate", the
// audience, not before / expiry (with the 30 s the gateway allows for
// clock skew), and a subject. It returns the claims.
func (ks *KeySet) Verify(token, audience string, now time.Time) (Verified, error) {
	var c jwtClaims
	_, err := jwt.ParseWithClaims(token, &c,
		func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if k, ok := ks.keys[kid]; ok {
				return k, nil
			}
			return nil, ErrUnknownKey
		},
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return Verified{}, ErrUnknownKey
		}
		return Verified{}, fmt.Errorf("assertion: %w", err)
	}
	if c.Subject == "" {
		return Verified{}, errors.New("assertion: no subject")
	}
	v := Verified{Claims: c.Claims, Audience: audience, ID: c.ID}
	v.Username = c.Subject
	if c.IssuedAt != nil {
		v.IssuedAt = c.IssuedAt.Time
	}
	v.Expires = c.ExpiresAt.Time
	return v, nil
}

// Package assertion signs the identity assertion the gateway hands to the
// protected application (the X-Cac-Assertion header): a short-lived ES256
// JWT carrying the same facts as the plain identity headers, which a backend
// can verify against the gateway's JWKS instead of trusting the network.
//
// Signing costs tens of microseconds, so the gateway signs an assertion once
// per card and audience and reuses it until shortly before it expires.
//
// A Go backend verifies the header with ParseJWKS (the set the gateway
// publishes at /.cacgate/jwks.json) and KeySet.Verify; the package is public
// for that.
package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Issuer is the "iss" claim of every assertion.
const Issuer = "cacgate"

// Claims are the identity facts an assertion carries. JSON names are the
// claim names a backend reads.
type Claims struct {
	Username string `json:"-"` // becomes "sub"
	// EDIPI is only present for a DoD credential.
	EDIPI       string `json:"edipi,omitempty"`
	GivenName   string `json:"given_name,omitempty"`
	FamilyName  string `json:"family_name,omitempty"`
	Email       string `json:"email,omitempty"`
	Affiliation string `json:"affiliation,omitempty"`
	CertSHA256  string `json:"cert_sha256,omitempty"`
	// AuthMethod is "cac" or "password": how the person signed in.
	AuthMethod string `json:"auth_method"`
	// Credential is the kind of credential a card sign-in used: "cac",
	// "piv", "piv-i" or "eca"; absent for a password sign-in.
	Credential string `json:"credential,omitempty"`
}

type jwtClaims struct {
	Claims
	jwt.RegisteredClaims
}

// Signer signs assertions with one ES256 key.
type Signer struct {
	key  *ecdsa.PrivateKey
	kid  string
	jwks []byte
	// header is the JWS header segment of every assertion, made once.
	header string
}

// GenerateKey returns a new P-256 private key in PKCS#8 DER, the form the
// gateway stores in its database.
func GenerateKey() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKCS8PrivateKey(k)
}

// NewSigner parses a PKCS#8 P-256 key and precomputes its key ID and JWKS.
func NewSigner(pkcs8 []byte) (*Signer, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("parsing assertion signing key: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("assertion signing key must be an ECDSA P-256 key")
	}
	jwk, err := publicJWK(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(struct {
		Keys []jsonWebKey `json:"keys"`
	}{Keys: []jsonWebKey{jwk}})
	if err != nil {
		return nil, err
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{"ES256", jwk.KeyID, "JWT"})
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, kid: jwk.KeyID, jwks: jwks, header: base64.RawURLEncoding.EncodeToString(header)}, nil
}

// KeyID is the RFC 7638 thumbprint of the public key, sent as "kid".
func (s *Signer) KeyID() string { return s.kid }

// PublicKey is the verification key.
func (s *Signer) PublicKey() *ecdsa.PublicKey { return &s.key.PublicKey }

// JWKS is the JSON Web Key Set document to serve at /.cacgate/jwks.json.
// The returned slice is shared: do not modify it.
func (s *Signer) JWKS() []byte { return s.jwks }

// Sign returns an assertion for audience, valid from now for ttl: a JWT
// in compact JWS form (RFC 7515), written here in one buffer rather than
// through golang-jwt's generic path, which cost a signature's worth of
// encoding and allocation again on every card that enters the cache. The
// token is what golang-jwt made of the same claims: header
// {"alg":"ES256","kid":…,"typ":"JWT"}, the claims, and the signature as
// the fixed-size R || S of RFC 7518.
func (s *Signer) Sign(c Claims, audience string, now time.Time, ttl time.Duration) (string, error) {
	if c.Username == "" || audience == "" || ttl <= 0 {
		return "", errors.New("assertion needs a username, an audience and a positive lifetime")
	}
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	payload, err := json.Marshal(jwtClaims{
		Claims: c,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   c.Username,
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-30 * time.Second)), // tolerate backend clock skew
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        base64.RawURLEncoding.EncodeToString(id[:]),
		},
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	tok := make([]byte, 0, len(s.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(2*coordSize))
	tok = append(append(tok, s.header...), '.')
	tok = enc.AppendEncode(tok, payload)
	digest := sha256.Sum256(tok)
	der, err := ecdsa.SignASN1(rand.Reader, s.key, digest[:])
	if err != nil {
		return "", err
	}
	var rs [2 * coordSize]byte
	if !fixedSignature(der, &rs) {
		return "", errors.New("assertion: malformed ECDSA signature")
	}
	tok = enc.AppendEncode(append(tok, '.'), rs[:])
	return string(tok), nil
}

// coordSize is the size of a P-256 scalar: R and S each take this many
// bytes in a JWS signature.
const coordSize = 32

// fixedSignature turns an ASN.1 ECDSA signature into JWS form: R and S
// big-endian, each left-padded to coordSize bytes.
func fixedSignature(der []byte, rs *[2 * coordSize]byte) bool {
	var seq, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&r, asn1.INTEGER) || !seq.ReadASN1(&s, asn1.INTEGER) || !seq.Empty() {
		return false
	}
	for i, n := range [2][]byte{r, s} {
		for len(n) > 0 && n[0] == 0 {
			n = n[1:] // the sign byte DER puts before a high bit
		}
		if len(n) > coordSize {
			return false
		}
		copy(rs[(i+1)*coordSize-len(n):(i+1)*coordSize], n)
	}
	return true
}

type jsonWebKey struct {
	KeyType string `json:"kty"`
	Curve   string `json:"crv"`
	X       string `json:"x"`
	Y       string `json:"y"`
	KeyID   string `json:"kid"`
	Use     string `json:"use"`
	Alg     string `json:"alg"`
}

func publicJWK(pub *ecdsa.PublicKey) (jsonWebKey, error) {
	raw, err := pub.Bytes() // uncompressed point: 0x04 || X || Y
	if err != nil {
		return jsonWebKey{}, err
	}
	x := base64.RawURLEncoding.EncodeToString(raw[1:33])
	y := base64.RawURLEncoding.EncodeToString(raw[33:65])
	// RFC 7638: hash of the required members in lexicographic order, no spaces.
	thumb := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return jsonWebKey{
		KeyType: "EC", Curve: "P-256", X: x, Y: y,
		KeyID: base64.RawURLEncoding.EncodeToString(thumb[:]),
		Use:   "sig", Alg: "ES256",
	}, nil
}

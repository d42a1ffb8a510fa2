package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newSigner(t testing.TB) *Signer {
	t.Helper()
	der, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(der)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignVerifiesAgainstJWKS(t *testing.T) {
	s := newSigner(t)
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid, Use, Alg string }
	}
	if err := json.Unmarshal(s.JWKS(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", s.JWKS(), err)
	}
	k := set.Keys[0]
	if k.Kty != "EC" || k.Crv != "P-256" || k.Use != "sig" || k.Alg != "ES256" || k.Kid != s.KeyID() {
		t.Fatalf("JWK %+v", k)
	}
	// RFC 7638 thumbprint, recomputed independently.
	thumb := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`))
	if k.Kid != base64.RawURLEncoding.EncodeToString(thumb[:]) {
		t.Error("kid is not the RFC 7638 thumbprint")
	}
	x, _ := base64.RawURLEncoding.DecodeString(k.X)
	y, _ := base64.RawURLEncoding.DecodeString(k.Y)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatalf("JWK is not a P-256 point: %v", err)
	}

	now := time.Now()
	claims := Claims{Username: "john.q.doe", EDIPI: "1234567890", GivenName: "John", FamilyName: "Doe", Email: "j@mail.mil", Affiliation: "USA", CertSHA256: "ab"}
	tok, err := s.Sign(claims, "app.example.mil", now, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Claims
		jwt.RegisteredClaims
	}
	parsed, err := jwt.ParseWithClaims(tok, &got, func(tk *jwt.Token) (any, error) {
		if tk.Header["kid"] != k.Kid {
			t.Errorf("kid header %v", tk.Header["kid"])
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience("app.example.mil"), jwt.WithIssuer(Issuer), jwt.WithExpirationRequired())
	if err != nil || !parsed.Valid {
		t.Fatal(err)
	}
	if got.Subject != "john.q.doe" || got.EDIPI != "1234567890" || got.Email != "j@mail.mil" || got.CertSHA256 != "ab" {
		t.Errorf("claims %+v", got)
	}
	if got.ExpiresAt.Sub(now) > 5*time.Minute+time.Second {
		t.Errorf("expires %v", got.ExpiresAt)
	}
	// Another audience must not accept it.
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithAudience("other.example.mil")); err == nil {
		t.Error("assertion accepted by another audience")
	}
}

func TestNewSignerRejectsOtherKeys(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	for name, der := range map[string][]byte{"rsa": rsaDER, "p384": p384DER, "garbage": []byte("nope")} {
		if _, err := NewSigner(der); err == nil {
			t.Errorf("%s key accepted", name)
		}
	}
}

func TestSignNeedsSubjectAndAudience(t *testing.T) {
	s := newSigner(t)
	if _, err := s.Sign(Claims{}, "aud", time.Now(), time.Minute); err == nil {
		t.Error("signed without a username")
	}
	if _, err := s.Sign(Claims{Username: "u"}, "", time.Now(), time.Minute); err == nil {
		t.Error("signed without an audience")
	}
}

func BenchmarkSign(b *testing.B) {
	s := newSigner(b)
	c := Claims{Username: "john.q.doe", EDIPI: "1234567890", CertSHA256: "ab"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(c, "aud", time.Now(), time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

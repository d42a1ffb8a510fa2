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
	"regexp"
	"strings"
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

// TestSignMatchesGolangJWT: the assertion is what golang-jwt made of the
// same claims (which backends verified before the signer wrote tokens
// itself): the same header and the same claims, and it verifies as ES256.
func TestSignMatchesGolangJWT(t *testing.T) {
	s := newSigner(t)
	now := time.Now()
	c := Claims{Username: "o'brien.j", EDIPI: "1234567890", GivenName: "José", FamilyName: "O'Brien <Jr>", Email: "j&b@mail.mil", Affiliation: "USN", CertSHA256: "ab", AuthMethod: "cac"}
	tok, err := s.Sign(c, "app.example.mil", now, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ref := jwt.NewWithClaims(jwt.SigningMethodES256, jwtClaims{Claims: c, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Subject: c.Username, Audience: jwt.ClaimStrings{"app.example.mil"},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-30 * time.Second)),
		ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: "JTI",
	}})
	ref.Header["kid"] = s.KeyID()
	want, err := ref.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	segs := strings.Split(tok, ".")
	wantSegs := strings.Split(want, ".")
	if len(segs) != 3 || segs[0] != wantSegs[0] {
		t.Fatalf("header %q, golang-jwt's %q", segs[0], wantSegs[0])
	}
	payload, _ := base64.RawURLEncoding.DecodeString(segs[1])
	wantPayload, _ := base64.RawURLEncoding.DecodeString(wantSegs[1])
	// The same JSON but for the random jti.
	jti := regexp.MustCompile(`"jti":"[^"]*"`)
	if got, exp := jti.ReplaceAllString(string(payload), `"jti":"JTI"`), string(wantPayload); got != exp {
		t.Fatalf("claims\n%s\ngolang-jwt's\n%s", got, exp)
	}
	keys, err := ParseJWKS(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := keys.Verify(tok, "app.example.mil", now); err != nil || v.Username != c.Username || v.FamilyName != c.FamilyName {
		t.Fatalf("verify: %+v, %v", v, err)
	}
}

// TestFixedSignature: R and S are right-aligned in 32 bytes whatever
// length DER gave them (a leading sign byte, or a short value), and a
// malformed signature is refused.
func TestFixedSignature(t *testing.T) {
	short := append([]byte{0x01}, make([]byte, 29)...) // 30 bytes
	high := append([]byte{0x00, 0x80}, make([]byte, 31)...)
	der := func(r, s []byte) []byte {
		body := append(append([]byte{0x02, byte(len(r))}, r...), append([]byte{0x02, byte(len(s))}, s...)...)
		return append([]byte{0x30, byte(len(body))}, body...)
	}
	var rs [2 * coordSize]byte
	if !fixedSignature(der(short, high), &rs) {
		t.Fatal("refused a valid signature")
	}
	if rs[1] != 0 || rs[2] != 0x01 || rs[coordSize] != 0x80 {
		t.Fatalf("R || S = %x", rs)
	}
	tooLong := append([]byte{0x01}, make([]byte, 32)...)
	for name, bad := range map[string][]byte{
		"long R": der(tooLong, short), "trailing": append(der(short, short), 0), "empty": nil, "one integer": der(short, nil)[:2+2+len(short)],
	} {
		if fixedSignature(bad, &rs) {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestSignaturesVerify: many signatures, so that short R and S values
// (one in 128 signatures has one) are padded right.
func TestSignaturesVerify(t *testing.T) {
	s := newSigner(t)
	keys, err := ParseJWKS(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 300 {
		tok, err := s.Sign(Claims{Username: "u"}, "aud", now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Verify(tok, "aud", now); err != nil {
			t.Fatalf("signature %d: %v", i, err)
		}
	}
}

package assertion

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var benchClaims = Claims{
	Username:    "john.q.doe",
	EDIPI:       "1234567890",
	GivenName:   "John",
	FamilyName:  "Doe",
	Email:       "john.q.doe@mail.mil",
	Affiliation: "USA",
	CertSHA256:  "3f1c9a0be2d47c6a8e915b03d4f2a7c6e1b0d9f8a7c6b5e4d3c2b1a0f9e8d7c6",
	AuthMethod:  "cac",
}

// BenchmarkSignRealistic signs an assertion with every claim a card
// holder's carries. The gateway signs once per card and audience per
// three quarters of assertion_ttl, never per request (the request path
// reuses the cached token: see caddymodule's BenchmarkPieces/assertion).
func BenchmarkSignRealistic(b *testing.B) {
	s := newSigner(b)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(benchClaims, "app.example.mil", now, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignParallel is signing on every core at once, as after a
// restart when every card's assertion is signed anew.
func BenchmarkSignParallel(b *testing.B) {
	s := newSigner(b)
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Sign(benchClaims, "app.example.mil", now, 5*time.Minute); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBackendVerify is what a backend pays to check X-Cac-Assertion
// with the JWKS key (golang-jwt, ES256), for backends that verify it on
// every request instead of caching by token.
func BenchmarkBackendVerify(b *testing.B) {
	s := newSigner(b)
	now := time.Now()
	tok, err := s.Sign(benchClaims, "app.example.mil", now, 5*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	pub := s.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		var c jwtClaims
		if _, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(Issuer), jwt.WithAudience("app.example.mil")); err != nil {
			b.Fatal(err)
		}
	}
}

package assertion

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifyRoundTrip: what the gateway signs, a backend verifies with the
// published key set, and nothing else passes.
func TestVerifyRoundTrip(t *testing.T) {
	s := newSigner(t)
	ks, err := ParseJWKS(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := Claims{Username: "john.q.doe", EDIPI: "1234567890", Email: "j@mail.mil", AuthMethod: "cac"}
	tok, err := s.Sign(claims, "app.example.mil", now, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ks.Verify(tok, "app.example.mil", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if v.Username != "john.q.doe" || v.EDIPI != "1234567890" || v.AuthMethod != "cac" || v.Audience != "app.example.mil" || v.ID == "" {
		t.Errorf("verified %+v", v)
	}
	if _, err := ks.Verify(tok, "other.example.mil", now); err == nil {
		t.Error("verified for another audience")
	}
	if _, err := ks.Verify(tok, "app.example.mil", now.Add(10*time.Minute)); err == nil {
		t.Error("verified after expiry")
	}
	if _, err := ks.Verify(tok[:len(tok)-4]+"AAAA", "app.example.mil", now); err == nil {
		t.Error("verified a tampered signature")
	}
	other := newSigner(t)
	forged, _ := other.Sign(claims, "app.example.mil", now, time.Minute)
	if _, err := ks.Verify(forged, "app.example.mil", now); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("another key: %v, want ErrUnknownKey", err)
	}
	// alg none and HMAC-with-the-public-key are refused.
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwtClaims{Claims: claims, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Subject: "admin", Audience: jwt.ClaimStrings{"app.example.mil"}, ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}})
	none.Header["kid"] = s.KeyID()
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if _, err := ks.Verify(noneTok, "app.example.mil", now); err == nil {
		t.Error("alg none verified")
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, none.Claims)
	hs.Header["kid"] = s.KeyID()
	hsTok, _ := hs.SignedString(s.JWKS())
	if _, err := ks.Verify(hsTok, "app.example.mil", now); err == nil {
		t.Error("HS256 verified")
	}
}

func TestParseJWKSRefusesJunk(t *testing.T) {
	for _, in := range []string{`nope`, `{"keys":[]}`, `{"keys":[{"kty":"RSA","kid":"a"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"AA","y":"AA"}]}`} {
		if _, err := ParseJWKS([]byte(in)); err == nil {
			t.Errorf("ParseJWKS(%s) accepted", in)
		}
	}
	var set map[string]any
	if err := json.Unmarshal(newSigner(t).JWKS(), &set); err != nil || !strings.Contains(string(newSigner(t).JWKS()), "ES256") {
		t.Fatal("the gateway's set is not what ParseJWKS reads")
	}
}

// ExampleKeySet_Verify is a backend checking the header the gateway sends.
func ExampleKeySet_Verify() {
	// jwks fetched once from https://gateway.example.mil/.cacgate/jwks.json
	key, _ := GenerateKey()
	gateway, _ := NewSigner(key)
	jwks := gateway.JWKS()

	keys, err := ParseJWKS(jwks)
	if err != nil {
		panic(err)
	}
	header, _ := gateway.Sign(Claims{Username: "john.q.doe", EDIPI: "1234567890", AuthMethod: "cac"}, "app.example.mil", time.Now(), 5*time.Minute)
	who, err := keys.Verify(header, "app.example.mil", time.Now())
	if err != nil {
		panic(err) // 401: not from the gateway
	}
	fmt.Println(who.Username)
	// Output: john.q.doe
}

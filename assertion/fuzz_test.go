package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzSignAgainstGolangJWT: whatever the claims hold (names and emails
// come from certificates and the database, the audience from the Host
// header: quotes, backslashes, control characters, U+2028, invalid UTF-8),
// the assertion Sign writes is, but for its random jti, the header and
// claims golang-jwt writes; it verifies in golang-jwt and in the
// package's own KeySet.Verify with the claims as JSON carries them; its
// claims are valid UTF-8 JSON with no raw control character or line
// separator; and its signature is R || S, each 32 bytes, that verify as
// numbers below the curve's order.
func FuzzSignAgainstGolangJWT(f *testing.F) {
	f.Add("john.q.doe", "1234567890", "John", "Doe", "j@mail.mil", "USA", "ab", "cac", "app.example.mil")
	f.Add(`o"brien\`, "\x00\x1f", "Jos\u00e9\u2028", "O'Brien <Jr>\u2029", "j&b@mail.mil", "\xff\xfe", "\x80", "password", "app.example.mil")
	f.Add("u", "", "</script>", "\t\r\n", "a\"}, \"sub\": \"admin", "\U0010FFFF", "\U0001F600", "", `\u0000`)
	f.Add("\xed\xa0\x80", "\xc0\xaf", "\u00e9\u0301", strings.Repeat("x", 300), "", "", "", "", "aud\x7f")
	s := newSigner(f)
	keys, err := ParseJWKS(s.JWKS())
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, user, edipi, given, family, email, affiliation, cert, method, audience string) {
		c := Claims{Username: user, EDIPI: edipi, GivenName: given, FamilyName: family, Email: email,
			Affiliation: affiliation, CertSHA256: cert, AuthMethod: method}
		tok, err := s.Sign(c, audience, now, 5*time.Minute)
		if user == "" || audience == "" {
			if err == nil {
				t.Fatal("signed without a username or an audience")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		segs := strings.Split(tok, ".")
		if len(segs) != 3 {
			t.Fatalf("%d segments", len(segs))
		}
		payload, err := base64.RawURLEncoding.Strict().DecodeString(segs[1])
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(payload) || strings.ContainsAny(string(payload), "\u2028\u2029") || strings.IndexFunc(string(payload), func(r rune) bool { return r < 0x20 }) >= 0 {
			t.Fatalf("claims not escaped: %q", payload)
		}
		var reg jwt.RegisteredClaims
		if err := json.Unmarshal(payload, &reg); err != nil {
			t.Fatal(err)
		}

		// What golang-jwt wrote for the same claims and jti.
		ref := jwt.NewWithClaims(jwt.SigningMethodES256, jwtClaims{Claims: c, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: user, Audience: jwt.ClaimStrings{audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-30 * time.Second)),
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: reg.ID,
		}})
		ref.Header["kid"] = s.KeyID()
		want, err := ref.SigningString()
		if err != nil {
			t.Fatal(err)
		}
		if got := segs[0] + "." + segs[1]; got != want {
			t.Fatalf("signed\n%s\ngolang-jwt's\n%s", got, want)
		}

		// R || S: 64 bytes, each half below the order, verifying.
		sig, err := base64.RawURLEncoding.Strict().DecodeString(segs[2])
		if err != nil || len(sig) != 2*coordSize {
			t.Fatalf("signature %q: %v", segs[2], err)
		}
		r, sv := new(big.Int).SetBytes(sig[:coordSize]), new(big.Int).SetBytes(sig[coordSize:])
		n := elliptic.P256().Params().N
		digest := sha256.Sum256([]byte(want))
		if r.Sign() <= 0 || sv.Sign() <= 0 || r.Cmp(n) >= 0 || sv.Cmp(n) >= 0 || !ecdsa.Verify(s.PublicKey(), digest[:], r, sv) {
			t.Fatalf("signature R %x S %x does not verify", r, sv)
		}

		// Both verifiers take it, for the audience as JSON carries it, and
		// read the claims as JSON carries them.
		sent := jsonRoundTrip(t, c)
		sent.Username = jsonRoundTrip(t, user)
		aud := jsonRoundTrip(t, audience)
		var got jwtClaims
		if _, err := jwt.ParseWithClaims(tok, &got, func(*jwt.Token) (any, error) { return s.PublicKey(), nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(Issuer), jwt.WithAudience(aud),
			jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now })); err != nil {
			t.Fatalf("golang-jwt: %v", err)
		}
		got.Claims.Username = got.Subject
		if got.Claims != sent {
			t.Fatalf("golang-jwt read %+v, want %+v", got.Claims, sent)
		}
		v, err := keys.Verify(tok, aud, now)
		if err != nil {
			t.Fatalf("KeySet.Verify: %v", err)
		}
		if v.Claims != sent || v.Audience != aud {
			t.Fatalf("KeySet.Verify read %+v, want %+v", v, sent)
		}
	})
}

// jsonRoundTrip is v as JSON carries it (invalid UTF-8 becomes U+FFFD).
func jsonRoundTrip[T any](t *testing.T, v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

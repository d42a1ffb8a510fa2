package consent

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newTokens(t testing.TB) *Tokens {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	tok, err := NewTokens(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const fpA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const fpB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

func TestNewTokensNeedsAStrongKey(t *testing.T) {
	if _, err := NewTokens(make([]byte, 16)); err == nil {
		t.Fatal("accepted a 16-byte key")
	}
}

func TestTokenLifecycle(t *testing.T) {
	tok := newTokens(t)
	now := time.Now()
	s, err := tok.Issue(fpA, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tok.Verify(s, now.Add(59*time.Minute))
	if err != nil || c.Fingerprint != fpA || !c.Expires.Equal(now.Add(time.Hour).Truncate(time.Second)) {
		t.Fatalf("verify: %+v %v", c, err)
	}
	if _, err := tok.Verify(s, now.Add(61*time.Minute)); err == nil {
		t.Error("expired token verified")
	}
	if _, err := newTokens(t).Verify(s, now); err == nil {
		t.Error("token verified under another key")
	}
	if _, err := tok.Issue("", now, time.Hour); err == nil {
		t.Error("issued a token without a fingerprint")
	}
}

func TestVerifyRejectsForgeries(t *testing.T) {
	tok := newTokens(t)
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: fpA, Audience: jwt.ClaimStrings{tokenAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString(tok.consentKey)
	noExp := claims
	noExp.ExpiresAt = nil
	unbounded, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, noExp).SignedString(tok.consentKey)
	otherAud := claims
	otherAud.Audience = jwt.ClaimStrings{"something-else"}
	wrongAud, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, otherAud).SignedString(tok.consentKey)
	// The CSRF key must not be able to mint consent tokens.
	csrfSigned, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(tok.csrfKey)
	for name, s := range map[string]string{
		"alg none": none, "HS512": hs512, "no expiry": unbounded, "wrong audience": wrongAud,
		"csrf key": csrfSigned, "garbage": "a.b.c", "empty": "",
	} {
		if _, err := tok.Verify(s, now); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// TestTokensCompatibleWithGolangJWT: consent tokens issued before the
// package made them itself (with golang-jwt) still verify, and the ones it
// makes now read the same in golang-jwt, so a cluster upgraded node by
// node keeps everyone's acceptance.
func TestTokensCompatibleWithGolangJWT(t *testing.T) {
	tok := newTokens(t)
	now := time.Now()
	old, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: fpA, Audience: jwt.ClaimStrings{tokenAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: "abc",
	}).SignedString(tok.consentKey)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := tok.Verify(old, now); err != nil || c.Fingerprint != fpA || !c.Expires.Equal(now.Add(time.Hour).Truncate(time.Second)) {
		t.Fatalf("golang-jwt token: %+v, %v", c, err)
	}

	made, err := tok.Issue(fpA, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var rc jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(made, &rc, func(*jwt.Token) (any, error) { return tok.consentKey, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(tokenIssuer), jwt.WithAudience(tokenAudience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil || rc.Subject != fpA || rc.ID == "" || !rc.IssuedAt.Equal(now.Truncate(time.Second)) {
		t.Fatalf("issued token in golang-jwt: %+v, %v", rc, err)
	}
	if !strings.HasPrefix(made, tokenHeader+".") || !strings.HasPrefix(old, tokenHeader+".") {
		t.Fatalf("headers differ: %q, %q", made, old)
	}
}

// TestVerifyChecksTimesAndHeader: a token signed with the right key is
// still refused when it is not valid yet, or its header is not the one
// the package writes (even one that means the same).
func TestVerifyChecksTimesAndHeader(t *testing.T) {
	tok := newTokens(t)
	now := time.Now()
	sign := func(header string, rc jwt.RegisteredClaims) string {
		payload, err := json.Marshal(rc)
		if err != nil {
			t.Fatal(err)
		}
		signed := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
		return signed + "." + base64.RawURLEncoding.EncodeToString(tok.consentMAC(signed))
	}
	good := jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: fpA, Audience: jwt.ClaimStrings{tokenAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}
	if _, err := tok.Verify(sign(`{"alg":"HS256","typ":"JWT"}`, good), now); err != nil {
		t.Fatalf("the package's own header: %v", err)
	}
	// Another node's clock a little ahead: allowed up to issueSkew.
	ahead := good
	ahead.IssuedAt = jwt.NewNumericDate(now.Add(issueSkew / 2))
	if _, err := tok.Verify(sign(`{"alg":"HS256","typ":"JWT"}`, ahead), now); err != nil {
		t.Fatalf("issued half the allowed skew ahead: %v", err)
	}
	future := good
	future.IssuedAt = jwt.NewNumericDate(now.Add(issueSkew + 2*time.Second))
	notBefore := good
	notBefore.NotBefore = jwt.NewNumericDate(now.Add(time.Minute))
	noIssued := good
	noIssued.IssuedAt = nil
	noSubject := good
	noSubject.Subject = ""
	otherIssuer := good
	otherIssuer.Issuer = "someone"
	valid := sign(`{"alg":"HS256","typ":"JWT"}`, good)
	for name, s := range map[string]string{
		"issued beyond the skew": sign(`{"alg":"HS256","typ":"JWT"}`, future),
		"not valid before":       sign(`{"alg":"HS256","typ":"JWT"}`, notBefore),
		"no issue time":          sign(`{"alg":"HS256","typ":"JWT"}`, noIssued),
		"no subject":             sign(`{"alg":"HS256","typ":"JWT"}`, noSubject),
		"other issuer":           sign(`{"alg":"HS256","typ":"JWT"}`, otherIssuer),
		"header without typ":     sign(`{"alg":"HS256"}`, good),
		"header keys reversed":   sign(`{"typ":"JWT","alg":"HS256"}`, good),
		"padded signature":       valid + "=",
		"four segments":          valid + ".x",
		"signature cut":          valid[:len(valid)-2],
	} {
		if _, err := tok.Verify(s, now); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestCSRF(t *testing.T) {
	tok := newTokens(t)
	now := time.Now()
	c := tok.CSRF(fpA, now)
	if !tok.CheckCSRF(c, fpA, now.Add(30*time.Minute)) {
		t.Fatal("fresh token refused")
	}
	if tok.CheckCSRF(c, fpB, now) {
		t.Error("token accepted for another card")
	}
	if tok.CheckCSRF(c, fpA, now.Add(61*time.Minute)) {
		t.Error("token accepted after an hour")
	}
	if tok.CheckCSRF(tok.CSRF(fpA, now.Add(5*time.Minute)), fpA, now) {
		t.Error("token from the future accepted")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(c)
	raw[len(raw)-1] ^= 1
	for _, bad := range []string{"", "!!", base64.RawURLEncoding.EncodeToString(raw), c + "A"} {
		if tok.CheckCSRF(bad, fpA, now) {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestCacheAcceptsOnlyVerifiedTokensForTheRightCard(t *testing.T) {
	tok := newTokens(t)
	cache := NewCache(tok, 10, time.Minute)
	now := time.Now()
	s, _ := tok.Issue(fpA, now, time.Hour)
	for i := 0; i < 2; i++ { // miss, then hit
		if !cache.Accepted(s, fpA, now, 12*time.Hour) {
			t.Fatalf("round %d: valid token refused", i)
		}
		if cache.Accepted(s, fpB, now, 12*time.Hour) {
			t.Fatalf("round %d: token accepted for another card", i)
		}
	}
	if cache.Accepted(s, fpA, now.Add(2*time.Hour), 12*time.Hour) {
		t.Error("cached token accepted after it expired")
	}
	if cache.Accepted(s[:len(s)-2]+"xx", fpA, now, 12*time.Hour) || cache.Accepted("", fpA, now, 12*time.Hour) {
		t.Error("tampered or empty token accepted")
	}
}

func TestCookieValue(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		want    string
	}{
		{nil, ""},
		{[]string{"a=1; " + CookieName + "=tok; b=2"}, "tok"},
		{[]string{"a=1", CookieName + `="quoted"`}, "quoted"},
		{[]string{"x" + CookieName + "=no; " + CookieName + "x=no"}, ""},
		{[]string{CookieName + "=first;" + CookieName + "=second"}, "first"},
		{[]string{";;;=;" + CookieName}, ""},
	} {
		if got := CookieValue(tc.headers); got != tc.want {
			t.Errorf("CookieValue(%q) = %q, want %q", tc.headers, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { CookieValue([]string{"a=1; " + CookieName + "=tok"}) }); n != 0 {
		t.Errorf("CookieValue allocates %v times", n)
	}
}

func TestBanner(t *testing.T) {
	b := DefaultBanner()
	if len(b.Blocks) != 3 || len(b.Blocks[2].Items) != 5 {
		t.Fatalf("default banner: %d blocks %+v", len(b.Blocks), b.Blocks)
	}
	if !strings.HasPrefix(b.Blocks[0].Text, "You are accessing a U.S. Government (USG) Information System (IS)") ||
		!strings.HasSuffix(b.Blocks[2].Items[4], "See User Agreement for details.") {
		t.Error("default banner text is not the mandated text")
	}

	dir := t.TempDir()
	custom := filepath.Join(dir, "banner.txt")
	os.WriteFile(custom, []byte("Line one\r\ncontinues.\r\n\r\n* first <b>item</b>\r\n  wraps\r\n- second\r\n"), 0o644)
	b, err := LoadBanner(custom)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Blocks) != 2 || b.Blocks[0].Text != "Line one continues." || b.Blocks[1].Items[0] != "first <b>item</b> wraps" {
		t.Fatalf("custom banner: %+v", b.Blocks)
	}
	for name, content := range map[string][]byte{
		"empty.txt":  []byte(" \n\n"),
		"binary.txt": {0xff, 0xfe, 'x'},
		"huge.txt":   bytes.Repeat([]byte("a"), maxBannerSize+1),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, content, 0o644)
		if _, err := LoadBanner(p); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := LoadBanner(filepath.Join(dir, "missing.txt")); err == nil {
		t.Error("missing file accepted")
	}
}

// TestAcceptedWithinMaxAge: an acceptance counts for a site only as long as
// that site's own lifetime, from when it was made.
func TestAcceptedWithinMaxAge(t *testing.T) {
	tokens, err := NewTokens([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	cache := NewCache(tokens, 10, time.Minute)
	now := time.Now()
	tok, err := tokens.Issue("ab", now, 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !cache.Accepted(tok, "ab", now.Add(30*time.Second), time.Minute) {
		t.Error("refused within max age")
	}
	if cache.Accepted(tok, "ab", now.Add(90*time.Second), time.Minute) {
		t.Error("accepted past max age (served from the cache)")
	}
	if !cache.Accepted(tok, "ab", now.Add(90*time.Second), 12*time.Hour) {
		t.Error("refused by a site with a longer lifetime")
	}
}

// TestAcceptedViaMemo: a card's memo answers as the cache does — only a
// verified token, made by that card, unexpired, within the site's max
// age — and a changed token or one remembered past the cache's ttl is
// checked again.
func TestAcceptedViaMemo(t *testing.T) {
	tok := newTokens(t)
	cache := NewCache(tok, 10, time.Minute)
	now := time.Now()
	a, _ := tok.Issue(fpA, now, time.Hour)
	b, _ := tok.Issue(fpB, now, time.Hour)
	var memo Memo
	for i := range 2 { // verified, then remembered
		if !cache.AcceptedVia(&memo, a, fpA, now, 12*time.Hour) {
			t.Fatalf("round %d: valid token refused", i)
		}
	}
	remembered := memo.last.Load()
	if !cache.AcceptedVia(&memo, a, fpA, now.Add(time.Second), 12*time.Hour) || memo.last.Load() != remembered {
		t.Fatal("the same token was not answered from the memo")
	}
	if n := cache.lru.Len(); n != 0 {
		t.Errorf("a token held by a memo is also in the cache (%d entries)", n)
	}
	if cache.AcceptedVia(&memo, a, fpA, now.Add(30*time.Second), 10*time.Second) {
		t.Error("accepted past the site's max age")
	}
	if cache.AcceptedVia(&memo, a, fpA, now.Add(2*time.Hour), 12*time.Hour) {
		t.Error("accepted after the token expired")
	}
	// Another card's token, though valid, is not this card's consent.
	var memoA Memo
	if cache.AcceptedVia(&memoA, b, fpA, now, 12*time.Hour) {
		t.Error("another card's token accepted")
	}
	if cache.AcceptedVia(&memoA, a[:len(a)-2]+"xx", fpA, now, 12*time.Hour) || cache.AcceptedVia(&memoA, "", fpA, now, 12*time.Hour) {
		t.Error("tampered or empty token accepted")
	}
	// Remembered past the cache's ttl: checked again (and a token that no
	// longer verifies is refused).
	var memoTTL Memo
	if !cache.AcceptedVia(&memoTTL, a, fpA, now, 12*time.Hour) {
		t.Fatal("valid token refused")
	}
	rotated := newTokens(t)
	cache.tokens = rotated // (only to see whether the memo is checked again)
	if !cache.AcceptedVia(&memoTTL, a, fpA, now.Add(30*time.Second), 12*time.Hour) {
		t.Error("a memo within the cache's ttl was checked again")
	}
	if cache.AcceptedVia(&memoTTL, a, fpA, now.Add(61*time.Second), 12*time.Hour) {
		t.Error("a memo older than the cache's ttl was trusted without checking again")
	}
}

// TestMemoIsForOneCache: a memo's verdict holds only for the cache (the
// key) that verified it: a memo kept across a consent key's change, or
// handed to another config's cache, is checked again, whatever its age.
func TestMemoIsForOneCache(t *testing.T) {
	tok := newTokens(t)
	cache := NewCache(tok, 10, 10*time.Minute)
	now := time.Now()
	a, _ := tok.Issue(fpA, now, time.Hour)
	var memo Memo
	if !cache.AcceptedVia(&memo, a, fpA, now, 12*time.Hour) {
		t.Fatal("valid token refused")
	}
	rotated := NewCache(newTokens(t), 10, 10*time.Minute)
	if rotated.AcceptedVia(&memo, a, fpA, now.Add(time.Second), 12*time.Hour) {
		t.Fatal("a token verified under the old key was accepted by a cache with a new key, from the memo")
	}
	// And the memo, now the other cache's, is checked again by the first.
	if !cache.AcceptedVia(&memo, a, fpA, now.Add(2*time.Second), 12*time.Hour) {
		t.Fatal("valid token refused by its own cache")
	}
}

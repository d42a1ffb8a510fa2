package consent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
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

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/":                             "/",
		"/app/page?x=1&y=2":             "/app/page?x=1&y=2",
		"/a%20b":                        "/a%20b",
		"":                              "/",
		"//evil.example":                "/",
		"///evil.example":               "/",
		"/\\evil.example":               "/",
		"/ok\\..\\evil":                 "/",
		"https://evil.example/":         "/",
		"javascript:alert(1)":           "/",
		"evil.example/x":                "/",
		"/ok\r\nSet-Cookie: x":          "/",
		"/ok\x00":                       "/",
		"/%2F%2Fevil.example":           "/",
		"/" + strings.Repeat("a", 3000): "/",
	} {
		if got := SafeNext(in); got != want {
			t.Errorf("SafeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "https://x", "/a?b=c#d", "/%2f%2fx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SafeNext(s)
		if got == "/" {
			return
		}
		if got != s || got[0] != '/' || (len(got) > 1 && (got[1] == '/' || got[1] == '\\')) || strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("SafeNext(%q) = %q", s, got)
		}
	})
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

func TestSessionTokens(t *testing.T) {
	tok := newTokens(t)
	now := time.Now()
	s, err := tok.IssueSession("john.q.doe", now, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tok.VerifySession(s, now); err != nil || got.Username != "john.q.doe" || got.ID == "" || !got.IdleUntil.IsZero() {
		t.Fatalf("verify: %+v %v", got, err)
	}
	if _, err := tok.VerifySession(s, now.Add(2*time.Hour)); err == nil {
		t.Error("expired session verified")
	}
	// A consent token is not a session token, nor the other way round.
	c, _ := tok.Issue(fpA, now, time.Hour)
	if _, err := tok.VerifySession(c, now); err == nil {
		t.Error("a consent token verified as a session")
	}
	if _, err := tok.Verify(s, now); err == nil {
		t.Error("a session token verified as consent")
	}
	cache := NewSessionCache(tok, 10, time.Minute)
	for i := 0; i < 2; i++ {
		if u, ok := cache.User(t.Context(), s, now); !ok || u != "john.q.doe" {
			t.Fatalf("cache round %d: %q %v", i, u, ok)
		}
	}
	if _, ok := cache.User(t.Context(), s, now.Add(2*time.Hour)); ok {
		t.Error("cached session accepted after expiry")
	}
	if _, ok := cache.User(t.Context(), s[:len(s)-2]+"xx", now); ok {
		t.Error("tampered session accepted")
	}
	if got := CookieByName([]string{"a=1; " + SessionCookieName + "=tok"}, SessionCookieName); got != "tok" {
		t.Errorf("CookieByName = %q", got)
	}
	if _, err := tok.IssueSession("john.q.doe", now, time.Hour, -time.Minute); err == nil {
		t.Error("negative idle limit accepted")
	}
}

func TestSessionIdleLimit(t *testing.T) {
	tok := newTokens(t)
	now := time.Now().Truncate(time.Second)
	const idle = 15 * time.Minute
	s, err := tok.IssueSession("john.q.doe", now, 8*time.Hour, idle)
	if err != nil {
		t.Fatal(err)
	}
	first, err := tok.VerifySession(s, now)
	if err != nil || !first.IdleUntil.Equal(now.Add(idle)) || !first.Expires.Equal(now.Add(8*time.Hour)) {
		t.Fatalf("verify: %+v %v", first, err)
	}
	if _, err := tok.VerifySession(s, now.Add(idle)); err == nil {
		t.Error("session verified after its idle limit")
	}
	cache := NewSessionCache(tok, 10, time.Hour)
	if _, ok, _ := cache.Session(t.Context(), s, now.Add(time.Minute)); !ok {
		t.Fatal("live session refused")
	}
	if _, ok, _ := cache.Session(t.Context(), s, now.Add(idle+time.Second)); ok {
		t.Error("cached session accepted after its idle limit")
	}

	// Activity renews it: same session and absolute end, a new deadline.
	later := now.Add(10 * time.Minute)
	r, err := tok.RenewSession(first, later, idle)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := tok.VerifySession(r, now.Add(20*time.Minute))
	if err != nil || renewed.ID != first.ID || !renewed.Expires.Equal(first.Expires) || !renewed.IdleUntil.Equal(later.Add(idle)) {
		t.Fatalf("renewed: %+v %v (first %+v)", renewed, err, first)
	}
	// Never past the absolute end.
	nearEnd := now.Add(8*time.Hour - 5*time.Minute)
	active := renewed
	active.IdleUntil = nearEnd.Add(time.Minute) // as if renewed all day long
	last, err := tok.RenewSession(active, nearEnd, idle)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tok.VerifySession(last, nearEnd); err != nil || !got.IdleUntil.Equal(first.Expires) {
		t.Fatalf("renewed near the end: %+v %v", got, err)
	}
	// A session that has already ended cannot be renewed back to life.
	if _, err := tok.RenewSession(first, now.Add(idle+time.Minute), idle); err == nil {
		t.Error("an idle session was renewed")
	}
	if _, err := tok.RenewSession(first, later, 0); err == nil {
		t.Error("renewed without an idle limit")
	}
}

func TestSessionEnded(t *testing.T) {
	tok := newTokens(t)
	now := time.Now()
	a, _ := tok.IssueSession("john.q.doe", now, time.Hour, 0)
	b, _ := tok.IssueSession("jane.r.roe", now, time.Hour, 0)
	sa, _ := tok.VerifySession(a, now)

	// Ended elsewhere: the shared store says so on first sight.
	var asked []string
	storeDown := false
	endedElsewhere := map[string]bool{}
	cache := NewSessionCache(tok, 10, time.Hour)
	cache.Ended = func(_ context.Context, id string) (bool, error) {
		asked = append(asked, id)
		if storeDown {
			return false, errors.New("database unreachable")
		}
		return endedElsewhere[id], nil
	}
	if _, ok, err := cache.Session(t.Context(), a, now); !ok || err != nil {
		t.Fatalf("live session: %v %v", ok, err)
	}
	if _, ok, _ := cache.Session(t.Context(), a, now); !ok || len(asked) != 1 {
		t.Fatalf("cached session asked the store again: %v", asked)
	}

	// Signed out here: refused at once, cached or not, until it expires.
	cache.End(sa.ID, sa.Expires, now)
	if _, ok, _ := cache.Session(t.Context(), a, now); ok {
		t.Fatal("ended session accepted from the cache")
	}
	renewedA, _ := tok.RenewSession(Session{Username: sa.Username, ID: sa.ID, Expires: sa.Expires, IdleUntil: now.Add(time.Minute)}, now, time.Minute)
	if _, ok, _ := cache.Session(t.Context(), renewedA, now); ok {
		t.Fatal("a renewed token of an ended session accepted")
	}

	// The store cannot be asked: the token is refused and not remembered.
	storeDown = true
	if _, ok, err := cache.Session(t.Context(), b, now); ok || err == nil {
		t.Fatalf("unchecked session: %v %v", ok, err)
	}
	storeDown = false
	sb, _ := tok.VerifySession(b, now)
	endedElsewhere[sb.ID] = true
	if _, ok, err := cache.Session(t.Context(), b, now); ok || err != nil {
		t.Fatalf("session ended on another node: %v %v", ok, err)
	}

	// Purge makes a cached token ask again.
	c, _ := tok.IssueSession("x.y.z", now, time.Hour, 0)
	sc, _ := tok.VerifySession(c, now)
	if _, ok, _ := cache.Session(t.Context(), c, now); !ok {
		t.Fatal("live session refused")
	}
	endedElsewhere[sc.ID] = true
	cache.Purge()
	if _, ok, _ := cache.Session(t.Context(), c, now); ok {
		t.Fatal("after Purge, a session ended elsewhere was still accepted")
	}

	// Records are swept once their session is over.
	cache.End("other", now.Add(time.Minute), now.Add(2*time.Hour))
	if _, ok := cache.ended.Load(sa.ID); ok {
		t.Error("an expired session's end record was kept")
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

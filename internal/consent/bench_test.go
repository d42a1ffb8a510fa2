package consent

import (
	"strings"
	"testing"
	"time"
)

// A browser's Cookie header with the consent cookie among others.
func benchCookieHeader(token string) []string {
	return []string{"_ga=GA1.2.1234567890.1700000000; theme=dark; " + CookieName + "=" + token + "; JSESSIONID=0123456789ABCDEF; lang=en-US"}
}

// BenchmarkVerify is a full consent-token check (HS256 JWT parse and MAC):
// what a request pays when its token is not in the cache yet.
func BenchmarkVerify(b *testing.B) {
	tok := newTokens(b)
	now := time.Now()
	token, err := tok.Issue(fpA, now, 12*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.Verify(token, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAccepted is the request path's consent check: the cookie found
// in the Cookie header without parsing all cookies, then a cache hit.
func BenchmarkAccepted(b *testing.B) {
	tok := newTokens(b)
	now := time.Now()
	token, err := tok.Issue(fpA, now, 12*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	c := NewCache(tok, 10000, 10*time.Minute)
	hdr := benchCookieHeader(token)
	if !c.Accepted(CookieValue(hdr), fpA, now, time.Hour) {
		b.Fatal("token not accepted")
	}
	b.ReportAllocs()
	for b.Loop() {
		if !c.Accepted(CookieValue(hdr), fpA, now, time.Hour) {
			b.Fatal("token not accepted")
		}
	}
}

// BenchmarkAcceptedManyCards is the same with 10,000 cards' tokens in
// the cache, looked up round-robin (the cache at capacity).
func BenchmarkAcceptedManyCards(b *testing.B) {
	const n = 10000
	tok := newTokens(b)
	now := time.Now()
	c := NewCache(tok, n, 10*time.Minute)
	hdrs := make([][]string, n)
	fps := make([]string, n)
	for i := range n {
		fps[i] = strings.Repeat(string(rune('a'+i%6)), 58) + strings.Repeat("0", 6-len(itoa(i))) + itoa(i)
		token, err := tok.Issue(fps[i], now, 12*time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		hdrs[i] = benchCookieHeader(token)
		if !c.Accepted(CookieValue(hdrs[i]), fps[i], now, time.Hour) {
			b.Fatal("token not accepted")
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if !c.Accepted(CookieValue(hdrs[i]), fps[i], now, time.Hour) {
			b.Fatal("token not accepted")
		}
		if i++; i == n {
			i = 0
		}
	}
}

// BenchmarkCookieValue is finding the consent cookie in the header alone.
func BenchmarkCookieValue(b *testing.B) {
	hdr := benchCookieHeader(strings.Repeat("x", 220))
	b.ReportAllocs()
	for b.Loop() {
		if CookieValue(hdr) == "" {
			b.Fatal("cookie not found")
		}
	}
}

// BenchmarkIssue is accepting the banner: one token signed.
func BenchmarkIssue(b *testing.B) {
	tok := newTokens(b)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.Issue(fpA, now, 12*time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string {
	var buf [20]byte
	p := len(buf)
	for {
		p--
		buf[p] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(buf[p:])
		}
	}
}

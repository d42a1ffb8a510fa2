package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/forward"
	"github.com/cacgate/cacgate/internal/gateway"
)

// BenchmarkPieces takes the hot path (BenchmarkHotPath: enrolled card,
// valid consent cookie, everything cached) apart, each piece on the same
// handler and request, so a regression in the whole can be pinned on a
// part. The pieces add up to less than the whole: ServeHTTP also reads the
// clock, matches exempt paths, counts the request and calls next.
func BenchmarkPieces(b *testing.B) {
	p := newHotPath(b, "crl")
	h, r := p.h, p.replay.next()
	now := time.Now()
	d := h.site.Gate(r, now)
	if d.Outcome != gateway.Admitted {
		b.Fatal("gate", d.Outcome)
	}
	id := d.Site.ID

	// Certificate identity: the verdict on the certificate from the
	// site cache (keyed by the DER, no hashing), the validity window and
	// the chain depth.
	b.Run("certificate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, rej := h.site.Certificate(r.TLS, now); rej != nil {
				b.Fatal(rej.Code)
			}
		}
	})
	// Everything before the banner: the certificate, then the card's
	// account mapping and revocation verdict, cached in the site entry.
	b.Run("gate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if g := h.site.Gate(r, now); g.Entry != d.Entry {
				b.Fatal("card entry not cached")
			}
		}
	})
	// What computing the fingerprint would cost if the request path keyed
	// its caches by it instead of by the DER (it does not: only misses
	// hash the certificate).
	b.Run("fingerprint_sha256", func(b *testing.B) {
		der := r.TLS.PeerCertificates[0].Raw
		b.ReportAllocs()
		for b.Loop() {
			sum := sha256.Sum256(der)
			if hex.EncodeToString(sum[:]) != id.FingerprintHex {
				b.Fatal("fingerprint mismatch")
			}
		}
	})
	// Consent-cookie verification: find the cookie, then the verified
	// token cache.
	b.Run("consent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !h.app.consents.Accepted(consent.CookieValue(r.Header["Cookie"]), id.FingerprintHex, now, time.Hour) {
				b.Fatal("consent not accepted")
			}
		}
	})
	// The signed assertion, from the site entry's cache.
	b.Run("assertion", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if h.site.Assertion(r, &d, now) == "" {
				b.Fatal("no assertion")
			}
		}
	})
	// Header stripping on a browser's request with nothing to strip (the
	// usual case), and with spoofed identity headers in three spellings.
	b.Run("strip", func(b *testing.B) {
		hdr := browserHeaders()
		b.ReportAllocs()
		for b.Loop() {
			forward.StripHeaders(hdr, h.stripNames)
		}
		if len(hdr) != len(browserHeaders()) {
			b.Fatal("stripped a header that is not an identity header")
		}
	})
	b.Run("strip_spoofed", func(b *testing.B) {
		hdr := browserHeaders()
		b.ReportAllocs()
		for b.Loop() {
			hdr["X-Remote-User"] = spoofed
			hdr["X_remote_user"] = spoofed
			hdr["X-Cac-Assertion"] = spoofed
			forward.StripHeaders(hdr, h.stripNames)
		}
		if len(hdr) != len(browserHeaders()) {
			b.Fatal("spoofed headers left")
		}
	})
	// Header injection and placeholders (setIdentity, the default eight
	// headers; the assertion is off by default, its cached copy measured
	// above): the request's one allocation is here.
	b.Run("inject", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.setIdentity(r, &d, now)
		}
		if r.Header.Get("X-Remote-User") != "john.q.doe" {
			b.Fatal("identity headers not set")
		}
	})
}

var spoofed = []string{"admin"}

// browserHeaders is what Firefox sends for a page of an app, after the
// banner, with Caddy's canonical keys.
func browserHeaders() http.Header {
	return http.Header{
		"Accept":                    {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"Accept-Encoding":           {"gzip, deflate, br, zstd"},
		"Accept-Language":           {"en-US,en;q=0.5"},
		"Connection":                {"keep-alive"},
		"Cookie":                    {"theme=dark; " + consent.CookieName + "=eyJhbGciOiJIUzI1NiJ9.e30.sig; lang=en"},
		"Priority":                  {"u=0, i"},
		"Referer":                   {"https://app.example.mil/app/home"},
		"Sec-Fetch-Dest":            {"document"},
		"Sec-Fetch-Mode":            {"navigate"},
		"Sec-Fetch-Site":            {"same-origin"},
		"Sec-Fetch-User":            {"?1"},
		"Upgrade-Insecure-Requests": {"1"},
		"User-Agent":                {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
	}
}

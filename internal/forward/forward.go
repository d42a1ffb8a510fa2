// Package forward prepares what the backend receives of a request: it
// removes every copy of the gateway's identity headers a client sent (in
// any case, with underscores for dashes, as trailers, or named in
// Connection so a proxy would drop the gateway's own), and the gateway's
// bearer session cookie. Without Caddy; the glue calls it first thing on
// every request, exempt paths included.
package forward

import (
	"io"
	"net/http"
	"strings"

	"github.com/cacgate/cacgate/internal/session"
)

// Names is the header names to strip, normalized and grouped by length:
// a request header is compared only with names of its own length, so the
// usual headers (Accept, Cookie, User-Agent…) cost one array lookup each.
type Names struct {
	byLen [maxStripLen + 1][]string
	long  []string // names longer than maxStripLen (rare)
}

const maxStripLen = 64

// NewNames makes the set of normalized names (see NormalizeName).
func NewNames(normalized []string) *Names {
	s := new(Names)
	for _, n := range normalized {
		if len(n) <= maxStripLen {
			s.byLen[len(n)] = append(s.byLen[len(n)], n)
		} else {
			s.long = append(s.long, n)
		}
	}
	return s
}

// Match reports whether a raw header name is one of the names, as a backend
// could read it.
func (s *Names) Match(key string) bool {
	candidates := s.long
	if len(key) <= maxStripLen {
		candidates = s.byLen[len(key)]
	}
	for _, name := range candidates {
		if SameName(key, name) {
			return true
		}
	}
	return false
}

// StripHeaders deletes every header the backend could take for one
// of ours, whatever its case, however often it was sent, and whether it was
// spelled with dashes or underscores (CGI-style backends and some proxies
// turn X_Remote_User into X-Remote-User).
func StripHeaders(h http.Header, names *Names) {
	for key := range h {
		if names.Match(key) {
			delete(h, key)
		}
	}
}

// NormalizeName lowercases a header name and maps '_' to '-'.
func NormalizeName(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// SameName compares a raw header name with a normalized one without
// allocating: ASCII case-insensitive, '_' equal to '-'.
func SameName(raw, normalized string) bool {
	if len(raw) != len(normalized) {
		return false
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != normalized[i] {
			return false
		}
	}
	return true
}

// ValidName reports whether s is an RFC 9110 field name (a token).
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// StripConnectionTokens removes identity header names from the request's
// Connection header. A proxy deletes every header the client names there
// as hop-by-hop (RFC 9110 section 7.6.1), and Caddy's reverse_proxy does so
// after this handler has added its own: "Connection: X-Remote-User" would
// otherwise make the backend lose the identity the gateway vouched for.
// Other tokens (close, keep-alive, upgrade...) stay.
func StripConnectionTokens(h http.Header, names *Names) {
	vals, ok := h["Connection"]
	if !ok {
		return
	}
	dirty := false
	for _, v := range vals {
		for tok := range strings.SplitSeq(v, ",") {
			if names.Match(strings.TrimSpace(tok)) {
				dirty = true
			}
		}
	}
	if !dirty {
		return
	}
	kept := make([]string, 0, len(vals))
	for _, v := range vals {
		var b strings.Builder
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" || names.Match(tok) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tok)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = kept
}

// trailerGuard strips identity headers from the request's trailers when the
// body has been read to its end, which is when net/http fills them in (with
// whatever trailers the client sent, announced or not). Caddy's
// reverse_proxy copies the trailers for the backend in the same Read, after
// this one returns, so the copies never see the client's versions.
type trailerGuard struct {
	io.ReadCloser
	req   *http.Request
	names *Names
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		StripHeaders(g.req.Trailer, g.names)
	}
	return n, err
}

// GuardTrailers wraps a request body that can carry trailers. Requests
// without a body (http.NoBody: every GET a browser sends) are left alone,
// so the hot path does not pay for it.
func GuardTrailers(r *http.Request, names *Names) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	r.Body = &trailerGuard{ReadCloser: r.Body, req: r, names: names}
}

// sessionCookiePrefix is the gateway cookie the backend must never see: the
// password session, a bearer credential that an application which logs or
// leaks cookies would hand to anyone. The gateway's other cookies are
// harmless there (the banner acceptance is bound to the card or to the
// session, the sign-in form's nonce is a nonce) and are left, which keeps
// a card holder's requests from paying for rewriting the Cookie header.
const sessionCookiePrefix = session.CookieName + "="

// WithoutSessionCookie returns one Cookie header value without the
// hidden cookie, keeping every other. When the pairs kept sit together in
// v (the hidden cookie before or after them, as browsers usually order
// them) the result is a substring of v and costs no allocation.
func WithoutSessionCookie(v string) string {
	first, last := -1, -1 // span of the kept pairs
	pending := false      // a gateway pair since the first kept one
	gap := false          // a gateway pair between kept ones
	for pos := 0; pos <= len(v); {
		end := strings.IndexByte(v[pos:], ';')
		if end < 0 {
			end = len(v)
		} else {
			end += pos
		}
		start, stop := pos, end
		pos = end + 1
		for start < stop && v[start] == ' ' {
			start++
		}
		for stop > start && v[stop-1] == ' ' {
			stop--
		}
		switch {
		case start == stop:
		case strings.HasPrefix(v[start:stop], sessionCookiePrefix):
			pending = first >= 0
		default:
			if first < 0 {
				first = start
			}
			gap = gap || pending
			last = stop
		}
	}
	switch {
	case first < 0:
		return ""
	case !gap:
		return v[first:last]
	}
	var b strings.Builder
	b.Grow(last - first)
	for pair := range strings.SplitSeq(v, ";") {
		pair = strings.TrimSpace(pair)
		if pair == "" || strings.HasPrefix(pair, sessionCookiePrefix) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(pair)
	}
	return b.String()
}

// HasSessionCookie reports whether a Cookie header value may carry the
// session cookie (a cheap check before WithoutSessionCookie).
func HasSessionCookie(v string) bool { return strings.Contains(v, sessionCookiePrefix) }

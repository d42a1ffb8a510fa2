package caddymodule

import (
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/cacgate/cacgate/internal/session"
)

// stripSet is the header names to strip, normalized and grouped by length:
// a request header is compared only with names of its own length, so the
// usual headers (Accept, Cookie, User-Agent…) cost one array lookup each.
type stripSet struct {
	byLen [maxStripLen + 1][]string
	long  []string // names longer than maxStripLen (rare)
}

const maxStripLen = 64

func newStripSet(normalized []string) *stripSet {
	s := new(stripSet)
	for _, n := range normalized {
		if len(n) <= maxStripLen {
			s.byLen[len(n)] = append(s.byLen[len(n)], n)
		} else {
			s.long = append(s.long, n)
		}
	}
	return s
}

func (s *stripSet) match(key string) bool {
	candidates := s.long
	if len(key) <= maxStripLen {
		candidates = s.byLen[len(key)]
	}
	for _, name := range candidates {
		if sameHeaderName(key, name) {
			return true
		}
	}
	return false
}

// stripIdentityHeaders deletes every header the backend could take for one
// of ours, whatever its case, however often it was sent, and whether it was
// spelled with dashes or underscores (CGI-style backends and some proxies
// turn X_Remote_User into X-Remote-User).
func stripIdentityHeaders(h http.Header, names *stripSet) {
	for key := range h {
		if names.match(key) {
			delete(h, key)
		}
	}
}

// normalizeHeaderName lowercases a header name and maps '_' to '-'.
func normalizeHeaderName(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// sameHeaderName compares a raw header name with a normalized one without
// allocating: ASCII case-insensitive, '_' equal to '-'.
func sameHeaderName(raw, normalized string) bool {
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

// validHeaderName reports whether s is an RFC 9110 field name (a token).
func validHeaderName(s string) bool {
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

// stripConnectionTokens removes identity header names from the request's
// Connection header. A proxy deletes every header the client names there
// as hop-by-hop (RFC 9110 section 7.6.1), and Caddy's reverse_proxy does so
// after this handler has added its own: "Connection: X-Remote-User" would
// otherwise make the backend lose the identity the gateway vouched for.
// Other tokens (close, keep-alive, upgrade...) stay.
func stripConnectionTokens(h http.Header, names *stripSet) {
	vals, ok := h["Connection"]
	if !ok {
		return
	}
	dirty := false
	for _, v := range vals {
		for tok := range strings.SplitSeq(v, ",") {
			if names.match(strings.TrimSpace(tok)) {
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
			if tok == "" || names.match(tok) {
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
	names *stripSet
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		stripIdentityHeaders(g.req.Trailer, g.names)
	}
	return n, err
}

// guardTrailers wraps a request body that can carry trailers. Requests
// without a body (http.NoBody: every GET a browser sends) are left alone,
// so the hot path does not pay for it.
func guardTrailers(r *http.Request, names *stripSet) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	r.Body = &trailerGuard{ReadCloser: r.Body, req: r, names: names}
}

// hiddenCookie is the gateway cookie the backend must never see: the
// password session, a bearer credential that an application which logs or
// leaks cookies would hand to anyone. The gateway's other cookies are
// harmless there (the banner acceptance is bound to the card or to the
// session, the sign-in form's nonce is a nonce) and are left, which keeps
// a card holder's requests from paying for rewriting the Cookie header.
const hiddenCookie = session.CookieName + "="

// withoutSessionCookie returns one Cookie header value without the
// hidden cookie, keeping every other. When the pairs kept sit together in
// v (the hidden cookie before or after them, as browsers usually order
// them) the result is a substring of v and costs no allocation.
func withoutSessionCookie(v string) string {
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
		case strings.HasPrefix(v[start:stop], hiddenCookie):
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
		if pair == "" || strings.HasPrefix(pair, hiddenCookie) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(pair)
	}
	return b.String()
}

// sentCookiesVar holds, in the request's Caddy variables, the Cookie header
// as the browser sent it, once a cacgate handler has taken the hidden
// cookie out: a second cacgate handler further down the route (an inner
// block with its own access rules) still reads the session.
const sentCookiesVar = "cacgate.sent_cookies"

// hiddenCookies is what hideSessionCookie keeps: the header as sent, and
// the storage of the header the backend gets (one value, as HTTP/1.1 and
// Go's HTTP/2 server deliver cookies), in one allocation; a pointer in the
// request's variables costs no more.
type hiddenCookies struct {
	sent []string
	kept [1]string
}

// hideSessionCookie takes the hidden cookie out of the Cookie header the
// backend will get, keeping the header as sent for later cacgate handlers
// in the request's variables.
func hideSessionCookie(r *http.Request) {
	vals := r.Header["Cookie"]
	if !hasSessionCookie(vals) {
		// None sent, or an earlier cacgate handler hid them already.
		return
	}
	hc := &hiddenCookies{sent: vals}
	caddyhttp.SetVar(r.Context(), sentCookiesVar, hc)
	var kept []string
	if len(vals) == 1 {
		if v := withoutSessionCookie(vals[0]); v != "" {
			hc.kept[0] = v
			kept = hc.kept[:]
		}
	} else {
		for _, v := range vals {
			if v = withoutSessionCookie(v); v != "" {
				kept = append(kept, v)
			}
		}
	}
	if len(kept) == 0 {
		delete(r.Header, "Cookie")
		return
	}
	r.Header["Cookie"] = kept
}

func hasSessionCookie(vals []string) bool {
	for _, v := range vals {
		if strings.Contains(v, hiddenCookie) {
			return true
		}
	}
	return false
}

// sentCookies is the Cookie header as the browser sent it, the hidden
// cookie included, even after an earlier cacgate handler hid it. The first
// handler finds them in the header itself, without asking the variables.
func sentCookies(r *http.Request) []string {
	vals := r.Header["Cookie"]
	if hasSessionCookie(vals) {
		return vals
	}
	if hc, ok := caddyhttp.GetVar(r.Context(), sentCookiesVar).(*hiddenCookies); ok {
		return hc.sent
	}
	return vals
}

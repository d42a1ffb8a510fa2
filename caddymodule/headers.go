package caddymodule

import (
	"net/http"
	"strings"
	"unsafe"
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

// derKey views a certificate's DER bytes as a string for a cache lookup
// without copying them. The bytes belong to a parsed certificate and are
// never modified; a key that is stored must be cloned first.
func derKey(der []byte) string {
	return unsafe.String(unsafe.SliceData(der), len(der))
}

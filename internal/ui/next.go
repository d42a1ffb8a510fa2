package ui

import (
	"net/url"
	"strings"
)

// maxNextLen bounds the return path carried through the banner.
const maxNextLen = 2048

// SafeNext returns raw if it is a same-origin relative reference (an
// absolute path with an optional query, like "/app/page?x=1"), and "/"
// otherwise. It is the only thing that decides where the gateway redirects
// after the banner, so it is strict: anything that a browser could resolve
// to another origin ("//evil.example", "/\evil.example", "https://…",
// "javascript:…", control characters) is rejected.
func SafeNext(raw string) string {
	if raw == "" || len(raw) > maxNextLen || raw[0] != '/' {
		return "/"
	}
	if len(raw) > 1 && (raw[1] == '/' || raw[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	// After decoding, a path that starts with "//" would still be read by
	// some intermediaries as a network path; refuse it too.
	if strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return raw
}

package gateway

import "strings"

// Path confusion: Caddy's matchers and the gateway's exempt check decide
// on the request's decoded, cleaned path, while reverse_proxy sends the
// backend the path as the client wrote it. A backend that routes on the
// raw path, or parses URLs its own way (WHATWG parsers keep %2F and do not
// merge //; Tomcat and Spring strip ;params from ..;), can then serve a
// page other than the one the gateway decided about: /app/x/..%2F..%2Fhealthz
// looks exempt to the gateway and is /app/x/... to such a backend.
//
// The rule: a protected site serves only paths that every reasonable
// parser reads the same way. The path as sent must already be in the one
// form the gateway decides on, so the gateway, every matcher and the
// backend agree on one path; anything else is refused (400, audited).

// NonCanonicalPath returns why the path as the client sent it (the
// request's escaped path: r.URL.EscapedPath(), or RawPath when set) is
// ambiguous, or "" when it is canonical. Refused:
//   - percent-encoded '/', '\', '.', '%' (a double encoding), ';' and
//     control characters: decoded once by one parser, twice or never by
//     another;
//   - a raw '\' (a separator to some servers);
//   - empty segments ("//"), "." and ".." segments, and dot segments
//     carrying ";" parameters ("..;", ".;x");
//   - a path that does not start with "/".
func NonCanonicalPath(escaped string) string {
	if escaped == "" || escaped == "*" {
		return "" // OPTIONS * and the empty path have no segments to confuse
	}
	if escaped[0] != '/' {
		return "relative_path"
	}
	// One pass (this runs on every request): characters, then each
	// segment as its closing '/' (or the end) is reached.
	start := 1 // of the current segment
	for i := 1; i <= len(escaped); i++ {
		if i == len(escaped) || escaped[i] == '/' {
			seg := escaped[start:i]
			if seg == "" && i < len(escaped) {
				return "empty_segment"
			}
			if len(seg) > 0 && seg[0] == '.' {
				name := seg
				if semi := strings.IndexByte(seg, ';'); semi >= 0 {
					name = seg[:semi]
				}
				if name == "." || name == ".." {
					return "dot_segment"
				}
			}
			start = i + 1
			continue
		}
		switch c := escaped[i]; {
		case c == '\\':
			return "backslash"
		case c < 0x20 || c == 0x7f:
			return "control_character"
		case c == '%':
			if reason := percentProblem(escaped, i); reason != "" {
				return reason
			}
		}
	}
	return ""
}

// percentProblem judges the percent-encoding at escaped[i].
func percentProblem(escaped string, i int) string {
	if i+2 >= len(escaped) {
		return "bad_percent_encoding"
	}
	hi, lo := upper(escaped[i+1]), upper(escaped[i+2])
	switch {
	case hi == '2' && (lo == 'F'):
		return "encoded_separator"
	case hi == '5' && lo == 'C':
		return "encoded_separator"
	case hi == '2' && lo == 'E':
		return "encoded_dot"
	case hi == '2' && lo == '5':
		return "double_encoding"
	case hi == '3' && lo == 'B':
		return "encoded_semicolon"
	case hi < '2' || (hi == '7' && lo == 'F'):
		return "control_character"
	}
	return ""
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

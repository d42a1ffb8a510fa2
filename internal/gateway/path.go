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
	for i := 0; i < len(escaped); i++ {
		switch c := escaped[i]; {
		case c == '\\':
			return "backslash"
		case c < 0x20 || c == 0x7f:
			return "control_character"
		case c == '%':
			if i+2 >= len(escaped) {
				return "bad_percent_encoding"
			}
			switch strings.ToUpper(escaped[i+1 : i+3]) {
			case "2F", "5C":
				return "encoded_separator"
			case "2E":
				return "encoded_dot"
			case "25":
				return "double_encoding"
			case "3B":
				return "encoded_semicolon"
			}
			if escaped[i+1] < '2' || escaped[i+1] == '7' && strings.ToUpper(escaped[i+2:i+3]) == "F" {
				return "control_character"
			}
		}
	}
	for seg := range strings.SplitSeq(escaped[1:], "/") {
		name, _, _ := strings.Cut(seg, ";")
		switch {
		case seg == "":
			// The root "/" splits into one empty segment; a trailing
			// slash ("/app/") into a last one: both are canonical.
			continue
		case name == "." || name == "..":
			return "dot_segment"
		}
	}
	if strings.Contains(escaped, "//") {
		return "empty_segment"
	}
	return ""
}

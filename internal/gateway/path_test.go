package gateway

import "testing"

func TestNonCanonicalPath(t *testing.T) {
	for _, tc := range []struct {
		path, want string
	}{
		{"/", ""},
		{"/app", ""},
		{"/app/", ""},
		{"/app/page.html", ""},
		{"/app/a%20b", ""},
		{"/app/caf%C3%A9", ""},
		{"/app/x;jsessionid=1", ""},
		{"/app/v1.2/.well-known", ""},
		{"*", ""},
		{"/app/secret/..%2F..%2Fhealthz", "encoded_separator"},
		{"/app/secret/..%2f..%2fhealthz", "encoded_separator"},
		{"/admin/users/..%2F..%2Fapp", "encoded_separator"},
		{"/app%5Cadmin", "encoded_separator"},
		{"/app/%2E%2E/admin", "encoded_dot"},
		{"/app/%2e/admin", "encoded_dot"},
		{"/app/%252F", "double_encoding"},
		{"/app/..%3B/admin", "encoded_semicolon"},
		{"/app/%00", "control_character"},
		{"/app/%0a", "control_character"},
		{"/app/%7F", "control_character"},
		{"/app/%", "bad_percent_encoding"},
		{"/app/%2", "bad_percent_encoding"},
		{"/app\\..\\admin", "backslash"},
		{"/admin/users//..//..//app", "empty_segment"},
		{"/healthz/../app", "dot_segment"},
		{"/healthz/./app", "dot_segment"},
		{"/app/..;/admin", "dot_segment"},
		{"/app/.;x/admin", "dot_segment"},
		{"/app//admin", "empty_segment"},
		{"//app", "empty_segment"},
		{"app", "relative_path"},
	} {
		if got := NonCanonicalPath(tc.path); got != tc.want {
			t.Errorf("NonCanonicalPath(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func FuzzNonCanonicalPath(f *testing.F) {
	for _, s := range []string{"/", "/app/..%2F", "/a//b", "/a/..;/b", "/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if NonCanonicalPath(p) != "" {
			return
		}
		// A canonical path has no dot or empty segments, decoded or not.
		for _, bad := range []string{"/../", "/./"} {
			if containsFold(p+"/", bad) {
				t.Fatalf("%q accepted but holds %q", p, bad)
			}
		}
		for _, bad := range []string{"//", "%2f", "%2e", "%5c", "%25", "\\"} {
			if containsFold(p, bad) {
				t.Fatalf("%q accepted but holds %q", p, bad)
			}
		}
	})
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

package ui

import (
	"strings"
	"testing"
)

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

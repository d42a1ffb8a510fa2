package caddymodule

import (
	"context"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestHideSessionCookieNested: a second cacgate handler on the route reads
// the cookies as sent after the first one hid the session from the
// backend, and hiding again changes nothing.
func TestHideSessionCookieNested(t *testing.T) {
	r, _ := http.NewRequest("GET", "https://x/", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	r.Header["Cookie"] = []string{"a=1; __Host-cacgate-session=tok", "__Host-cacgate-session=s; b=2"}
	hideSessionCookie(r)
	if got := r.Header["Cookie"]; len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Fatalf("Cookie for the backend %q", got)
	}
	sent := sentCookies(r)
	if len(sent) != 2 || sent[0] != "a=1; __Host-cacgate-session=tok" || sent[1] != "__Host-cacgate-session=s; b=2" {
		t.Fatalf("cookies as sent %q", sent)
	}
	hideSessionCookie(r)
	if got := r.Header["Cookie"]; len(got) != 2 || got[0] != "a=1" {
		t.Fatalf("hidden twice: %q", got)
	}
	// Only the session cookie: the header goes.
	r.Header["Cookie"] = []string{"__Host-cacgate-session=tok"}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	hideSessionCookie(r)
	if _, ok := r.Header["Cookie"]; ok {
		t.Fatalf("Cookie left: %q", r.Header["Cookie"])
	}
	if got := sentCookies(r); len(got) != 1 {
		t.Fatalf("cookies as sent %q", got)
	}
}
